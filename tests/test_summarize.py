"""The summarize branch: strategies, collapse levels, refine loop, resume, cache, budget."""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import pytest
from fakes import Script, ScriptedChatModel
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from adaptsum import Context, build_graph
from adaptsum.engines.summary import cited_pages, paragraphs_of
from adaptsum.ingest.pdf import load_pdf
from adaptsum.store.index import DocumentIndex

from helpers import EN_SAMPLE, KO_SAMPLE

SMALL_CHUNKS = {"chunk_size": 60, "chunk_overlap": 10}


@pytest.fixture(scope="module")
def small_index(tmp_path_factory: pytest.TempPathFactory) -> DocumentIndex:
    """The Korean sample cut into many small chunks, so map-reduce has work to do."""
    ctx = Context(data_dir=str(tmp_path_factory.mktemp("small")), **SMALL_CHUNKS)
    index = DocumentIndex(ctx)
    index.index_file(KO_SAMPLE)
    return index


def llm_context(index: DocumentIndex, **extra) -> Context:
    return Context(data_dir=index.ctx.data_dir, engine="llm", **SMALL_CHUNKS, **extra)


def summarize(graph, ctx: Context, config=None, **inputs):
    payload = {
        "request": "이 문서를 요약해줘",
        "documents": [str(KO_SAMPLE)],
        "mode": "summarize",
        **inputs,
    }
    return graph.invoke(payload, config, context=ctx)


def test_short_document_is_stuffed(small_index: DocumentIndex) -> None:
    model = ScriptedChatModel(script=Script())
    out = summarize(build_graph(chat_model=model), llm_context(small_index))
    assert out["summary_plan"]["strategy"] == "stuff"
    assert [k for k, _ in model.calls] == ["stuff"]
    assert len(paragraphs_of(out["answer"])) == 5
    assert all(cited_pages(p) for p in paragraphs_of(out["answer"]))


def test_map_reduce_collapses_twice_and_keeps_order(small_index: DocumentIndex) -> None:
    model = ScriptedChatModel(script=Script())
    ctx = llm_context(small_index, stuff_budget=100, reduce_budget=150)
    graph = build_graph(InMemorySaver(), chat_model=model)
    config = {"configurable": {"thread_id": "levels"}}
    out = summarize(graph, ctx, config)
    levels = {int(k.split(":")[0]) for k in graph.get_state(config).values["partials"]}
    assert levels == {0, 1, 2}
    plan = out["summary_plan"]
    assert plan["strategy"] == "map_reduce" and plan["chunks"] > 10
    assert len(model.calls_of("map")) == plan["chunks"]
    collapse_calls = len(model.calls_of("collapse"))
    assert collapse_calls >= 3 and len(model.calls_of("reduce")) == 1
    # The plan knows the map and reduce calls; collapse calls depend on output lengths.
    assert plan["planned_calls"] >= plan["chunks"] + 1
    # Two collapse levels: level-2 partials exist, built from level-1 ones.
    reduce_input = model.calls_of("reduce")[0][-1].content
    pages = [int(p) for p in re.findall(r"\[p\. (\d+)\]", reduce_input)]
    assert pages == sorted(pages)  # document order survives map and collapse
    assert out["citations"] and {c["page"] for c in out["citations"]} <= {1, 2}
    assert out["usage"]["calls"] == len(model.calls)


def test_collapse_levels_are_bounded(small_index: DocumentIndex) -> None:
    model = ScriptedChatModel(script=Script())
    ctx = llm_context(small_index, stuff_budget=100, reduce_budget=60, max_collapse_levels=1)
    graph = build_graph(InMemorySaver(), chat_model=model)
    config = {"configurable": {"thread_id": "bounded"}}
    summarize(graph, ctx, config)
    state = graph.get_state(config).values
    levels = {int(k.split(":")[0]) for k in state["partials"]}
    assert levels == {0, 1}  # still over budget, but the counter stopped the loop
    assert len(model.calls_of("reduce")) == 1


def test_refine_loop_visits_each_chunk_once(small_index: DocumentIndex) -> None:
    model = ScriptedChatModel(script=Script())
    graph = build_graph(InMemorySaver(), chat_model=model)
    config = {"configurable": {"thread_id": "refine"}}
    out = summarize(graph, llm_context(small_index), config, strategy="refine")
    n = out["summary_plan"]["chunks"]
    assert len(model.calls_of("stuff")) == 1  # the first chunk starts the summary
    assert len(model.calls_of("refine")) == n - 1
    assert graph.get_state(config).values["refine_step"] == n
    history = [s.next for s in graph.get_state_history(config)]
    assert history.count(("refine_chunk",)) == n  # a checkpoint before every step


def test_crash_mid_map_resumes_without_repeating_calls(small_index: DocumentIndex) -> None:
    crashed: list[str] = []

    def crash_once(passage: str) -> bool:
        if "[p. 2]" in passage and not crashed:
            crashed.append(passage)
            return True
        return False

    model = ScriptedChatModel(script=Script(fail_on_map=crash_once))
    graph = build_graph(InMemorySaver(), chat_model=model)
    config = {"configurable": {"thread_id": "crash"}, "max_concurrency": 2}
    ctx = llm_context(small_index, stuff_budget=100)
    with pytest.raises(RuntimeError, match="simulated crash"):
        summarize(graph, ctx, config)
    mapped_before = len(model.calls_of("map"))
    pending = graph.get_state(config).next
    assert pending and set(pending) == {"map_chunk"}  # the failed task and any not started
    out = graph.invoke(None, config, context=ctx)  # resume the thread
    assert out["route"] == "summarize" and out["citations"]
    calls = Counter(m[-1].content for m in model.calls_of("map"))
    assert calls[crashed[0]] == 2  # the chunk that failed is mapped again...
    assert all(n == 1 for passage, n in calls.items() if passage != crashed[0])  # ...no other
    assert len(calls) == out["summary_plan"]["chunks"]
    assert mapped_before < sum(calls.values())


def test_map_results_are_cached_across_runs(small_index: DocumentIndex) -> None:
    ctx = llm_context(small_index, stuff_budget=100)
    first = ScriptedChatModel(script=Script())
    summarize(build_graph(chat_model=first), ctx)
    assert first.calls_of("map")
    second = ScriptedChatModel(script=Script(), model_name=first.model_name)  # same model
    other_shape = llm_context(
        small_index, stuff_budget=100, summary_paragraphs=3, answer_language="en"
    )
    out = summarize(build_graph(chat_model=second), other_shape)
    assert second.calls_of("map") == []  # another shape and language: 0 map calls
    assert len(second.calls_of("reduce")) == 1
    assert "Write exactly 3 paragraphs" in second.calls_of("reduce")[0][0].content
    assert "English" in second.calls_of("reduce")[0][0].content
    assert out["usage"]["calls"] == len(second.calls)


def test_dry_run_calls_no_model(small_index: DocumentIndex) -> None:
    model = ScriptedChatModel(script=Script(kind="summary"))
    ctx = llm_context(small_index, stuff_budget=100)
    out = summarize(build_graph(chat_model=model), ctx, dry_run=True)
    assert model.calls == []
    plan = out["summary_plan"]
    assert plan["strategy"] == "map_reduce" and plan["planned_calls"] > plan["chunks"]
    assert plan["estimated_tokens"] > 0 and "model calls" in out["answer"]


def test_token_budget_pauses_then_stops_then_resumes(small_index: DocumentIndex) -> None:
    model = ScriptedChatModel(script=Script())
    graph = build_graph(InMemorySaver(), chat_model=model)
    config = {"configurable": {"thread_id": "budget"}, "max_concurrency": 1}
    tight = llm_context(small_index, stuff_budget=100, max_tokens=700, map_sentences=4)
    # The plan's estimate is over the budget: the run pauses before any model call.
    out = summarize(graph, tight, config, strategy="map_reduce", request="budget test 요약")
    (pause,) = out["__interrupt__"]
    assert pause.value["kind"] == "budget" and pause.value["max_tokens"] == 700
    assert pause.value["estimated_tokens"] > 700 and pause.value["spent"] == 0
    assert model.calls_of("map") == []
    # Going on with the same budget: the step that would exceed it pauses the run again.
    out = graph.invoke(Command(resume=True), config, context=tight)
    (pause,) = out["__interrupt__"]
    assert pause.value["kind"] == "budget" and pause.value["step"] == "wave of map calls"
    done_before = len(model.calls_of("map"))
    assert 0 < done_before
    out = graph.invoke(Command(resume={"max_tokens": 10**6}), config, context=tight)
    assert out["citations"]
    assert len(model.calls_of("map")) == out["summary_plan"]["chunks"]  # none mapped twice


def test_a_paused_plan_resumes_with_a_new_budget_or_stops(small_index: DocumentIndex) -> None:
    model = ScriptedChatModel(script=Script())
    graph = build_graph(InMemorySaver(), chat_model=model)
    tight = llm_context(small_index, stuff_budget=100, max_tokens=700, map_sentences=4)
    config = {"configurable": {"thread_id": "new-budget"}}
    out = summarize(graph, tight, config, strategy="map_reduce")
    assert out["__interrupt__"][0].value["kind"] == "budget"
    out = graph.invoke(Command(resume={"max_tokens": 10**6}), config, context=tight)
    assert out["citations"] and out["summary_plan"]["approved_max_tokens"] == 10**6
    assert len(model.calls_of("map")) == out["summary_plan"]["chunks"]

    asked = llm_context(small_index, stuff_budget=100, approve_plan=True)
    config = {"configurable": {"thread_id": "stopped"}}
    calls = len(model.calls)
    out = summarize(graph, asked, config, strategy="map_reduce")
    assert out["__interrupt__"][0].value["kind"] == "approve_plan"
    out = graph.invoke(Command(resume=False), config, context=asked)
    assert out["answer"].startswith("stopped before summarizing") and len(model.calls) == calls


def test_progress_events_stream_while_mapping(small_index: DocumentIndex) -> None:
    model = ScriptedChatModel(script=Script())
    ctx = llm_context(small_index, stuff_budget=100)
    started = time.perf_counter()
    first_event_at = None
    events = []
    for mode, event in build_graph(chat_model=model).stream(
        {"request": "진행 상황 요약", "documents": [str(KO_SAMPLE)], "mode": "summarize"},
        context=ctx,
        stream_mode=["custom", "updates"],
    ):
        if mode == "custom" and event.get("kind") == "summary":
            first_event_at = first_event_at or time.perf_counter() - started
            events.append(event)
    assert first_event_at is not None and first_event_at < 2.0
    maps = [e for e in events if e["stage"] == "map"]
    assert [e["done"] for e in maps] == list(range(1, len(maps) + 1))
    assert maps[-1]["done"] == maps[-1]["total"] and maps[-1]["eta_s"] == 0.0
    assert all(len(e["pages"]) == 2 for e in maps)


@pytest.mark.corpus
def test_extractive_summary_shape_pages_and_determinism(corpus_index: DocumentIndex) -> None:
    pdf = next(p for p in corpus_index.documents() if "tech-report" in p.source)
    ctx = Context(data_dir=corpus_index.ctx.data_dir, summary_paragraphs=4, summary_sentences="2-3")
    graph = build_graph()
    outs = [
        graph.invoke(
            {"request": "요약해줘", "documents": [pdf.doc_id], "strategy": strategy}, context=ctx
        )
        for strategy in ("map_reduce", "map_reduce", "stuff", "refine")
    ]
    assert outs[0]["answer"] == outs[1]["answer"]  # deterministic
    pages = {p.metadata["page"]: p.page_content for p in load_pdf(Path(pdf.source)).pages}
    for out in outs:
        paragraphs = paragraphs_of(out["answer"])
        assert len(paragraphs) == 4
        for paragraph in paragraphs:
            quoted = re.findall(r"(.+?) \[p\. (\d+)\]", paragraph)
            assert 2 <= len(quoted) <= 3
            for sentence, page in quoted:
                flat = " ".join(pages[int(page)].split())
                assert sentence.strip()[:40] in flat, (sentence[:60], page)


def test_killed_process_resumes_on_its_thread(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    from openai_stub import openai_stub

    exe = Path(sys.executable).with_name("adaptsum")
    with openai_stub(Script(), delay=0.15) as (base_url, _, requests):
        command = [
            str(exe),
            "summarize",
            str(KO_SAMPLE),
            "--engine",
            "llm",
            "--strategy",
            "map_reduce",
            "--chat-model",
            "openai:qwen3-8b",
            "--chat-base-url",
            base_url,
            "--chunk-size",
            "60",
            "--chunk-overlap",
            "10",
            "--concurrency",
            "2",
            "--thread",
            "killed",
            "--data-dir",
            str(tmp_path),
            "--json",
        ]
        env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        deadline = time.monotonic() + 60
        while sum("You summarize one passage" in str(r) for r in requests) < 6:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)  # no clean-up: as if the machine went down
        proc.wait()
        killed_at = len(requests)
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "resuming thread killed at map_chunk" in done.stderr
    maps = Counter(
        r["messages"][-1]["content"]
        for r in requests
        if "You summarize one passage" in r["messages"][0]["content"]
    )
    repeated = [passage for passage, n in maps.items() if n > 1]
    # Only calls still in flight when the process died (at most the 2 concurrent ones)
    # can be asked again; every finished chunk is taken from the checkpoint.
    assert len(repeated) <= 2
    assert killed_at >= 6
    import json

    result = json.loads(done.stdout)
    assert result["route"] == "summarize" and result["citations"]
    assert len(maps) == result["summary_plan"]["chunks"]


def test_uncited_paragraphs_are_repaired_and_reported(small_index: DocumentIndex) -> None:
    script = Script(summary=lambda kind, user: "First point [p. 1].\n\nSecond point, uncited.")
    out = summarize(
        build_graph(chat_model=ScriptedChatModel(script=script)), llm_context(small_index)
    )
    assert "1 of 2 paragraphs had no valid page; adaptsum added one" in out["route_reason"]
    assert "2 paragraphs where 5 were asked for" in out["route_reason"]
    second = out["answer"].split("\n\n")[1]
    assert second.startswith("Second point, uncited.") and "[p. " in second


def test_a_summary_copying_its_input_is_written_again(small_index: DocumentIndex) -> None:
    stuffed: list[str] = []

    def copy_then_write(kind: str, user: str) -> str:
        stuffed.append(kind)
        if stuffed.count("stuff") > 1 or kind != "stuff":
            return "A summary in its own words [p. 1]."
        return user  # the document's own text, pages marked

    model = ScriptedChatModel(script=Script(summary=copy_then_write))
    out = summarize(build_graph(chat_model=model), llm_context(small_index))
    assert len(model.calls_of("stuff")) == 2  # redone once, no more
    assert "so it was written again" in out["route_reason"]
    assert out["answer"].startswith("A summary in its own words")


def test_an_extractive_summary_of_a_short_document_is_shorter_than_it(tmp_path: Path) -> None:
    """The default 5 paragraphs of 4-8 sentences once quoted the 2-page Webb article whole
    (551 words for 515): a summary of a whole document quotes a third of it at most."""
    from adaptsum.ingest.sentences import split_sentences

    out = build_graph().invoke(
        {"request": "Summarize this document", "documents": [str(EN_SAMPLE)]},
        context=Context(data_dir=str(tmp_path)),
    )
    assert out["route"] == "summarize" and out["summary_plan"]["strategy"] == "stuff"
    quoted = re.findall(r"\[p\. \d+\]", out["answer"])
    in_document = sum(len(split_sentences(p.page_content)) for p in load_pdf(EN_SAMPLE).pages)
    assert 4 <= len(quoted) <= in_document // 3
    words = sum(len(p.page_content.split()) for p in load_pdf(EN_SAMPLE).pages)
    assert len(out["answer"].split()) < words / 2


@pytest.mark.parametrize("strategy", ["map_reduce", "refine"])
def test_a_page_range_is_all_the_model_sees(small_index: DocumentIndex, strategy: str) -> None:
    """A summary of page 2 sends the model page 2's text only, a chunk that starts on
    page 1 cut at the break, and cites nothing else."""
    ctx = llm_context(small_index, stuff_budget=100, reduce_budget=150, map_cache=False)
    whole = summarize(build_graph(chat_model=ScriptedChatModel(script=Script())), ctx)
    model = ScriptedChatModel(script=Script())
    out = summarize(build_graph(chat_model=model), ctx, pages="2", strategy=strategy)
    plan = out["summary_plan"]
    assert plan["pages"] == "2" and 0 < plan["chunks"] < whole["summary_plan"]["chunks"]
    step = "map" if strategy == "map_reduce" else "refine"
    inputs = [call[-1].content for call in model.calls_of(step)]
    assert inputs and len(inputs) == plan["chunks"] - (strategy == "refine")
    for text in inputs:
        assert set(re.findall(r"\[p\. (\d+)\]", text)) == {"2"}, text
    assert out["citations"] and {c["page"] for c in out["citations"]} == {2}
