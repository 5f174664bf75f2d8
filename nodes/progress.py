"""Progress and token budget shared by the parallel tasks of one summarize run.

Map tasks run in parallel and each sees only its own chunk, so the count of finished
tasks, the tokens spent and the budget live here, per run and stage, behind a lock.
Events go out through LangGraph's stream writer as custom events of kind 'summary'.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime

from adaptsum.errors import AdaptsumError
from adaptsum.state.graph_state import Usage


class TokenBudgetExceeded(AdaptsumError):
    """The next call would spend more tokens than `max_tokens` allows."""


@dataclass
class RunProgress:
    """Counters of one stage (map, collapse level, refine) of one run."""

    total: int
    done: int = 0
    started: float = field(default_factory=time.monotonic)


@dataclass
class RunBudget:
    """Tokens spent and reserved by in-flight calls of one run."""

    spent: int = 0
    reserved: int = 0
    limit: int | None = None
    """A budget approved on resume (`summarize.approve_plan`), replacing `max_tokens`."""


_lock = threading.Lock()
_stages: dict[tuple[str, str], RunProgress] = {}
_budgets: dict[str, RunBudget] = {}


def run_key(runtime: Runtime) -> str:
    """Identifies the run (its thread when checkpointed) across its parallel tasks."""
    info = getattr(runtime, "execution_info", None)
    if info is None:
        return "local"
    return info.thread_id or info.run_id or "local"


def emit(runtime: Runtime, stage: str, total: int, pages: list[int], finished: bool) -> None:
    """Count a finished task (when `finished`) and stream done/total, pages, tokens, ETA."""
    key = run_key(runtime)
    with _lock:
        progress = _stages.setdefault((key, stage), RunProgress(total=total))
        progress.total = total
        if finished:
            progress.done += 1
        done = progress.done
        elapsed = time.monotonic() - progress.started
        spent = _budgets.get(key, RunBudget()).spent
        if finished and done >= total:
            _stages.pop((key, stage), None)
    eta = elapsed / done * (total - done) if done else None
    get_stream_writer()(
        {
            "kind": "summary",
            "stage": stage,
            "done": done,
            "total": total,
            "pages": pages,
            "tokens": spent,
            "eta_s": None if eta is None else round(eta, 1),
        }
    )


def reset_stage(runtime: Runtime, stage: str) -> None:
    """Forget a stage's counters (a new run on the thread starts from zero)."""
    with _lock:
        _stages.pop((run_key(runtime), stage), None)


def reserve(runtime: Runtime, max_tokens: int, estimate: int, what: str) -> None:
    """Hold `estimate` tokens for a call, or stop the run before it would exceed the budget.

    Raises:
        TokenBudgetExceeded: spent + in flight + estimate > max_tokens (when set).
    """
    key = run_key(runtime)
    with _lock:
        budget = _budgets.setdefault(key, RunBudget())
        if budget.limit is not None:
            max_tokens = budget.limit
        if max_tokens <= 0:
            return
        if budget.spent + budget.reserved + estimate > max_tokens:
            raise TokenBudgetExceeded(
                f"token budget of {max_tokens} reached: {budget.spent} spent, the next {what} "
                f"needs about {estimate}. Finished steps are checkpointed on thread {key!r}: "
                "run again with that thread and a larger budget to continue"
            )
        budget.reserved += estimate


def set_budget(runtime: Runtime, max_tokens: int) -> None:
    """Use `max_tokens` for the rest of this thread's run (a budget approved on resume)."""
    with _lock:
        _budgets.setdefault(run_key(runtime), RunBudget()).limit = max_tokens


def settle(runtime: Runtime, estimate: int, usage: Usage) -> None:
    """Replace a reservation with what the call actually spent."""
    key = run_key(runtime)
    with _lock:
        budget = _budgets.setdefault(key, RunBudget())
        budget.reserved = max(0, budget.reserved - estimate)
        budget.spent += int(usage.get("total_tokens", 0))


def forget_run(runtime: Runtime) -> None:
    """Drop a finished run's budget."""
    with _lock:
        _budgets.pop(run_key(runtime), None)
