"""Model-server faults against the real local server, behind a fault-injecting proxy.

The proxy (tests/faultproxy.py) answers 429 with Retry-After, 500, holds replies past
the timeout, drops connections mid-reply and rewrites replies to malformed JSON; it
counts every request where the server would see it. What is proven: retries with
backoff where they help (Retry-After waited), a bounded number of requests per step
(the openai client's retries times the node's attempts, never more), a clean fallback
where retries cannot help (a grader that keeps failing counts as not relevant, the
reason in state), never a hang (per-call timeout, run deadline), and a map-reduce
under 429s with no failed chunk and no more calls in flight than `concurrency`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pymupdf
import pytest
from faultproxy import SUMMARY_ENV, Fault, FaultProxy, rate_limited, summarize_args
from langchain_core.messages import HumanMessage, SystemMessage

from adaptsum.cli import main
from adaptsum.nodes.retry import MAX_ATTEMPTS
from adaptsum.providers.chat import HTTP_RETRIES, CallTimeout, call, make_chat_model
from adaptsum.state.context import Context

pytestmark = pytest.mark.real_llm

FACTS = [
    "The Meridian bridge was completed in 1932. It spans the Oster river with three steel "
    "arches and carries both rail and road traffic between the two halves of the city.",
    "The bridge was repainted in 1987 and again in 2011, when the original rivets were "
    "replaced with high-strength bolts.",
]
QUESTION = "When was the Meridian bridge repainted?"


def _ctx(proxy: FaultProxy, **kw) -> Context:
    return Context(
        engine="llm",
        chat_model="openai:smollm2-135m-instruct",
        chat_base_url=proxy.base_url,
        **kw,
    )


def _ping(ctx: Context, timeout: float = 60) -> str:
    """One tiny real call through the proxy (4 output tokens)."""
    reply = call(
        make_chat_model(ctx),
        [SystemMessage("Reply with one word."), HumanMessage("Say yes.")],
        max_tokens=4,
        timeout=timeout,
    )
    return reply.finish_reason


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A two-page PDF, indexed once into a data directory the tests share (read-only)."""
    root = tmp_path_factory.mktemp("faults")
    pdf = root / "bridge.pdf"
    doc = pymupdf.open()
    for text in FACTS:
        doc.new_page().insert_textbox(pymupdf.Rect(50, 50, 550, 800), text, fontsize=11)
    doc.save(pdf)
    data = root / "data"
    assert main(["index", str(pdf), "--data-dir", str(data)]) == 0
    return pdf, data


def _ask(proxy: FaultProxy, bridge, *flags: str) -> list[str]:
    pdf, data = bridge
    return [
        "ask",
        str(pdf),
        QUESTION,
        "--engine",
        "llm",
        "--chat-model",
        "openai:smollm2-135m-instruct",
        "--chat-base-url",
        proxy.base_url,
        "-k",
        "2",
        "--data-dir",
        str(data),
        "--request-timeout",
        "600",  # a loaded CPU can take minutes; the timeout has its own test
        *flags,
    ]


def test_429_waits_retry_after_then_succeeds(llm_server) -> None:
    schedule = {0: Fault("status", status=429, retry_after="2")}
    with FaultProxy(llm_server.base_url, lambda i, step, body: schedule.get(i)) as proxy:
        assert _ping(_ctx(proxy))
    first, second = proxy.calls
    assert (first.status, second.status) == (429, 200)
    assert second.started - first.ended >= 1.9  # the client waited what the server asked


def test_retry_after_is_honoured_before_the_nodes_next_attempt(llm_server) -> None:
    """The client's retries all refused: the call waits Retry-After once more before failing."""
    import openai

    refusals = 1 + HTTP_RETRIES
    with FaultProxy(
        llm_server.base_url,
        lambda i, step, body: (
            Fault("status", status=429, retry_after="2") if i < refusals else None
        ),
    ) as proxy:
        ctx = _ctx(proxy)
        with pytest.raises(openai.RateLimitError):
            _ping(ctx)
        failed_at = time.monotonic()
        assert _ping(ctx)  # what MODEL_RETRY's next attempt does
    calls = proxy.calls
    assert [c.status for c in calls] == [429] * refusals + [200]
    gaps = [b.started - a.ended for a, b in zip(calls, calls[1:], strict=False)]
    assert all(gap >= 1.9 for gap in gaps[: refusals - 1]), gaps
    assert failed_at - calls[refusals - 1].ended >= 1.9  # the pause after the last refusal


def test_500_and_a_dropped_connection_are_retried(llm_server) -> None:
    schedule = {0: Fault("status", status=500), 1: Fault("drop")}
    with FaultProxy(llm_server.base_url, lambda i, step, body: schedule.get(i)) as proxy:
        assert _ping(_ctx(proxy))
    assert [c.status for c in proxy.calls] == [500, 0, 200]
    assert len(proxy.calls) <= 1 + HTTP_RETRIES


def test_a_reply_slower_than_request_timeout_is_cut_not_awaited(llm_server) -> None:
    with FaultProxy(
        llm_server.base_url, lambda i, step, body: Fault("delay", seconds=120)
    ) as proxy:
        started = time.monotonic()
        with pytest.raises(CallTimeout):
            _ping(_ctx(proxy), timeout=2)
        elapsed = time.monotonic() - started
    assert 1.9 <= elapsed < 4, elapsed
    assert len(proxy.calls) == 1  # the whole call was cancelled: the client did not retry it


def test_run_deadline_ends_a_run_whose_server_hangs(
    llm_server, bridge, capsys: pytest.CaptureFixture[str]
) -> None:
    with FaultProxy(
        llm_server.base_url, lambda i, step, body: Fault("delay", seconds=300)
    ) as proxy:
        code = main(_ask(proxy, bridge, "--request-timeout", "2", "--run-deadline", "5"))
        ended = time.monotonic()
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert "run_deadline" in err[-1] and "(thread " in err[-1], err
    first = proxy.calls[0].started  # the deadline's clock starts at the first model call
    assert ended - first < 5 + 2, ended - first
    assert 2 <= len(proxy.calls) <= MAX_ATTEMPTS  # each attempt cut at 2 s, then the deadline


def test_a_grader_that_keeps_failing_counts_not_relevant(
    llm_server, bridge, capsys: pytest.CaptureFixture[str]
) -> None:
    with FaultProxy(
        llm_server.base_url,
        lambda i, step, body: Fault("status", status=500) if step.startswith("grade") else None,
    ) as proxy:
        code = main(_ask(proxy, bridge, "--json"))
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["route"] == "refuse"
    assert "grader failed after 3 attempts" in out["route_reason"]
    assert "Error code: 500" in out["route_reason"]
    # Retries are bounded: the client's 1 + HTTP_RETRIES requests per node attempt, 3 attempts.
    assert len(proxy.of("grade_batch")) == MAX_ATTEMPTS * (1 + HTTP_RETRIES)
    assert proxy.of("answer") == []


def test_malformed_grades_fall_back_to_the_similarity_rule(
    llm_server, bridge, capsys: pytest.CaptureFixture[str]
) -> None:
    with FaultProxy(
        llm_server.base_url,
        lambda i, step, body: Fault("malformed") if step.startswith("grade") else None,
        max_tokens_cap=16,
    ) as proxy:
        code = main(_ask(proxy, bridge, "--json"))
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    # The batch grade is on the ask's critical path: one request, then the rule at once
    # (no retry adds a round trip; hotter retries off the critical path: test_llm_checks).
    assert len(proxy.of("grade_batch")) == 1  # the node is not retried on top either
    assert "grader output unusable" in out["route_reason"]
    assert out["route"] in ("answer", "refuse")
    if out["route"] == "answer":
        assert "[p. " in out["answer"]


def _pdf(path: Path, pages: int) -> Path:
    """`pages` short pages of distinct sentences: one small chunk per page at chunk size 48."""
    doc = pymupdf.open()
    for p in range(pages):
        doc.new_page().insert_textbox(
            pymupdf.Rect(50, 50, 550, 800),
            f"Station {p + 1} of the survey lies at kilometre {7 * p + 3}. Its crew counted "
            f"{11 * p + 5} birds and measured a water temperature of {p % 9 + 10} degrees.",
            fontsize=11,
        )
    doc.save(path)
    return path


CHUNKS = 8
"""Small, for a 135M model on a shared CPU; bench/faults.py runs 200 chunks the same way."""


def test_map_reduce_under_429s_loses_no_chunk_and_respects_concurrency(
    llm_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    for name, value in SUMMARY_ENV.items():
        monkeypatch.setenv(name, value)
    pdf = _pdf(tmp_path / "survey.pdf", CHUNKS)
    with FaultProxy(llm_server.base_url, rate_limited(0.2, retry_after="1"), 24) as proxy:
        code = main(summarize_args(pdf, tmp_path / "data", proxy.base_url, concurrency=2))
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    chunks = out["summary_plan"]["chunks"]
    maps = proxy.of("map")
    answered = proxy.answered("map")
    assert chunks == CHUNKS
    assert len({c.user for c in answered}) == chunks  # 0 failed chunks
    assert len(answered) == chunks  # and none summarized twice
    assert any(c.status == 429 for c in proxy.calls)
    assert proxy.peak_in_flight <= 2, proxy.peak_in_flight
    assert len(maps) - len(answered) == sum(c.status == 429 for c in maps)
    assert "[p. " in out["answer"]
