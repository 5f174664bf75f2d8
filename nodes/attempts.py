"""Usage of failed node attempts: every model call is counted, also one that was abandoned.

A node that calls the model runs under `MODEL_RETRY`. When an attempt fails (a call
timed out, a reply could not be parsed, the connection dropped), LangGraph discards
its return value and runs the node again, so the tokens that attempt spent would be
lost from the run's usage. `counting_attempts` wraps such a node: each attempt runs
inside an attempt ledger (`providers.chat.attempt_ledger`) that sees every call, a
failed attempt's ledger is kept under its run and task id, and the attempt that
succeeds reports its own calls plus those of the attempts before it.

What is kept lives in this process: a run resumed in another process (another server
worker) does not see the failed attempts of the one before, whose calls it then leaves
out of the usage. It is dropped when its run starts a new turn, and past `_MAX_KEPT`
entries the oldest go first, so a long-lived server holds a bounded amount.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from typing import Any

from langgraph.runtime import Runtime

from adaptsum.providers.budget import run_key
from adaptsum.providers.chat import attempt_ledger, total_usage
from adaptsum.state.graph_state import Usage, add_usage

_failed: OrderedDict[tuple[str, str], Usage] = OrderedDict()
"""Usage of failed attempts by (run, task id), least recently failed first."""
_lock = threading.Lock()
_MAX_KEPT = 1000
"""Bound on `_failed`: tasks that never succeeded (their run failed) leave entries behind."""


def _task_key(runtime: Runtime) -> tuple[str, str] | None:
    info = getattr(runtime, "execution_info", None)
    task = getattr(info, "task_id", None) if info is not None else None
    return (run_key(runtime), task) if task else None


def forget_failed(runtime: Runtime) -> None:
    """Drop what failed attempts of this run left (its turn is over: nothing will claim it)."""
    run = run_key(runtime)
    with _lock:
        for key in [k for k in _failed if k[0] == run]:
            del _failed[key]


def counting_attempts(node: Callable[..., Any], **bound: Any) -> Callable[..., Any]:
    """`node` with `bound` keyword arguments, its usage counting every attempt's calls."""
    inner = partial(node, **bound) if bound else node

    @functools.wraps(node)
    def run(state: Any, runtime: Runtime) -> Any:
        key = _task_key(runtime)
        with attempt_ledger() as ledger:
            try:
                update = inner(state, runtime)
            except BaseException:
                # A failed attempt, or an interrupt (a budget pause): the node runs again,
                # under the same task id, and its calls so far were still made.
                if key is not None and ledger:
                    with _lock:
                        _failed[key] = add_usage(_failed.pop(key, {}), total_usage(ledger))
                        while len(_failed) > _MAX_KEPT:
                            _failed.popitem(last=False)  # the oldest first, not all at once
                raise
        with _lock:
            earlier = _failed.pop(key, {}) if key is not None else {}
        if isinstance(update, dict) and (ledger or earlier):
            # The ledger saw every call of this attempt, also those the node's own result
            # left out (an abandoned call it recovered from); it replaces the node's count.
            update = {**update, "usage": add_usage(earlier, total_usage(ledger))}
        return update

    return run
