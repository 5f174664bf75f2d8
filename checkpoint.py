"""SQLite checkpointers in the data directory, for the Python API and the CLI.

The LangGraph server supplies its own checkpointer; these are for local use, where a
thread's state (and a follow-up question's history) must survive the process.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from adaptsum.state.context import Context


def checkpoint_path(ctx: Context | None = None) -> Path:
    """Where checkpoints live: `checkpoints.sqlite` in the data directory."""
    root = (ctx or Context()).data_path
    root.mkdir(parents=True, exist_ok=True)
    return root / "checkpoints.sqlite"


def sqlite_saver(ctx: Context | None = None) -> SqliteSaver:
    """A synchronous SQLite checkpointer (for `invoke` and `stream`)."""
    conn = sqlite3.connect(checkpoint_path(ctx), check_same_thread=False)
    saver = SqliteSaver(conn)
    saver.setup()
    return saver


@asynccontextmanager
async def async_sqlite_saver(ctx: Context | None = None) -> AsyncIterator[AsyncSqliteSaver]:
    """An async SQLite checkpointer (for `ainvoke` and `astream`)."""
    async with AsyncSqliteSaver.from_conn_string(str(checkpoint_path(ctx))) as saver:
        yield saver
