"""The llm engine's guards against a weak model, checked without a server.

Structured replies cut at max_tokens, schema echoes, hot retries, usage of failed
attempts, unusable translations, ungrounded numbers and names, and a streamed call
that a server keeps alive forever.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from adaptsum import Context
from adaptsum.engines.base import Resources
from adaptsum.engines.llm import (
    ChunkGrade,
    LLMEngine,
    RequestClassification,
    StructuredOutputFailed,
    dedupe_sentences,
    example_of,
    parse_json,
    ungrounded_terms,
    usable_translation,
)
from adaptsum.providers.chat import CallTimeout, call, make_chat_model


class Replies(GenericFakeChatModel):
    """Replies in order, each with a finish reason; records the call's parameters."""

    replies: list = Field(default_factory=list)
    seen: list = Field(default_factory=list)
    messages: object = Field(default_factory=lambda: iter(()))

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        text, finish = self.replies[len(self.seen)]
        self.seen.append(kwargs)
        message = AIMessage(
            text,
            response_metadata={"finish_reason": finish},
            usage_metadata={"input_tokens": 50, "output_tokens": 10, "total_tokens": 60},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


def _engine(model, **ctx) -> LLMEngine:
    context = Context(engine="llm", structured_output="prompt", **ctx)
    return LLMEngine(Resources(ctx=context, index=None), model)  # type: ignore[arg-type]


def test_length_cut_json_is_a_failure_and_retries_run_hotter() -> None:
    good = json.dumps({"evidence": "x", "relevance": 7, "reason": "y"})
    model = Replies(replies=[('{"evidence": "never ends', "length"), (good, "stop")])
    result, usage = _engine(model).structured(ChunkGrade, "You judge", "passage", "grade")
    assert result.relevance == 7
    assert usage == {"calls": 2, "input_tokens": 100, "output_tokens": 20, "total_tokens": 120}
    assert [kw.get("max_tokens") for kw in model.seen] == [200, 200]
    assert "temperature" not in model.seen[0] and model.seen[1]["temperature"] > 0


def test_unusable_replies_fail_with_every_attempt_counted() -> None:
    echo = json.dumps(RequestClassification.model_json_schema())
    model = Replies(replies=[(echo, "stop")] * 3)
    with pytest.raises(StructuredOutputFailed) as failed:
        _engine(model).structured(RequestClassification, "You route", "hi", "classify")
    assert failed.value.usage["calls"] == 3 and failed.value.usage["output_tokens"] == 30
    temperatures = [kw.get("temperature") for kw in model.seen]
    assert temperatures[0] is None and temperatures[1] < temperatures[2]


def test_schema_echo_and_prompt_example() -> None:
    with pytest.raises(Exception, match="echoes the schema"):
        parse_json(json.dumps(ChunkGrade.model_json_schema()), ChunkGrade)
    example = json.loads(example_of(RequestClassification))
    assert set(example) == {"kind", "reason"} and example["kind"] == "question"
    schema = ChunkGrade.model_json_schema()
    assert schema["properties"]["evidence"]["maxLength"] == 300  # bounded for the grammar


def test_translation_guard() -> None:
    assert not usable_translation("Qwen3는 몇 개의 언어를 지원하나요?", "1000.0")
    assert not usable_translation("질문", '{"properties": {}}')
    assert usable_translation("Qwen3는 몇 개의 언어를 지원하나요?", "How many languages?")


def test_groundedness_flags_numbers_and_names_absent_from_evidence() -> None:
    evidence = "Qwen3 supports 119 languages and dialects, trained on 36 trillion tokens."
    answer = "Qwen3 supports 119 languages [p. 1], reached 87.5 on MMLU, says Alibaba."
    assert ungrounded_terms(answer, evidence) == ["87.5", "MMLU", "Alibaba"]
    # Across languages only names kept as written (digits, capitals) are checked.
    assert ungrounded_terms("Hangul Day is on 9 October [p. 1].", "한글날은 10월 9일", False) == []


def test_repeated_sentences_are_dropped() -> None:
    text = "It supports 119 languages [p. 1]. It supports 119 languages [p. 1]."
    assert dedupe_sentences(text) == "It supports 119 languages [p. 1]."


@contextmanager
def _keepalive_server() -> Iterator[str]:
    """A chat server that streams SSE keep-alive comments and never a token."""
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            try:
                while not stop.is_set():
                    self.wfile.write(b": keep-alive\n\n")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        stop.set()
        server.shutdown()


def test_streamed_call_times_out_despite_keepalives() -> None:
    with _keepalive_server() as base_url:
        ctx = Context(engine="llm", chat_model="openai:m", chat_base_url=base_url)
        model = make_chat_model(ctx)
        started = time.monotonic()
        with pytest.raises(CallTimeout):
            call(model, [], max_tokens=10, timeout=1.0, stream=True)
        assert time.monotonic() - started < 5


def test_ctrl_c_cancels_calls_in_flight() -> None:
    """CANCEL (set by the CLI's SIGINT handler) stops a call within a fraction of a second."""
    from adaptsum.providers.chat import CANCEL, CallCancelled

    with _keepalive_server() as base_url:
        ctx = Context(engine="llm", chat_model="openai:m", chat_base_url=base_url)
        model = make_chat_model(ctx)
        timer = threading.Timer(0.5, CANCEL.set)
        timer.start()
        started = time.monotonic()
        try:
            with pytest.raises(CallCancelled):
                call(model, [], max_tokens=10, timeout=60.0, stream=True)
        finally:
            CANCEL.clear()
        assert time.monotonic() - started < 3
