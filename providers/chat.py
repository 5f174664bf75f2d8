"""Chat models for the llm engine: OpenAI or any OpenAI-compatible server, and their output.

Reasoning models served by vLLM, Ollama or llama.cpp (Qwen3, DeepSeek-R1) wrap their
thinking in <think>...</think>; it is stripped before any output is used or shown.

Every model call goes through `call`: it sends a per-step `max_tokens`, reports the
server's `finish_reason` and usage (also when the reply is unusable), keeps internal
calls out of LangGraph's `messages` stream (the `nostream` tag), and bounds the call
by wall-clock time. The HTTP client's own timeout is per read, and llama-server sends
a keep-alive every 30 s while it generates, so a streamed call would otherwise never
time out; here the call runs on one shared event loop and is cancelled (closing the
connection, which stops the server's generation) on timeout, at the run's deadline,
or when the user presses Ctrl-C.

Every attempt is counted, also one whose reply never arrives: `call` records each
attempt's usage in the ledger of the node attempt it runs in (`attempt_ledger`), so
usage spent by a node attempt that then fails (and is retried) still reaches the run's
total. A reply's usage is what the server reported; an abandoned call's is its prompt
(estimated) and its `max_tokens` cap, in separate `abandoned_*` counters, because no
OpenAI-compatible server reports the tokens of a request whose connection was closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, BaseMessage
from langgraph.constants import TAG_NOSTREAM

from adaptsum.errors import AdaptsumError, ConfigError
from adaptsum.providers import openai_api_key
from adaptsum.providers.budget import charged_call
from adaptsum.state.graph_state import Usage, add_usage

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from adaptsum.state.context import Context

_THINK_BLOCK = re.compile(r"<think>.*?(</think>|$)\s*", re.DOTALL)


HTTP_RETRIES = 2
"""Retries of one request by the openai client: HTTP 429 (waiting what `Retry-After` or
`retry-after-ms` says, up to 2 min), 408/409, 5xx and dropped or refused connections,
with exponential backoff otherwise; all inside the call's `request_timeout`. The node's
`MODEL_RETRY` then tries the whole step up to 3 times, so one step sends at most
3 x (1 + HTTP_RETRIES) = 9 requests, and a timed-out call is never retried by the client
(it is cancelled as a whole). Counted at a proxy in tests/test_faults.py."""

MAX_RETRY_AFTER_S = 60.0
"""Longest server-asked pause honoured between two node attempts (see `_honour_retry_after`)."""


def make_chat_model(ctx: Context) -> BaseChatModel:
    """The chat model `ctx.chat_model` names ('provider:model')."""
    provider, _, model = ctx.chat_model.strip().partition(":")
    if not model:
        raise ConfigError(
            f"chat_model {ctx.chat_model!r} must look like 'openai:gpt-4.1-mini' (provider:model)"
        )
    if provider == "openai":
        from langchain_openai import ChatOpenAI

        from adaptsum.providers.tokens import seed_tiktoken_cache
        from adaptsum.state.context import on_server

        base_url = ctx.chat_base_url.strip()
        key = openai_api_key(
            "ADAPTSUM_CHAT_API_KEY",
            base_url,
            f"chat model 'openai:{model}' needs OPENAI_API_KEY, which this server's "
            "operator has not set (use engine 'extractive')"
            if on_server()
            else f"chat model 'openai:{model}' needs OPENAI_API_KEY (or set chat_base_url "
            "to an OpenAI-compatible server, or use --engine extractive)",
        )
        # langchain-openai counts tokens with tiktoken; keep that offline.
        seed_tiktoken_cache("o200k_base")
        seed_tiktoken_cache("cl100k_base")
        return ChatOpenAI(
            model=model,
            base_url=base_url or None,
            api_key=key,
            temperature=ctx.temperature,
            # The HTTP read timeout. `call` bounds the whole call by request_timeout and
            # must act first: a client-side timeout would be retried by the client.
            timeout=ctx.request_timeout + 5,
            max_retries=HTTP_RETRIES,
            stream_usage=True,
        )
    from langchain.chat_models import init_chat_model

    try:
        return init_chat_model(
            ctx.chat_model, temperature=ctx.temperature, timeout=ctx.request_timeout
        )
    except (ImportError, ValueError) as exc:
        raise ConfigError(f"chat_model {ctx.chat_model!r}: {exc}") from None


def strip_think(text: str) -> str:
    """Text without <think> blocks (also an unclosed one, or a stray closing tag)."""
    if "</think>" in text and "<think>" not in text:
        text = text.rsplit("</think>", 1)[1]
    return _THINK_BLOCK.sub("", text).strip()


def dedupe_lines(text: str) -> str:
    """`text` without lines that repeat an earlier one (a small model's loop).

    Lines are compared with their whitespace collapsed; a run of blank lines left by
    the dropped ones becomes one. Decided line by line, in order, so the result for a
    text is a prefix of the result for any continuation of it (up to its last line):
    a streamed answer can be shown line by line and end up equal to the final one.
    """
    seen: set[str] = set()
    kept: list[str] = []
    for line in text.split("\n"):
        key = " ".join(line.split())
        if key:
            if key in seen:
                continue
            seen.add(key)
        elif kept and not kept[-1].strip():
            continue
        kept.append(line)
    return "\n".join(kept)


def message_text(message: BaseMessage) -> str:
    """The visible text of a model reply."""
    return strip_think(message.text)


def usage_of(message: BaseMessage | None) -> Usage:
    """One call's token usage, as reported by the server (zeros when it reports none)."""
    meta = getattr(message, "usage_metadata", None) or {}
    return Usage(
        calls=1,
        input_tokens=int(meta.get("input_tokens", 0)),
        output_tokens=int(meta.get("output_tokens", 0)),
        total_tokens=int(meta.get("total_tokens", 0)),
    )


class CallTimeout(TimeoutError):
    """One model call ran longer than `request_timeout` (retried by the node's policy)."""


class RunDeadlineExceeded(AdaptsumError):
    """The run has used up `run_deadline`; no further model call is started."""


class ModelRequestRejected(AdaptsumError):
    """The model server refused the request (HTTP 4xx: context too long, bad parameter)."""


class CallCancelled(AdaptsumError):
    """The user interrupted the run (Ctrl-C); calls in flight were cancelled."""


CANCEL = threading.Event()
"""Set on Ctrl-C: every call in flight is cancelled within a fraction of a second."""

_POLL_S = 0.1


@dataclass
class Reply:
    """One model call's visible text, its finish reason and the usage the server reported."""

    text: str
    finish_reason: str
    usage: Usage
    message: AIMessage | None = None
    raw: str = ""
    """The reply exactly as streamed (no <think> block, whitespace kept)."""

    @property
    def truncated(self) -> bool:
        """The server stopped at `max_tokens`: the reply is cut, never to be trusted as whole."""
        return self.finish_reason == "length"


class _Loop:
    """One event loop on a daemon thread for every model call of the process.

    One loop, so the async HTTP client's connection pool (cached per base URL by
    langchain-openai) is always used from the loop that created it.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        thread = threading.Thread(target=self.loop.run_forever, name="adaptsum-llm", daemon=True)
        thread.start()

    def submit(self, coro_factory, context: contextvars.Context) -> tuple[Future, list]:
        done: Future = Future()
        holder: list[asyncio.Task] = []

        def start() -> None:
            task = self.loop.create_task(coro_factory(), context=context)
            holder.append(task)

            def finished(t: asyncio.Task) -> None:
                if t.cancelled():
                    done.cancel()
                elif t.exception() is not None:
                    done.set_exception(t.exception())
                else:
                    done.set_result(t.result())

            task.add_done_callback(finished)

        self.loop.call_soon_threadsafe(start)
        return done, holder

    def cancel(self, holder: list) -> None:
        self.loop.call_soon_threadsafe(lambda: [t.cancel() for t in holder])


_loop: _Loop | None = None
_loop_lock = threading.Lock()


def _shared_loop() -> _Loop:
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = _Loop()
        return _loop


def call(
    model: BaseChatModel,
    messages: list[BaseMessage],
    *,
    max_tokens: int,
    timeout: float,
    deadline: float | Callable[[], float] | None = None,
    stream: bool = False,
    temperature: float | None = None,
    response_format: dict[str, Any] | None = None,
) -> Reply:
    """Call the model once, bounded by `timeout` seconds and the monotonic `deadline`.

    `stream=False` tags the call `nostream`, so LangGraph's `messages` stream leaves
    it out (classification, grading, translation, map and collapse are internal).
    A reply cut at `max_tokens` comes back with `finish_reason='length'`, also when
    the OpenAI client raises `LengthFinishReasonError` for it.

    Raises:
        CallTimeout: the call took longer than `timeout` (retryable).
        RunDeadlineExceeded: the run's deadline passed before or during the call.
        CallCancelled: Ctrl-C.
    """
    if CANCEL.is_set():
        raise CallCancelled("interrupted")
    if callable(deadline):
        deadline = deadline()  # a run's clock starts at its first model call
    if deadline is not None and time.monotonic() >= deadline:
        raise RunDeadlineExceeded("the run reached its run_deadline before this model call")
    kwargs: dict[str, Any] = {"max_tokens": max_tokens}
    if temperature is not None:
        kwargs["temperature"] = temperature
    if response_format is not None:
        kwargs["response_format"] = response_format
    if not stream:
        # Not streamed over HTTP either: one plain reply, and out of the `messages` stream.
        kwargs["stream"] = False
    runnable = model.bind(**kwargs)
    if not stream:
        runnable = runnable.with_config(tags=[TAG_NOSTREAM])
    # The run's token budget: the call's worst case is held before it starts (raises
    # TokenBudgetExceeded when it does not fit) and replaced by its real usage after.
    # The attempt ledger counts every call, also one abandoned mid-generation.
    with charged_call(messages, max_tokens) as charge:
        try:
            message = _bounded(lambda: runnable.ainvoke(messages), timeout, deadline)
        except BaseException as exc:
            rejected = _rejection(exc) if isinstance(exc, Exception) else None
            if rejected is not None:
                charge.spent = 0
                _record(Usage(calls=1))  # the server answered with an error: nothing generated
                raise rejected from None
            cut = length_error_reply(exc) if isinstance(exc, Exception) else None
            if cut is not None:
                charge.spent = cut.usage.get("total_tokens")
            elif not isinstance(
                exc, CallTimeout | RunDeadlineExceeded | CallCancelled | KeyboardInterrupt
            ):
                charge.spent = 0  # failed before generating: nothing to hold
            # else abandoned mid-generation: charged its worst case
            _record(cut.usage if cut is not None else abandoned_usage(messages, max_tokens))
            if isinstance(exc, Exception):
                _honour_retry_after(exc, deadline)
            raise
        reply = _reply(message)
        charge.spent = reply.usage.get("total_tokens") or None  # none reported: worst case
    _record(reply.usage)
    return reply


def abandoned_usage(messages: list[BaseMessage], max_tokens: int) -> Usage:
    """What an abandoned call is known to have cost: its prompt, and its cap as a bound."""
    from adaptsum.providers.tokens import count_tokens

    prompt = sum(count_tokens(m.text) for m in messages)
    return Usage(
        calls=1, abandoned_calls=1, abandoned_input_tokens=prompt, abandoned_max_tokens=max_tokens
    )


_LEDGER: contextvars.ContextVar[list[Usage] | None] = contextvars.ContextVar(
    "adaptsum_attempt_ledger", default=None
)


@contextlib.contextmanager
def attempt_ledger() -> Iterator[list[Usage]]:
    """Collect the usage of every model call made inside (this thread's context)."""
    ledger: list[Usage] = []
    token = _LEDGER.set(ledger)
    try:
        yield ledger
    finally:
        _LEDGER.reset(token)


def total_usage(ledger: list[Usage]) -> Usage:
    """The sum of a ledger's entries."""
    out: Usage = {}
    for usage in ledger:
        out = add_usage(out, usage)
    return out


def _record(usage: Usage) -> None:
    ledger = _LEDGER.get()
    if ledger is not None:
        ledger.append(usage)


def retry_after(exc: BaseException) -> float | None:
    """Seconds the server asked to wait in its 429/503 reply (`retry-after-ms`, `Retry-After`)."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if not headers:
        return None
    with contextlib.suppress(TypeError, ValueError):
        if headers.get("retry-after-ms") is not None:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        import email.utils

        with contextlib.suppress(TypeError, ValueError):
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    return None


def _honour_retry_after(exc: BaseException, deadline: float | None) -> None:
    """Before the node's next attempt, wait as long as the server's last refusal asked.

    The openai client waits `Retry-After` between its own retries but not after its
    last one, and LangGraph's retry sleeps its own backoff; without this pause the next
    attempt would come back sooner than the server said. The wait stops at the run's
    deadline and on Ctrl-C, and is capped at `MAX_RETRY_AFTER_S`.
    """
    delay = retry_after(exc)
    if not delay:
        return
    delay = min(delay, MAX_RETRY_AFTER_S)
    if deadline is not None:
        delay = min(delay, max(0.0, deadline - time.monotonic()))
    CANCEL.wait(delay)


def server_unreachable(exc: BaseException) -> bool:
    """True when no connection to the model server could be made at all (nothing listens).

    Unlike a 500 or a reply cut mid-way, this says nothing about the passages: a step
    that would fall back (a grader counting its chunks not relevant) must fail instead,
    so the user reads "cannot reach the model server", not "the documents lack it".
    """
    try:
        import openai
    except ImportError:  # pragma: no cover - langchain-openai depends on it
        return False
    if not isinstance(exc, openai.APIConnectionError) or isinstance(exc, openai.APITimeoutError):
        return False
    # langchain-openai wraps openai's error, which wraps the HTTP client's (httpx, or the
    # copy the openai package may bring under another module name): look down the chain.
    cause: BaseException | None = exc
    for _ in range(10):
        cause = cause.__cause__ or cause.__context__
        if cause is None:
            return False
        if type(cause).__name__ == "ConnectError" or isinstance(cause, ConnectionRefusedError):
            return True
    return False


def model_server_error(exc: BaseException, ctx: Context | None) -> str | None:
    """One line for a model call that failed on every attempt, or None if it is not one.

    The node's retries are over when this reaches the CLI: a server that is down, or
    slower than `request_timeout` every time, ends the run with this line, not a traceback.
    """
    where = (ctx.chat_base_url if ctx is not None else None) or "the OpenAI API"
    if isinstance(exc, CallTimeout):
        return f"{exc} on every attempt ({where}); raise --request-timeout for a slow server"
    try:
        import openai
    except ImportError:  # pragma: no cover - langchain-openai depends on it
        return None
    if isinstance(exc, openai.APITimeoutError | openai.APIConnectionError):
        return f"cannot reach the model server at {where} ({exc}); is it running?"
    if isinstance(exc, openai.APIStatusError):
        detail = " ".join(str(getattr(exc, "message", exc)).split())[:200]
        return f"the model server at {where} answered HTTP {exc.status_code}: {detail}"
    return None


def _rejection(exc: Exception) -> ModelRequestRejected | None:
    """A one-line error for a 4xx reply (retrying an identical request cannot help)."""
    try:
        import openai
    except ImportError:  # pragma: no cover - langchain-openai depends on it
        return None
    if isinstance(
        exc, openai.BadRequestError | openai.NotFoundError | openai.UnprocessableEntityError
    ):
        detail = " ".join(str(getattr(exc, "message", exc)).split())[:300]
        return ModelRequestRejected(f"the model server refused the request: {detail}")
    return None


def _bounded(coro_factory, timeout: float, deadline: float | None):
    """Run the coroutine on the shared loop; cancel it on timeout, deadline or Ctrl-C."""
    loop = _shared_loop()
    future, holder = loop.submit(coro_factory, contextvars.copy_context())
    started = time.monotonic()
    try:
        while True:
            wait([future], timeout=_POLL_S)
            if future.done():
                return future.result()
            now = time.monotonic()
            if CANCEL.is_set():
                raise CallCancelled("interrupted; model calls in flight were cancelled")
            if deadline is not None and now >= deadline:
                raise RunDeadlineExceeded(
                    "the run reached its run_deadline; the model call in flight was cancelled"
                )
            if now - started >= timeout:
                raise CallTimeout(f"model call took over request_timeout={timeout:g} s")
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            CANCEL.set()  # the other threads' calls stop too
        loop.cancel(holder)
        raise


def _reply(message: BaseMessage) -> Reply:
    meta = getattr(message, "response_metadata", None) or {}
    finish = str(meta.get("finish_reason") or "")
    text = message_text(message)
    return Reply(
        text=text,
        finish_reason=finish,
        usage=usage_of(message),
        message=message if isinstance(message, AIMessage) else None,
        raw=message.text if "<think>" not in message.text else text,
    )


def length_error_reply(exc: Exception) -> Reply | None:
    """The reply inside openai's `LengthFinishReasonError` (json_schema mode), if it is one."""
    try:
        import openai
    except ImportError:  # pragma: no cover - langchain-openai depends on it
        return None
    if not isinstance(exc, openai.LengthFinishReasonError):
        return None
    completion = getattr(exc, "completion", None)
    usage = getattr(completion, "usage", None)
    text = ""
    with contextlib.suppress(AttributeError, IndexError, TypeError):
        text = completion.choices[0].message.content or ""
    return Reply(
        text=strip_think(text),
        finish_reason="length",
        usage=Usage(
            calls=1,
            input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            output_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            total_tokens=int(getattr(usage, "total_tokens", 0) or 0),
        ),
    )


@contextlib.contextmanager
def cancel_on_interrupt() -> Iterator[None]:
    """While running a graph: Ctrl-C cancels every model call in flight, then interrupts.

    Without it, the main thread's KeyboardInterrupt would wait for LangGraph's worker
    threads, whose calls could run until their timeout.
    """
    CANCEL.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame) -> None:
        CANCEL.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        CANCEL.clear()


def emit_text(text: str) -> None:
    """Send `text` on LangGraph's `messages` stream as if a model wrote it.

    Used when adaptsum itself adds to a streamed answer (pages it attached, a flag),
    so a client that concatenates the stream gets exactly the final answer. No
    request is made: LangChain's fake chat model replays the text, token by token.
    """
    if not text:
        return
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

    GenericFakeChatModel(messages=iter([AIMessage(text)])).invoke("adaptsum")
