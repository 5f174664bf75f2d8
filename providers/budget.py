"""The token budget of one run: every model call reserves its worst case before it starts.

A call's worst case is its prompt (counted) plus its own output cap, the `max_tokens`
sent with it, so a run never spends more than its budget even when every reply runs
to its cap: the call that would not fit is not started (`TokenBudgetExceeded`). After
the call the reservation is replaced by the tokens the server reported; a call that
reports no usage, or is abandoned mid-generation (timeout, deadline, Ctrl-C), is
charged its whole worst case, since the server may have generated that much.

The ledger lives per run (its thread, when checkpointed) behind a lock, because map
tasks run in parallel and each sees only its own chunk. The graph's gate nodes sync it
from state (tokens already spent, a budget approved on resume), so a run resumed in
another process starts from what the checkpoint says. Outside a graph (a bare engine
call) there is no ledger and no budget.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from langchain_core.messages import BaseMessage
from langgraph.runtime import Runtime

from adaptsum.errors import AdaptsumError
from adaptsum.providers.tokens import count_tokens

PER_MESSAGE = 4
"""Tokens a chat template adds around one message (role markers); a bound, not a guess."""

PER_CALL = 3
"""Tokens a chat template adds to a whole prompt (the assistant's turn marker)."""


class TokenBudgetExceeded(AdaptsumError):
    """The next call (or wave of calls) would spend more tokens than the budget allows."""

    def __init__(self, limit: int, spent: int, reserved: int, needs: int, what: str) -> None:
        self.limit, self.spent, self.reserved, self.needs, self.what = (
            limit,
            spent,
            reserved,
            needs,
            what,
        )
        super().__init__(
            f"token budget of {limit} reached: {spent} spent, the next {what} needs up to "
            f"{needs} and {max(0, limit - spent - reserved)} are left"
        )


@dataclass
class RunBudget:
    """Tokens spent and reserved by in-flight calls of one run."""

    spent: int = 0
    reserved: int = 0
    limit: int | None = None
    """A budget approved on resume, replacing the context's `max_tokens`."""


_lock = threading.Lock()
_budgets: dict[str, RunBudget] = {}


def run_key(runtime: Runtime) -> str:
    """Identifies the run (its thread when checkpointed) across its parallel tasks."""
    info = getattr(runtime, "execution_info", None)
    if info is None:
        return "local"
    return info.thread_id or info.run_id or "local"


def limit_of(runtime: Runtime) -> int:
    """The budget in force for this run: an approved one, else `max_tokens` (0: none)."""
    with _lock:
        budget = _budgets.get(run_key(runtime))
        if budget is not None and budget.limit is not None:
            return budget.limit
    return int(getattr(runtime.context, "max_tokens", 0) or 0)


def worst_case(messages: Sequence[BaseMessage], max_tokens: int) -> int:
    """The most a call can cost: its prompt's tokens plus its whole output cap."""
    prompt = sum(count_tokens(str(m.content)) + PER_MESSAGE for m in messages) + PER_CALL
    return prompt + max_tokens


def status(runtime: Runtime) -> tuple[int, int, int]:
    """(limit, spent, reserved) of this run's budget; limit 0 means none."""
    limit = limit_of(runtime)
    with _lock:
        budget = _budgets.get(run_key(runtime), RunBudget())
        return limit, budget.spent, budget.reserved


def reserve(runtime: Runtime, needs: int, what: str) -> None:
    """Hold `needs` tokens for a call, or raise before it would exceed the budget.

    Raises:
        TokenBudgetExceeded: spent + in flight + needs > the budget (when there is one).
    """
    limit = limit_of(runtime)
    key = run_key(runtime)
    with _lock:
        budget = _budgets.setdefault(key, RunBudget())
        if limit > 0 and budget.spent + budget.reserved + needs > limit:
            raise TokenBudgetExceeded(limit, budget.spent, budget.reserved, needs, what)
        budget.reserved += needs


def settle(runtime: Runtime, reserved: int, spent: int) -> None:
    """Replace a reservation with what the call actually cost."""
    with _lock:
        budget = _budgets.setdefault(run_key(runtime), RunBudget())
        budget.reserved = max(0, budget.reserved - reserved)
        budget.spent += max(0, int(spent))


def sync(runtime: Runtime, spent: int, limit: int | None) -> None:
    """Align the ledger with the checkpoint: at least `spent` spent; `limit` if approved."""
    with _lock:
        budget = _budgets.setdefault(run_key(runtime), RunBudget())
        budget.spent = max(budget.spent, int(spent))
        if limit:
            budget.limit = int(limit)


def set_budget(runtime: Runtime, max_tokens: int) -> None:
    """Use `max_tokens` for the rest of this thread's run (a budget approved on resume)."""
    with _lock:
        _budgets.setdefault(run_key(runtime), RunBudget()).limit = max_tokens


def spent_of(runtime: Runtime) -> int:
    """Tokens this run has spent so far (as the ledger knows)."""
    with _lock:
        return _budgets.get(run_key(runtime), RunBudget()).spent


def forget_run(runtime: Runtime) -> None:
    """Drop a run's budget (its turn ended, or a new turn starts from zero)."""
    with _lock:
        _budgets.pop(run_key(runtime), None)


def current_runtime() -> Runtime | None:
    """The runtime of the graph node this code runs in, or None outside a graph."""
    from langgraph.runtime import get_runtime

    try:
        return get_runtime()
    except (RuntimeError, KeyError):  # not inside a graph's node: no budget
        return None


@dataclass
class Charge:
    """What a reserved call will be charged (`spent`), set by the caller when it knows."""

    worst: int
    spent: int | None = None


@contextmanager
def charged_call(
    messages: Sequence[BaseMessage], max_tokens: int, what: str = "model call"
) -> Iterator[Charge]:
    """Reserve a call's worst case around it, then charge what it cost.

    The caller sets `charge.spent` from the reply's usage; left unset (no usage
    reported, or the call abandoned) the call is charged its worst case.

    Raises:
        TokenBudgetExceeded: the call does not fit; it must not start.
    """
    runtime = current_runtime()
    charge = Charge(worst=worst_case(messages, max_tokens))
    if runtime is None:
        yield charge
        return
    reserve(runtime, charge.worst, what)
    try:
        yield charge
    finally:
        settle(runtime, charge.worst, charge.worst if charge.spent is None else charge.spent)
