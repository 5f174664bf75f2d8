"""The llm engine against a real local model: calls, tokens, wall time and critical path.

    .venv/bin/python bench/llm.py [--pdf ../shared/corpus/qwen3-overview-ko.pdf]
                                  [--base-url http://127.0.0.1:8080/v1 --model NAME]

Without --base-url it starts llama-server with SmolLM2-135M-Instruct from the cached
install of tests/llm_server.py (built on first use). For an ask in Korean and in
English and for each summary strategy it prints, per step (graph node), the model
calls, tokens and seconds; the number of sequential model round trips (calls that
overlap in time count once); the wall time; and the server's own tokens per second.

Calls and round trips are counted twice: from LangChain's callbacks (per step), and at
a counting HTTP proxy between adaptsum and the server, which sees every request that
reaches the server whatever adaptsum's own counters say (the `srv` columns).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langgraph.checkpoint.memory import InMemorySaver

from adaptsum import Context, build_graph
from adaptsum.store.index import DocumentIndex

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PDF = REPO.parent / "shared" / "corpus" / "qwen3-overview-ko.pdf"


class CallRecorder(BaseCallbackHandler):
    """Every chat-model call of a run: its node, start, end and server-reported tokens."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open: dict[UUID, tuple[str, float]] = {}
        self.calls: list[dict[str, Any]] = []

    def on_chat_model_start(self, serialized, messages, *, run_id, metadata=None, **kw) -> None:
        with self.lock:
            self.open[run_id] = ((metadata or {}).get("langgraph_node", "?"), time.monotonic())

    def on_llm_end(self, response, *, run_id, **kw) -> None:
        with self.lock:
            node, start = self.open.pop(run_id, ("?", time.monotonic()))
        message = response.generations[0][0].message if response.generations else None
        usage = getattr(message, "usage_metadata", None) or {}
        if not usage:  # adaptsum's own stream emitter (pages it added): not a model call
            return
        with self.lock:
            self.calls.append(
                {
                    "node": node,
                    "start": start,
                    "end": time.monotonic(),
                    "input": usage.get("input_tokens", 0),
                    "output": usage.get("output_tokens", 0),
                }
            )

    def on_llm_error(self, error, *, run_id, **kw) -> None:
        with self.lock:
            self.open.pop(run_id, None)


def round_trips(calls: list[dict[str, Any]]) -> tuple[int, float]:
    """Sequential round trips (overlapping calls merged) and the seconds they span."""
    spans = sorted((c["start"], c["end"]) for c in calls)
    merged: list[list[float]] = []
    for start, end in spans:
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return len(merged), sum(end - start for start, end in merged)


@contextlib.contextmanager
def counting_proxy(upstream: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A pass-through HTTP proxy to `upstream` (a base URL) that logs each POST's span.

    Yields its own base URL and the list it appends `{"start", "end", "step"}` to (the
    step told from the system prompt, as `tests/faultproxy.py` does). Replies,
    streamed ones included, are copied through as they arrive.
    """
    from faultproxy import step_of  # tests/ is on sys.path (see main)

    host, _, rest = upstream.split("://", 1)[1].partition("/")
    upstream_host, _, upstream_port = host.partition(":")
    prefix = "/" + rest.rstrip("/")
    spans: list[dict[str, Any]] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            started = time.monotonic()
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                step = step_of(json.loads(body))
            except ValueError:
                step = "other"
            path = prefix + self.path.removeprefix("/v1") if prefix != "/v1" else self.path
            conn = http.client.HTTPConnection(upstream_host, int(upstream_port or 80), timeout=3600)
            try:
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() in {"content-type", "authorization", "accept"}
                }
                conn.request("POST", path, body, headers)
                reply = conn.getresponse()
                self.send_response(reply.status)
                for key, value in reply.getheaders():
                    if key.lower() not in {"transfer-encoding", "connection", "content-length"}:
                        self.send_header(key, value)
                self.send_header("Connection", "close")
                self.end_headers()
                while chunk := reply.read1(65536):
                    self.wfile.write(chunk)
                    self.wfile.flush()
            except OSError:
                pass  # the client gave up (an abandoned call): the span still counts
            finally:
                conn.close()
                with lock:
                    spans.append({"start": started, "end": time.monotonic(), "step": step})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", spans
    finally:
        server.shutdown()


def run_case(
    ctx: Context, name: str, request: str, pdf: Path, spans: list[dict[str, Any]], **inputs
) -> dict[str, Any]:
    recorder = CallRecorder()
    seen = len(spans)
    graph = build_graph(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": name}, "callbacks": [recorder]}
    started = time.monotonic()
    graph.invoke({"request": request, "documents": [str(pdf)], **inputs}, config, context=ctx)
    wall = time.monotonic() - started
    state = graph.get_state(config).values
    trips, model_seconds = round_trips(recorder.calls)
    at_server = spans[seen:]
    server_trips, _ = round_trips(at_server)
    steps: dict[str, list[int | float]] = defaultdict(lambda: [0, 0, 0, 0.0])
    for c in recorder.calls:
        step = steps[c["node"]]
        step[0] += 1
        step[1] += c["input"]
        step[2] += c["output"]
        step[3] += c["end"] - c["start"]
    usage = state.get("usage", {})
    return {
        "case": name,
        "route": state.get("route", ""),
        "calls": len(recorder.calls),
        "round_trips": trips,
        "server_calls": len(at_server),
        "server_trips": server_trips,
        "server_steps": _critical_path(at_server),
        "input": sum(c["input"] for c in recorder.calls),
        "output": sum(c["output"] for c in recorder.calls),
        "usage_calls": usage.get("calls", 0),
        "wall": wall,
        "model_s": model_seconds,
        "steps": dict(steps),
        "reason": state.get("route_reason", ""),
        "cited": len(state.get("citations", [])),
    }


def _critical_path(spans: list[dict[str, Any]]) -> str:
    """The requests at the server in order, overlapping ones grouped: 'a -> b|c -> d'."""
    groups: list[tuple[float, list[str]]] = []
    for span in sorted(spans, key=lambda s: s["start"]):
        if groups and span["start"] < groups[-1][0]:
            groups[-1] = (max(groups[-1][0], span["end"]), [*groups[-1][1], span["step"]])
        else:
            groups.append((span["end"], [span["step"]]))
    return " -> ".join("|".join(steps) for _, steps in groups)


def print_table(rows: list[dict[str, Any]], metrics: dict[str, float]) -> None:
    print(
        f"\n{'case':12} {'route':9} {'calls':>5} {'trips':>5} {'srv calls':>9} "
        f"{'srv trips':>9} {'in tok':>7} {'out tok':>7} {'model s':>8} {'wall s':>7} {'cites':>5}"
    )
    for r in rows:
        print(
            f"{r['case']:12} {r['route']:9} {r['calls']:5d} {r['round_trips']:5d} "
            f"{r['server_calls']:9d} {r['server_trips']:9d} "
            f"{r['input']:7d} {r['output']:7d} {r['model_s']:8.1f} {r['wall']:7.1f} "
            f"{r['cited']:5d}"
        )
    print("\nper step: calls / input tokens / output tokens / seconds (summed over calls)")
    for r in rows:
        parts = [
            f"{node} {n}/{i}/{o}/{s:.1f}"
            for node, (n, i, o, s) in sorted(r["steps"].items(), key=lambda kv: -kv[1][3])
        ]
        print(f"  {r['case']:10} {'; '.join(parts)}")
    print("\nsequential round trips at the server (overlapping requests joined by |)")
    for r in rows:
        print(f"  {r['case']:10} {r['server_trips']}: {r['server_steps'] or '-'}")
    for r in rows:
        if r["usage_calls"] != r["calls"]:
            print(f"  ! {r['case']}: usage counted {r['usage_calls']} calls, recorded {r['calls']}")
    if metrics:
        print(
            f"\nserver: {metrics.get('predicted_tokens_seconds', 0):.1f} generated tok/s, "
            f"{metrics.get('prompt_tokens_seconds', 0):.1f} prompt tok/s (llama.cpp /metrics); "
            f"{int(metrics.get('tokens_predicted_total', 0))} tokens generated in all"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pdf", type=Path, default=DEFAULT_PDF)
    parser.add_argument("--base-url", help="an OpenAI-compatible server (default: start one)")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--ask-ko", default="Qwen3는 몇 개의 언어와 방언을 지원하나요?")
    parser.add_argument("--ask-en", default="How many languages and dialects does Qwen3 support?")
    parser.add_argument(
        "--cases",
        default="ask-ko,ask-en,stuff,map_reduce,refine",
        help="comma-separated subset of: ask-ko, ask-en, stuff, map_reduce, refine",
    )
    args = parser.parse_args()
    if not args.pdf.is_file():
        print(f"bench/llm.py: {args.pdf}: no such file (pass --pdf)", file=sys.stderr)
        return 1
    with contextlib.ExitStack() as stack:
        sys.path.insert(0, str(REPO / "tests"))
        from llm_server import running_server, start_llama_server

        base_url, model = args.base_url, args.model
        if base_url:
            server = running_server(base_url, model)  # a llama-server: its /metrics is read
        else:
            server = stack.enter_context(start_llama_server(ctx_size=32768))
            base_url, model = server.base_url, server.model
        data = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-llm-"))
        proxy_url, spans = stack.enter_context(counting_proxy(base_url))
        ctx = Context(
            data_dir=data,
            engine="llm",
            chat_model=f"openai:{model}",
            chat_base_url=proxy_url,
            request_timeout=900,
            concurrency=server.parallel,
        )
        DocumentIndex(ctx).index_file(args.pdf)
        cases = {
            "ask-ko": (args.ask_ko, {}),
            "ask-en": (args.ask_en, {}),
            "stuff": ("Summarize this document.", {"mode": "summarize", "strategy": "stuff"}),
            "map_reduce": (
                "Summarize this document.",
                {"mode": "summarize", "strategy": "map_reduce"},
            ),
            "refine": ("Summarize this document.", {"mode": "summarize", "strategy": "refine"}),
        }
        rows = []
        for name in args.cases.split(","):
            request, inputs = cases[name]
            rows.append(run_case(ctx, name, request, args.pdf, spans, **inputs))
            r = rows[-1]
            print(  # as each case ends, so a long run that is stopped still shows its figures
                f"{name}: {r['wall']:.1f} s, route {r['route']}, {r['calls']} calls "
                f"({r['server_calls']} at the server), {r['round_trips']} round trips "
                f"({r['server_trips']} at the server: {r['server_steps'] or '-'})",
                file=sys.stderr,
            )
        print(f"\n{args.pdf.name} on {model} at {base_url}")
        try:
            metrics = server.metrics()
        except OSError:  # not a llama-server (Ollama, vLLM): no llama.cpp metrics
            metrics = {}
        print_table(rows, metrics)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
