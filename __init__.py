"""adaptsum: ask questions about PDFs and summarize them adaptively, offline by default.

The repository root is this package (see pyproject.toml): `graph/`, `nodes/` and
`state/` install as `adaptsum.graph`, `adaptsum.nodes` and `adaptsum.state`.

    from adaptsum import Context, build_graph, checkpointer
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adaptsum.errors import AdaptsumError, DocumentError

__version__ = "0.1.0"

__all__ = [
    "AdaptsumError",
    "Context",
    "DocumentError",
    "__version__",
    "async_checkpointer",
    "async_sqlite_saver",
    "build_graph",
    "checkpointer",
    "sqlite_saver",
]

if TYPE_CHECKING:
    from adaptsum.checkpoint import (
        async_checkpointer,
        async_sqlite_saver,
        checkpointer,
        sqlite_saver,
    )
    from adaptsum.graph.main_graph import build_graph
    from adaptsum.state.context import Context

_LAZY = {
    "build_graph": "adaptsum.graph.main_graph",
    "sqlite_saver": "adaptsum.checkpoint",
    "async_sqlite_saver": "adaptsum.checkpoint",
    "checkpointer": "adaptsum.checkpoint",
    "async_checkpointer": "adaptsum.checkpoint",
    "Context": "adaptsum.state.context",
}


def __getattr__(name: str) -> Any:
    """Import the graph lazily: the CLI's fast paths do not need LangGraph loaded."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
