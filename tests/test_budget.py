"""The token budget: never exceeded, and a step that does not fit pauses (an interrupt).

The scripted model writes every reply up to its cap (`Script(fill_cap=True)`): it
reports the prompt's tokens plus the call's whole `max_tokens`, the worst a real model
can do, and counts what it was billed (`model.spent`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakes import Script, ScriptedChatModel
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command
from openai_stub import openai_stub

from adaptsum import Context, build_graph
from adaptsum.store.index import DocumentIndex

from helpers import KO_SAMPLE

SMALL_CHUNKS = {"chunk_size": 60, "chunk_overlap": 10}


@pytest.fixture(scope="module")
def small_index(tmp_path_factory: pytest.TempPathFactory) -> DocumentIndex:
    """The Korean sample cut into many small chunks, so map-reduce has waves to gate."""
    ctx = Context(data_dir=str(tmp_path_factory.mktemp("budget")), **SMALL_CHUNKS)
    index = DocumentIndex(ctx)
    index.index_file(KO_SAMPLE)
    return index


def _ctx(index: DocumentIndex, **extra) -> Context:
    return Context(
        data_dir=index.ctx.data_dir,
        engine="llm",
        map_sentences=4,
        map_cache=False,
        **SMALL_CHUNKS,
        **extra,
    )


def _summary(strategy: str) -> dict:
    return {
        "request": "이 문서를 요약해줘",
        "documents": [str(KO_SAMPLE)],
        "mode": "summarize",
        "strategy": strategy,
    }


def _run_to_pause(graph, step, config, ctx) -> tuple[dict, list[dict]]:
    """Run, answering plan pauses with true, until the turn ends or pauses mid-run."""
    plan_pauses = []
    for _ in range(5):
        out = graph.invoke(step, config, context=ctx)
        if "__interrupt__" not in out:
            return out, plan_pauses
        value = out["__interrupt__"][0].value
        if "step" in value:  # a pause in the middle of the run
            return out, plan_pauses
        plan_pauses.append(value)
        step = Command(resume=True)
    raise AssertionError("too many pauses")


@pytest.mark.parametrize("strategy", ["map_reduce", "refine", "stuff"])
@pytest.mark.parametrize("budget", [700, 2500, 6000])
def test_a_run_never_spends_more_than_its_budget(
    small_index: DocumentIndex, strategy: str, budget: int
) -> None:
    model = ScriptedChatModel(script=Script(fill_cap=True))
    graph = build_graph(InMemorySaver(), chat_model=model)
    ctx = _ctx(small_index, stuff_budget=100 if strategy != "stuff" else 10**5, max_tokens=budget)
    config = {"configurable": {"thread_id": f"{strategy}-{budget}"}}
    out, _ = _run_to_pause(graph, _summary(strategy), config, ctx)
    assert model.spent <= budget
    if "__interrupt__" in out:  # ran out: a pause, never an error; stop it cleanly
        pause = out["__interrupt__"][0].value
        assert pause["kind"] == "budget" and pause["max_tokens"] == budget
        assert pause["spent"] == model.spent and pause["left"] == budget - model.spent
        assert pause["next_step_tokens"] > pause["left"]
        out = graph.invoke(Command(resume=False), config, context=ctx)
        assert out["route"] == "stopped" and out["answer"].startswith("stopped at the token")
        assert out["citations"] == [] and "[p. " not in out["answer"]
    else:
        assert out["route"] == "summarize" and out["citations"]
    assert model.spent <= budget


def test_mid_run_pause_resumes_with_a_higher_budget_without_redoing_maps(
    small_index: DocumentIndex,
) -> None:
    model = ScriptedChatModel(script=Script(fill_cap=True))
    graph = build_graph(InMemorySaver(), chat_model=model)
    ctx = _ctx(small_index, stuff_budget=100, max_tokens=2500)
    config = {"configurable": {"thread_id": "raise"}, "max_concurrency": 4}
    out, plan_pauses = _run_to_pause(graph, _summary("map_reduce"), config, ctx)
    assert plan_pauses and plan_pauses[0]["estimated_tokens"] > 2500
    (pause,) = out["__interrupt__"]
    value = pause.value
    mapped = len(model.calls_of("map"))
    assert 0 < mapped < graph.get_state(config).values["summary_chunks"]
    assert value["step"] == "wave of map calls" and value["spent"] == model.spent <= 2500
    assert value["estimated_tokens"] >= value["next_step_tokens"] > value["left"]
    assert value["suggested_max_tokens"] == value["spent"] + value["estimated_tokens"]
    assert graph.get_state(config).next == ("collapse_gate",)

    new_budget = 60_000
    out = graph.invoke(Command(resume={"max_tokens": new_budget}), config, context=ctx)
    assert "__interrupt__" not in out and out["route"] == "summarize" and out["citations"]
    assert model.spent <= new_budget
    assert len(model.calls_of("map")) == out["summary_plan"]["chunks"]  # none mapped twice
    assert graph.get_state(config).values["token_budget"] == new_budget


def test_resume_true_takes_the_suggested_budget_and_false_stops(
    small_index: DocumentIndex,
) -> None:
    model = ScriptedChatModel(script=Script(fill_cap=True))
    graph = build_graph(InMemorySaver(), chat_model=model)
    ctx = _ctx(small_index, stuff_budget=100, max_tokens=4000)
    config = {"configurable": {"thread_id": "refine-true"}}
    out, _ = _run_to_pause(graph, _summary("refine"), config, ctx)
    first = out["__interrupt__"][0].value
    assert first["step"] == "refine_chunk call"
    done_steps = graph.get_state(config).values["refine_step"]
    assert done_steps > 0
    # true: go on with spent + the rest's estimate; each later step may pause again
    out = graph.invoke(Command(resume=True), config, context=ctx)
    assert model.spent <= first["suggested_max_tokens"]
    assert graph.get_state(config).values["refine_step"] > done_steps
    if "__interrupt__" in out:
        again = out["__interrupt__"][0].value
        assert again["max_tokens"] == first["suggested_max_tokens"]
        out = graph.invoke(Command(resume=False), config, context=ctx)
        assert out["route"] == "stopped" and "No summary was written" in out["answer"]
        last = graph.get_state(config).values["messages"][-1]
        assert last.content == out["answer"]  # the thread records the turn as stopped
    else:
        assert out["route"] == "summarize"


def test_a_question_pauses_before_the_answer_it_cannot_afford(
    small_index: DocumentIndex,
) -> None:
    model = ScriptedChatModel(script=Script(fill_cap=True))
    graph = build_graph(InMemorySaver(), chat_model=model)
    ctx = _ctx(small_index, max_tokens=300, grading="batch")
    config = {"configurable": {"thread_id": "question"}}
    ask = {"request": "한글은 누가 만들었나요?", "documents": [str(KO_SAMPLE)]}
    out = graph.invoke(ask, config, context=ctx)
    value = out["__interrupt__"][0].value
    assert value["kind"] == "budget" and value["spent"] == model.spent <= 300
    out = graph.invoke(Command(resume={"max_tokens": 20_000}), config, context=ctx)
    assert model.spent <= 20_000
    assert out["route"] in {"answer", "refuse"} and "__interrupt__" not in out
    assert "answer" in {k for k, _ in model.calls}


def test_bad_resume_value_is_one_line(small_index: DocumentIndex) -> None:
    model = ScriptedChatModel(script=Script(fill_cap=True))
    graph = build_graph(InMemorySaver(), chat_model=model)
    ctx = _ctx(small_index, stuff_budget=100, max_tokens=2500)
    config = {"configurable": {"thread_id": "bad"}}
    _run_to_pause(graph, _summary("map_reduce"), config, ctx)
    with pytest.raises(ValueError, match="resume value must be true, false or"):
        graph.invoke(Command(resume="more please"), config, context=ctx)


def _cli(*args: str, base_url: str, data: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("adaptsum")
    return subprocess.run(
        [
            str(exe),
            *args,
            "--engine",
            "llm",
            "--chat-model",
            "openai:qwen3-8b",
            "--chat-base-url",
            base_url,
            "--data-dir",
            str(data),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        stdin=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"},
    )


def test_cli_budget_pause_then_resume_with_a_budget(tmp_path: Path) -> None:
    with openai_stub(Script(fill_cap=True)) as (base_url, brain, _):
        base = ["summarize", str(KO_SAMPLE), "--strategy", "refine", "--thread", "cli-budget"]
        first = _cli(
            *base, "--max-tokens", "2000", "--approve", "yes", base_url=base_url, data=tmp_path
        )
        # Not a terminal and the flag answered the plan's pause: the mid-run pause is reported.
        assert first.returncode == 1 and "Traceback" not in first.stderr
        assert "paused: token budget of 2000 nearly used" in first.stderr
        assert "--approve yes|no|N" in first.stderr
        assert brain.spent <= 2000
        spent = brain.spent
        done = _cli(*base, "--approve", "40000", base_url=base_url, data=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "route: summarize" in done.stdout and "[p. " in done.stdout
        assert brain.spent - spent <= 40000
        stop = _cli(
            "summarize", str(KO_SAMPLE), "--strategy", "refine", "--thread", "cli-stop",
            "--max-tokens", "2000", "--approve", "yes", base_url=base_url, data=tmp_path,
        )  # fmt: skip
        assert stop.returncode == 1
        stopped = _cli(
            "summarize", str(KO_SAMPLE), "--thread", "cli-stop", "--approve", "no",
            base_url=base_url, data=tmp_path,
        )  # fmt: skip
        assert stopped.returncode == 0, stopped.stderr
        assert stopped.stdout.startswith("stopped at the token budget of 2000")
        assert "route: stopped" in stopped.stdout


def test_parallel_graders_that_cannot_reserve_use_the_rule_and_do_not_pause(
    small_index: DocumentIndex,
) -> None:
    model = ScriptedChatModel(script=Script(fill_cap=True))
    graph = build_graph(InMemorySaver(), chat_model=model)
    ctx = _ctx(small_index, max_tokens=300, grading="each")
    config = {"configurable": {"thread_id": "graders"}}
    ask = {"request": "한글은 누가 만들었나요?", "documents": [str(KO_SAMPLE)]}
    out = graph.invoke(ask, config, context=ctx)
    (pause,) = out["__interrupt__"]  # one pause, at the answer, not one per grader
    assert pause.value["step"] == "answer call" and model.spent <= 300
    grades = graph.get_state(config).values["grades"].values()
    assert grades and all("not graded by the model" in g["reason"] for g in grades)
    out = graph.invoke(Command(resume=False), config, context=ctx)
    assert out["route"] == "stopped" and "No answer was written" in out["answer"]
