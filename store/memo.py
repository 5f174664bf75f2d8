"""A small bounded memo shared by the stores' caches."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_LOCKS_GUARD = threading.Lock()


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


class loaded_once(Generic[T]):  # noqa: N801 - used as a decorator, like cached_property
    """`functools.cached_property` that loads at most once per instance under threads.

    One `DocumentIndex` serves the graph's parallel graders and mappers. Python 3.12
    dropped `cached_property`'s lock, so two threads could each load the embedding
    model (or open a Chroma client) and one copy be thrown away; 3.11's lock is shared
    by every instance of the class, so one slow load blocked unrelated indexes. This one
    locks per instance and attribute.
    """

    def __init__(self, load: Callable[[Any], T]) -> None:
        self.load = load
        self.name = load.__name__
        self.__doc__ = load.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> T:
        if instance is None:
            return self  # type: ignore[return-value]
        values = instance.__dict__
        if self.name in values:
            return values[self.name]
        with _LOCKS_GUARD:
            lock = values.setdefault(f"_{self.name}_lock", threading.Lock())
        with lock:
            if self.name not in values:
                values[self.name] = self.load(instance)
            return values[self.name]
