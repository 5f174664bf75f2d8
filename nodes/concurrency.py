"""How parallel tasks of one run are scheduled so that finished ones are durable at once.

LangGraph's sync loop runs node tasks *and* the checkpointer's `put_writes` calls on one
thread pool (`BackgroundExecutor`, `max_workers = max_concurrency`, a FIFO queue). When a
step fans out more `Send` tasks than the pool has threads, the write of a task that has
finished queues behind every task still waiting, so it reaches the checkpointer only at
the end of the step and a `kill -9` loses it (`durability` does not change this: it
decides when the step's checkpoint is saved, not when task writes are).

So a step never fans out more tasks than the pool can start at once (`fan_out_size`,
leaving threads free for writes and the stream waiter), and the real limit on work in
flight is a per-run semaphore (`work_slot`, `Context.concurrency`) inside the nodes. A
finished task then releases its slot and its thread and its write runs immediately.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from langgraph.config import get_config
from langgraph.runtime import Runtime

from adaptsum.nodes.progress import run_key

POOL_HEADROOM = 2
"""Pool threads kept free of tasks: one for the stream waiter, one (at least) for writes."""

MAX_FAN_OUT = 256
"""Tasks per step at most: each waiting task holds an idle thread."""

_slots: weakref.WeakValueDictionary[tuple[str, int], threading.BoundedSemaphore] = (
    weakref.WeakValueDictionary()
)
_slots_lock = threading.Lock()


def pool_size() -> int:
    """Threads of LangGraph's executor for this run (its default when max_concurrency is unset)."""
    configured = get_config().get("max_concurrency")
    return int(configured) if configured else min(32, (os.cpu_count() or 1) + 4)


def fan_out_size() -> int:
    """How many tasks one step may send so that each starts at once (read inside a node)."""
    return max(1, min(MAX_FAN_OUT, pool_size() - POOL_HEADROOM))


@contextmanager
def work_slot(runtime: Runtime, limit: int) -> Iterator[None]:
    """Hold one of the run's `limit` work slots (0: unbounded) while calling a model."""
    if limit <= 0:
        yield
        return
    key = (run_key(runtime), limit)
    with _slots_lock:
        slot = _slots.get(key)
        if slot is None:
            slot = _slots[key] = threading.BoundedSemaphore(limit)
    with slot:
        yield
