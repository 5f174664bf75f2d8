"""Usage of failed node attempts: kept per run and task, bounded, dropped with the turn."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from adaptsum.nodes import attempts
from adaptsum.nodes.attempts import counting_attempts, forget_failed
from adaptsum.providers.chat import _record


def _runtime(thread: str, task: str) -> Any:
    return SimpleNamespace(
        execution_info=SimpleNamespace(thread_id=thread, run_id="", task_id=task)
    )


def _node(fail: bool):
    """A node that makes one 'call' of 10 input tokens, then fails or returns."""

    def node(state: Any, runtime: Any) -> dict:
        _record({"calls": 1, "input_tokens": 10})
        if fail:
            raise TimeoutError("the model call timed out")
        return {"answer": "ok"}

    return node


def _fail(thread: str, task: str) -> None:
    with pytest.raises(TimeoutError):
        counting_attempts(_node(fail=True))(None, _runtime(thread, task))


def _succeed(thread: str, task: str) -> dict:
    return counting_attempts(_node(fail=False))(None, _runtime(thread, task))["usage"]


@pytest.fixture(autouse=True)
def _empty() -> None:
    attempts._failed.clear()


def test_a_failed_attempt_counts_in_the_next_one_of_its_run_only() -> None:
    _fail("run-a", "task-1")
    _fail("run-a", "task-1")
    assert _succeed("run-b", "task-1") == {"calls": 1, "input_tokens": 10}  # another run's
    assert _succeed("run-a", "task-1") == {"calls": 3, "input_tokens": 30}
    assert not attempts._failed


def test_past_the_bound_the_oldest_failures_go_not_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(attempts, "_MAX_KEPT", 3)
    for task in ("t1", "t2", "t3", "t4"):
        _fail("run", task)
    assert len(attempts._failed) == 3
    assert _succeed("run", "t1")["calls"] == 1  # dropped: the oldest
    assert _succeed("run", "t4")["calls"] == 2  # the newest is kept (all were cleared before)


def test_a_new_turn_drops_its_runs_leftovers_only() -> None:
    _fail("run-a", "t1")
    _fail("run-b", "t1")
    forget_failed(_runtime("run-a", "start"))
    assert list(attempts._failed) == [("run-b", "t1")]
