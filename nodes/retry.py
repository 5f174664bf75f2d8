"""Retry policy for model-calling nodes, and how a node knows it is on its last attempt.

LangGraph's default `retry_on` skips `ValueError` subclasses, which is what parse and
validation failures of structured output are; those are retried here explicitly, as
are the transient API errors. On the last attempt a node falls back instead of failing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from langchain_core.exceptions import OutputParserException
from langgraph.runtime import Runtime
from langgraph.types import RetryPolicy, default_retry_on
from pydantic import ValidationError

from adaptsum.errors import AdaptsumError

MAX_ATTEMPTS = 3
PARSE_ERRORS = (OutputParserException, ValidationError)
"""What unusable structured output raises; `ValueError` subclasses, so retried explicitly."""


def retryable(exc: Exception) -> bool:
    """Parse/validation errors of model output, and whatever LangGraph retries by default.

    Our own errors (bad configuration, unreadable documents) are final: retrying
    would only delay the one-line message.
    """
    from adaptsum.providers.chat import CallTimeout

    if isinstance(exc, AdaptsumError):
        return False
    if isinstance(exc, (*PARSE_ERRORS, CallTimeout)):
        return True
    try:
        import openai
    except ImportError:  # pragma: no cover - langchain-openai depends on it
        return default_retry_on(exc)
    transient = (
        openai.APIConnectionError,
        openai.APITimeoutError,
        openai.RateLimitError,
        openai.InternalServerError,
    )
    return isinstance(exc, transient) or default_retry_on(exc)


MODEL_RETRY = RetryPolicy(
    max_attempts=MAX_ATTEMPTS, initial_interval=0.5, backoff_factor=2.0, retry_on=retryable
)


def last_attempt(runtime: Runtime) -> bool:
    """True when this execution is the node's final try under `MODEL_RETRY`."""
    info = getattr(runtime, "execution_info", None)
    return info is None or info.node_attempt >= MAX_ATTEMPTS


Deadline = Callable[[], float]
"""The monotonic time a run's model calls must end by, read when a call starts."""

_deadlines: dict[tuple[str | None, str | None], float] = {}
_deadline_lock = threading.Lock()


def run_deadline(runtime: Runtime) -> Deadline | None:
    """When this run's model calls must end by (`run_deadline`), or None for no limit.

    A clock, read by each model call: the first call of the run starts it (not the first
    node that may call a model, so loading embeddings or retrieving does not use it up),
    and parallel tasks of the run share it.
    """
    seconds = runtime.context.run_deadline
    if not seconds:
        return None
    info = getattr(runtime, "execution_info", None)
    key = (getattr(info, "thread_id", None), getattr(info, "run_id", None))

    def clock() -> float:
        with _deadline_lock:
            if len(_deadlines) > 1000:
                _deadlines.clear()
            return _deadlines.setdefault(key, time.monotonic() + seconds)

    return clock
