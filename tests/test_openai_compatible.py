"""The llm engine through the real ChatOpenAI client against a local OpenAI-compatible server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakes import Script
from langchain_core.messages import AIMessage
from openai_stub import openai_stub

from adaptsum import Context, build_graph
from adaptsum.errors import ConfigError
from adaptsum.providers.chat import make_chat_model, strip_think
from adaptsum.store.index import DocumentIndex

from helpers import KO_SAMPLE


def test_strip_think() -> None:
    assert strip_think("<think>a\nb</think>\n답") == "답"
    assert strip_think("생각 중...</think>답") == "답"  # server dropped the opening tag
    assert strip_think("<think>never closed") == ""
    assert strip_think("plain") == "plain"


def test_missing_key_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ADAPTSUM_CHAT_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        make_chat_model(Context(engine="llm"))


@pytest.mark.parametrize("structured", ["prompt", "json_schema"])
def test_graph_over_http(samples_index: DocumentIndex, structured: str) -> None:
    script = Script(think=True, answer=lambda evidence: "한글날은 10월 9일입니다 [p. 1].")
    with openai_stub(script) as (base_url, brain, requests):
        ctx = Context(
            data_dir=samples_index.ctx.data_dir,
            engine="llm",
            chat_model="openai:qwen3-8b",
            chat_base_url=base_url,
            structured_output=structured,
            no_think=True,
        )
        out = build_graph().invoke(
            {"request": "한글날은 언제인가요?", "documents": ["hangul-ko.pdf"]}, context=ctx
        )
    assert out["route"] == "answer"
    assert out["answer"] == "한글날은 10월 9일입니다 [p. 1]."  # <think> stripped
    assert out["citations"][0]["page"] == 1
    assert out["usage"]["calls"] == len(requests)
    assert out["usage"]["total_tokens"] == 120 * len(requests)
    assert {r["model"] for r in requests} == {"qwen3-8b"}
    grade_requests = [r for r in requests if "You judge" in r["messages"][0]["content"]]
    # A local server (chat_base_url): all passages graded in one call; the rules classify
    # this clear question, so an ask is 2 round trips (grade, answer) here.
    assert len(grade_requests) == 1 and len(requests) == 2
    if structured == "json_schema":
        assert all(r["response_format"]["type"] == "json_schema" for r in grade_requests)
    else:
        assert all("response_format" not in r for r in grade_requests)


def test_abandoned_attempts_are_counted(samples_index: DocumentIndex) -> None:
    """A call given up on timeout is counted (with its prompt and cap), then retried."""
    script = Script(answer=lambda evidence: "한글날은 10월 9일입니다 [p. 1].")
    # The first request (the batch grade) is slower than request_timeout: abandoned.
    with openai_stub(script, delay=lambda n: 4.0 if n == 0 else 0.0) as (base_url, _, requests):
        ctx = Context(
            data_dir=samples_index.ctx.data_dir,
            engine="llm",
            chat_model="openai:m",
            chat_base_url=base_url,
            request_timeout=1.5,
        )
        out = build_graph().invoke(
            {"request": "한글날은 언제인가요?", "documents": ["hangul-ko.pdf"]}, context=ctx
        )
    usage = out["usage"]
    assert out["route"] == "answer"
    assert len(requests) == 3  # grade (abandoned), grade again, answer
    assert usage["calls"] == 3 and usage["abandoned_calls"] == 1
    cap = requests[0].get("max_completion_tokens", requests[0].get("max_tokens"))
    assert usage["abandoned_max_tokens"] == cap
    assert usage["abandoned_input_tokens"] > 50  # the grading prompt holds the passages
    assert usage["output_tokens"] == 20 * 2  # what the server reported, for the 2 replies


def test_cli_streams_the_answer(tmp_path: Path) -> None:
    script = Script(answer=lambda evidence: "한글날은 매년 10월 9일입니다 [p. 1].")
    with openai_stub(script) as (base_url, _, requests):
        exe = Path(sys.executable).with_name("adaptsum")
        done = subprocess.run(
            [
                str(exe),
                "ask",
                str(KO_SAMPLE),
                "한글날은 언제인가요?",
                "--engine",
                "llm",
                "--chat-model",
                "openai:qwen3-8b",
                "--chat-base-url",
                base_url,
                "--data-dir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
            env={k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"},
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("한글날은 매년 10월 9일입니다 [p. 1].")
    assert done.stdout.count("10월 9일") == 1  # printed once, not streamed and again
    assert "Citations:" in done.stdout and "route: answer" in done.stdout
    answer_requests = [r for r in requests if "You answer" in r["messages"][0]["content"]]
    assert answer_requests[0].get("stream") is True  # the answer was streamed
    assert json.dumps(answer_requests[0], ensure_ascii=False).count("[p. 1]") >= 1


def test_messages_stream_carries_only_the_answer(samples_index: DocumentIndex) -> None:
    """Internal calls (grading, translation) are tagged nostream; the answer streams once."""
    script = Script(answer=lambda evidence: "Hangul Day is on 9 October [p. 1].")
    with openai_stub(script) as (base_url, _, requests):
        ctx = Context(
            data_dir=samples_index.ctx.data_dir,
            engine="llm",
            chat_model="openai:m",
            chat_base_url=base_url,
            grading="each",
        )
        chunks, nodes = [], set()
        graph = build_graph()
        for mode, chunk in graph.stream(
            {"request": "When is Hangul Day?", "documents": ["hangul-ko.pdf"]},
            context=ctx,
            stream_mode=["messages", "updates", "custom"],
        ):
            if mode == "updates" and "answer" in chunk:
                final = chunk["answer"]["answer"]
            if mode == "messages" and isinstance(chunk[0], AIMessage):  # not the question
                chunks.append(chunk[0].text)
                nodes.add(chunk[1]["langgraph_node"])
    assert len(requests) > 3  # translate, graders, answer: all went to the server
    assert nodes == {"answer"}
    assert "".join(chunks) == final == "Hangul Day is on 9 October [p. 1]."


def test_cli_model_server_down_is_one_line(tmp_path: Path) -> None:
    """A server that is not running ends the run with one line naming it, not a traceback."""
    closed = "http://127.0.0.1:9/v1"  # the discard port: nothing listens there
    exe = Path(sys.executable).with_name("adaptsum")
    done = subprocess.run(
        [str(exe), "ask", str(KO_SAMPLE), "한글날은 언제인가요?", "--engine", "llm"]
        + ["--chat-model", "openai:m", "--chat-base-url", closed, "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"},
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"cannot reach the model server at {closed}" in done.stderr.splitlines()[-1]
