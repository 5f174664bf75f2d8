"""A small bounded memo shared by the stores' caches."""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class Memo(Generic[T]):
    """A bounded, thread-safe memo: the oldest entry goes first when it is full."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: dict[str, T] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> T | None:
        """The value kept for `key`, or None."""
        with self._lock:
            return self._items.get(key)

    def put(self, key: str, value: T) -> T:
        """Keep `value` for `key` (dropping the oldest entry when full) and return it."""
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.pop(next(iter(self._items)))
        return value
