"""Progress shared by the parallel tasks of one summarize run.

Map tasks run in parallel and each sees only its own chunk, so the count of finished
tasks lives here, per run and stage, behind a lock (the token budget's ledger is in
`providers/budget.py`).
Events go out through LangGraph's stream writer as custom events of kind 'summary'.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime

from adaptsum.providers.budget import run_key, spent_of


@dataclass
class RunProgress:
    """Counters of one stage (map, collapse level, refine) of one run."""

    total: int
    done: int = 0
    started: float = field(default_factory=time.monotonic)


_lock = threading.Lock()
_stages: dict[tuple[str, str], RunProgress] = {}


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
        if finished and done >= total:
            _stages.pop((key, stage), None)
    spent = spent_of(runtime)
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
