"""A fault-injecting HTTP proxy in front of the real model server, for tests and benches.

It forwards OpenAI-protocol requests to llama-server and, by a schedule, answers
instead: HTTP 429 with `Retry-After`, HTTP 500, a reply held back past the client's
timeout, a connection dropped in the middle of the reply, or the reply's content
rewritten to malformed JSON. It records every chat request (what step sent it, when,
what it was answered) and the most requests it ever had in flight at once, so a test
counts retries, repeats and concurrency where the server sees them.

Steps are told apart by their system prompt, the way a log reader would. `max_tokens`
may be capped for speed (a 135M model on a loaded CPU writes a few tokens a second); a
reply cut at the cap comes back with `finish_reason: length`, which adaptsum handles
as it does from any server.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

STEPS = (
    ("classify", "You route requests"),
    ("contextualize", "Rewrite the user's latest question"),
    ("translate", "Translate the user's text"),
    ("grade_batch", "You judge whether each of"),
    ("grade", "You judge whether a passage"),
    ("answer", "You answer questions about documents"),
    ("map", "You summarize one passage"),
    ("collapse", "You condense consecutive partial summaries"),
    ("reduce", "You write the final summary"),
    ("stuff", "You summarize a whole document"),
    ("refine", "You are refining a running summary"),
)


def step_of(body: dict) -> str:
    """Which adaptsum step sent this chat request (from its system prompt)."""
    messages = body.get("messages") or [{}]
    system = str(messages[0].get("content", ""))
    return next((name for name, marker in STEPS if system.startswith(marker)), "other")


@dataclass(frozen=True)
class Fault:
    """What the proxy does instead of relaying a request unchanged."""

    kind: str
    """'status' (answer `status` itself), 'delay' (hold the reply `seconds`), 'drop' (close
    the connection half-way through the reply) or 'malformed' (rewrite its content)."""
    status: int = 200
    seconds: float = 0.0
    retry_after: str | None = None


@dataclass
class Call:
    """One chat request as the proxy saw it."""

    index: int
    step: str
    user: str
    temperature: float | None
    fault: Fault | None
    started: float
    ended: float = 0.0
    status: int = 0
    """What the client got: 200, the injected status, or 0 (dropped or abandoned)."""


Schedule = Callable[[int, str, dict], Fault | None]
"""(request number from 0, step, request body) -> the fault to inject, or None."""


def no_faults(index: int, step: str, body: dict) -> Fault | None:
    """Relay everything unchanged."""
    return None


def rate_limited(
    share: float, seed: int = 11, retry_after: str = "1", steps: set[str] | None = None
) -> Schedule:
    """Answer a seeded-random `share` of requests (of `steps`, default all) with HTTP 429."""
    rnd = random.Random(seed)
    lock = threading.Lock()

    def schedule(index: int, step: str, body: dict) -> Fault | None:
        if steps is not None and step not in steps:
            return None
        with lock:
            hit = rnd.random() < share
        return Fault("status", status=429, retry_after=retry_after) if hit else None

    return schedule


@dataclass
class FaultProxy:
    """The proxy server; `with FaultProxy(upstream, schedule) as proxy: proxy.base_url`."""

    upstream: str
    """The model server's base URL, e.g. http://127.0.0.1:8080/v1."""
    schedule: Schedule = no_faults
    max_tokens_cap: int = 0
    """When > 0, forwarded requests ask for at most this many output tokens."""
    calls: list[Call] = field(default_factory=list)
    peak_in_flight: int = 0
    in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        """Where adaptsum should send its requests (set `chat_base_url` to it)."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def of(self, step: str) -> list[Call]:
        """The recorded calls of one step, in arrival order."""
        with self._lock:
            return [c for c in self.calls if c.step == step]

    def answered(self, step: str) -> list[Call]:
        """Calls of `step` that got a complete 200 reply."""
        return [c for c in self.of(step) if c.status == 200]

    def __enter__(self) -> FaultProxy:
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()  # held replies end at once
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- bookkeeping used by the handler ----------------------------------------------
    def _begin(self, step: str, body: dict) -> Call:
        messages = body.get("messages") or [{}]
        with self._lock:
            call = Call(
                index=len(self.calls),
                step=step,
                user=str(messages[-1].get("content", "")),
                temperature=body.get("temperature"),
                fault=None,
                started=time.monotonic(),
            )
            self.calls.append(call)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        call.fault = self.schedule(call.index, step, body)
        return call

    def _end(self, call: Call, status: int) -> None:
        with self._lock:
            call.ended = time.monotonic()
            call.status = status
            self.in_flight -= 1


class _Handler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"  # keep-alive, as the openai client's pool expects

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return

    def do_GET(self) -> None:
        status, headers, body = self._relay("GET", b"")
        self._send(status, headers, body)

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not self.path.endswith("/chat/completions"):
            self._send(*self._relay("POST", raw))
            return
        body = json.loads(raw or b"{}")
        proxy = self.owner
        call = proxy._begin(step_of(body), body)
        fault, status = call.fault, 0
        try:
            if fault is not None and fault.kind == "status":
                status = fault.status
                extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                message = {"error": {"message": f"injected {status}", "type": "injected"}}
                self._send(status, extra, json.dumps(message).encode())
                return
            for key in ("max_tokens", "max_completion_tokens"):  # langchain-openai sends the latter
                if proxy.max_tokens_cap and body.get(key):
                    body[key] = min(int(body[key]), proxy.max_tokens_cap)
                if fault is not None and fault.kind == "malformed" and body.get(key):
                    body[key] = 1  # its content is replaced anyway
            if fault is not None and fault.kind == "delay" and proxy._stop.wait(fault.seconds):
                return
            upstream_status, headers, reply = self._relay("POST", json.dumps(body).encode())
            if fault is not None and fault.kind == "drop":
                self._send_partial(upstream_status, headers, reply)
                return
            if fault is not None and fault.kind == "malformed" and upstream_status == 200:
                reply = _malformed(reply)
            self._send(upstream_status, headers, reply)
            status = upstream_status
        except (BrokenPipeError, ConnectionResetError):
            status = 0  # the client gave up (its timeout) and closed the connection
        finally:
            proxy._end(call, status)

    # -- helpers -----------------------------------------------------------------------
    def _relay(self, method: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        target = urlsplit(self.owner.upstream)
        prefix = target.path.rstrip("/").removesuffix("/v1")
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=600)
        try:
            conn.request(
                method,
                prefix + self.path,
                body=body or None,
                headers={"Content-Type": "application/json"} if body else {},
            )
            response = conn.getresponse()
            data = response.read()
            kept = {"Content-Type": response.getheader("Content-Type", "application/json")}
            return response.status, kept, data  # a streamed (SSE) reply goes on whole
        finally:
            conn.close()

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _send_partial(self, status: int, headers: dict[str, str], body: bytes) -> None:
        """Headers promise the whole body; half of it is sent, then the socket is closed."""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def _malformed(reply: bytes) -> bytes:
    """The reply with its message content replaced by JSON cut off in the middle."""
    payload = json.loads(reply)
    for choice in payload.get("choices", []):
        choice["message"]["content"] = '{"grades": [{"passage": 1, "evidence": "unterminated'
        choice["finish_reason"] = "stop"
    return json.dumps(payload).encode()


@contextlib.contextmanager
def fault_proxy(upstream: str, schedule: Schedule = no_faults, **kwargs) -> Iterator[FaultProxy]:
    """`FaultProxy` as a context manager function (for benches)."""
    with FaultProxy(upstream, schedule, **kwargs) as proxy:
        yield proxy


def survey_pdf(path: Path, pages: int) -> Path:
    """Short pages, each naming its station, so the proxy can tell which chunk a call sent."""
    import pymupdf

    doc = pymupdf.open()
    for p in range(pages):
        doc.new_page().insert_textbox(
            pymupdf.Rect(50, 50, 550, 800),
            f"Station {p + 1} of the survey lies at kilometre {7 * p + 3}. Its crew counted "
            f"{11 * p + 5} birds and measured a water temperature of {p % 9 + 10} degrees. "
            f"The river bank there is {p % 4 + 2} metres high and covered in reeds.",
            fontsize=11,
        )
    doc.save(path)
    return path


SUMMARY_ENV = {
    "ADAPTSUM_MAP_MAX_TOKENS": "12",
    "ADAPTSUM_MAP_PARAGRAPHS": "1",
    "ADAPTSUM_MAP_SENTENCES": "1",
    "ADAPTSUM_MAP_CACHE": "0",  # every chunk really goes to the server: no hit hides a call
    "ADAPTSUM_REQUEST_TIMEOUT": "600",  # a loaded CPU can take minutes per call
}
"""Environment of the short llm summaries the fault tests and bench/faults.py run."""


def summarize_args(
    pdf: Path,
    data: Path,
    base_url: str,
    *,
    strategy: str = "map_reduce",
    concurrency: int = 2,
    model: str = "smollm2-135m-instruct",
) -> list[str]:
    """`adaptsum` arguments of a short llm summary through `base_url` (a proxy).

    Chunks of 48 tokens without overlap (about one per survey page), one-sentence map
    results (with `SUMMARY_ENV`) and a one-paragraph, one-sentence summary, as JSON.
    """
    return [
        "summarize",
        str(pdf),
        "--strategy",
        strategy,
        "--engine",
        "llm",
        "--chat-model",
        f"openai:{model}",
        "--chat-base-url",
        base_url,
        "--chunk-size",
        "48",
        "--chunk-overlap",
        "0",
        "--paragraphs",
        "1",
        "--sentences",
        "1",
        "--concurrency",
        str(concurrency),
        "--data-dir",
        str(data),
        "--json",
    ]
