"""Budget pauses: when the next step cannot fit in what is left, the run pauses.

Every model call reserves its worst case (`providers/budget.py`), so the budget is
never exceeded; here a step that does not fit becomes a LangGraph `interrupt` rather
than an error. The pause says what was spent, what is left, what the next step needs
and about what the rest would need; `Command(resume=...)` answers it:

- `{"max_tokens": N}` (or a bare N): go on with a budget of N for the whole turn;
- `true`: go on with the suggested budget (spent + the rest's estimate);
- `false`: stop cleanly. The turn ends with route 'stopped' and an answer that says
  so; nothing partial is presented as a finished answer or summary.

Single-task model nodes are wrapped by `pausable`. Parallel map and collapse tasks
never pause themselves (each would need its own resume): `wave_gate` checks a whole
wave's worst case before it is sent and pauses once. A task inside a wave that still
cannot reserve (a retry) fails the run with the one-line budget message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from adaptsum.errors import InputError
from adaptsum.nodes.turn import end_of_turn
from adaptsum.providers.budget import TokenBudgetExceeded, set_budget, status, sync
from adaptsum.state.context import Context
from adaptsum.state.graph_state import State

MAX_PAUSES = 5
"""Budget pauses one node execution answers before it gives up (loop guard)."""

STOPPED = "stopped"
"""The route of a turn stopped at a budget pause."""

Node = Callable[..., dict[str, Any]]


def sync_from_state(state: State, runtime: Runtime[Context]) -> None:
    """Bring the run's ledger up to what the checkpoint knows (a run resumed elsewhere)."""
    sync(runtime, int((state.usage or {}).get("total_tokens", 0)), state.token_budget)


def parse_decision(decision: Any) -> bool | int:
    """A resume value as True, False or a new budget.

    Raises:
        InputError: anything else (named in the message).
    """
    if isinstance(decision, dict) and "max_tokens" in decision:
        decision = decision["max_tokens"]
    if decision is True or decision in {"yes", "y"}:
        return True
    if decision is False or decision in {"no", "n", "stop"}:
        return False
    if isinstance(decision, int) and not isinstance(decision, bool) and decision >= 0:
        return decision
    raise InputError(f"resume value must be true, false or {{'max_tokens': N}}, got {decision!r}")


def pause(runtime: Runtime[Context], exc: TokenBudgetExceeded, rest: int) -> int | None:
    """Interrupt with the budget's figures; the new budget to go on with, or None to stop.

    `rest` estimates what the remaining work needs (at least the next step).
    """
    limit, spent, reserved = status(runtime)
    limit = limit or exc.limit
    rest = max(rest, exc.needs)
    left = max(0, limit - spent - reserved)
    suggested = spent + rest
    decision = parse_decision(
        interrupt(
            {
                "kind": "budget",
                "question": (
                    f"token budget of {limit} nearly used: {spent} spent, {left} left; the "
                    f"next {exc.what} needs up to {exc.needs} and the rest about {rest}. "
                    f"Resume with {{'max_tokens': N}}, true (a budget of {suggested}) or "
                    "false (stop)"
                ),
                "step": exc.what,
                "spent": spent,
                "left": left,
                "max_tokens": limit,
                "next_step_tokens": exc.needs,
                "estimated_tokens": rest,
                "suggested_max_tokens": suggested,
            }
        )
    )
    if decision is False:
        return None
    new = suggested if decision is True else int(decision)
    set_budget(runtime, new)
    return new


def stopped(state: State, runtime: Runtime[Context], exc: TokenBudgetExceeded, what: str) -> dict:
    """The update of a turn stopped at a budget pause: says so, presents nothing as done."""
    _, spent, _ = status(runtime)
    text = (
        f"stopped at the token budget of {exc.limit}: {spent} tokens spent, the next "
        f"{exc.what} needed up to {exc.needs}. {what}"
    )
    return {
        "route": STOPPED,
        "route_reason": f"{state.route_reason or state.request_reason}; {text}".lstrip("; "),
        "answer": text,
        "citations": [],
        **end_of_turn(state, text),
    }


def pausable(
    node: Node,
    rest: Callable[[State, Runtime[Context]], int] | None = None,
    stop_note: str = "No answer was written.",
) -> Node:
    """`node` with budget pauses: a call that does not fit interrupts, then the node reruns.

    On resume LangGraph runs the node again from its start; each pause answered in
    this execution is replayed by `interrupt`, so the loop reaches the next one.
    """

    def budgeted(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        sync_from_state(state, runtime)
        approved: dict[str, Any] = {}
        for _ in range(MAX_PAUSES):
            try:
                update = node(state, runtime)
            except TokenBudgetExceeded as exc:
                if exc.what == "model call":
                    exc.what = f"{budgeted.__name__} call"
                new = pause(runtime, exc, rest(state, runtime) if rest else exc.needs)
                if new is None:
                    return {**stopped(state, runtime, exc, stop_note), **approved}
                approved = {"token_budget": new}
                continue
            return {**update, **approved}
        raise InputError(f"{MAX_PAUSES} budget pauses in one step: resume with a larger budget")

    name = getattr(node, "__name__", None) or getattr(getattr(node, "func", None), "__name__", "")
    budgeted.__name__ = name
    budgeted.__doc__ = getattr(node, "__doc__", None) or getattr(
        getattr(node, "func", None), "__doc__", None
    )
    return budgeted
