"""Checkpointers for the Python API and the CLI: SQLite in the data directory, or PostgreSQL.

The LangGraph server supplies its own checkpointer; these are for local use, where a
thread's state (and a follow-up question's history) must survive the process. With
`checkpoint_url` (or `database_url`) set to a PostgreSQL URL, threads live there
instead, so every replica pointed at it can continue any thread.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from langgraph.checkpoint.sqlite import SqliteSaver

from adaptsum.errors import ConfigError
from adaptsum.state.context import Context

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.checkpoint.postgres import PostgresSaver
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

_SETUP_LOCK_KEY = 7432100011
"""PostgreSQL advisory lock held while creating the checkpoint tables, so replicas
starting at once do not race on CREATE TABLE."""

_lock = threading.Lock()
_set_up: set[str] = set()
_pools: dict[str, object] = {}


def checkpoint_path(ctx: Context | None = None) -> Path:
    """Where SQLite checkpoints live: `checkpoints.sqlite` in the data directory."""
    root = (ctx or Context()).data_path
    root.mkdir(parents=True, exist_ok=True)
    return root / "checkpoints.sqlite"


def checkpoint_url(ctx: Context | None = None) -> str:
    """The PostgreSQL URL checkpoints go to, or '' for SQLite in the data directory.

    Raises:
        ConfigError: the URL is not a PostgreSQL one.
    """
    ctx = ctx or Context()
    url = (ctx.checkpoint_url or ctx.database_url).strip()
    if not url:
        return ""
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            url = "postgresql://" + url[len(prefix) :]
    if not url.startswith("postgresql://"):
        raise ConfigError(
            f"checkpoint_url {url.partition('://')[0]}://…: expected postgresql://user@host/db"
        )
    return url


def checkpointer(ctx: Context | None = None) -> BaseCheckpointSaver:
    """The synchronous checkpointer the context selects (for `invoke` and `stream`)."""
    url = checkpoint_url(ctx)
    return postgres_saver(url) if url else sqlite_saver(ctx)


@asynccontextmanager
async def async_checkpointer(ctx: Context | None = None) -> AsyncIterator[BaseCheckpointSaver]:
    """The async checkpointer the context selects (for `ainvoke` and `astream`)."""
    url = checkpoint_url(ctx)
    if url:
        async with async_postgres_saver(url) as saver:
            yield saver
    else:
        async with async_sqlite_saver(ctx) as saver:
            yield saver


def sqlite_saver(ctx: Context | None = None) -> SqliteSaver:
    """A synchronous SQLite checkpointer in the data directory."""
    conn = sqlite3.connect(checkpoint_path(ctx), check_same_thread=False)
    saver = SqliteSaver(conn)
    saver.setup()
    return saver


@asynccontextmanager
async def async_sqlite_saver(ctx: Context | None = None) -> AsyncIterator[AsyncSqliteSaver]:
    """An async SQLite checkpointer in the data directory."""
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver  # aiosqlite: async callers only

    async with AsyncSqliteSaver.from_conn_string(str(checkpoint_path(ctx))) as saver:
        yield saver


def postgres_saver(url: str) -> PostgresSaver:
    """A synchronous PostgreSQL checkpointer on a process-wide connection pool.

    The pool (not one connection) lets parallel map tasks write their checkpoints
    at once; the tables are created once per process.

    Raises:
        ConfigError: the server cannot be reached.
    """
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool

    with _lock:
        pool = _pools.get(url)
        if pool is None:
            pool = ConnectionPool(
                conninfo=url,
                min_size=1,
                max_size=16,
                kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
                open=False,
            )
            try:
                pool.open(wait=True, timeout=15)
            except Exception as err:
                pool.close()
                raise ConfigError(
                    f"checkpoints at {_redact(url)}: cannot connect ({err})"
                ) from None
            _pools[url] = pool
        saver = PostgresSaver(pool)  # type: ignore[arg-type]
        if url not in _set_up:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("SELECT pg_advisory_lock(%s)", (_SETUP_LOCK_KEY,))
                try:
                    saver.setup()
                finally:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK_KEY,))
            _set_up.add(url)
    return saver


@asynccontextmanager
async def async_postgres_saver(url: str) -> AsyncIterator[AsyncPostgresSaver]:
    """An async PostgreSQL checkpointer on its own pool, closed when the block ends."""
    import psycopg
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    async with AsyncConnectionPool(
        conninfo=url,
        max_size=16,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        open=False,
    ) as pool:
        saver = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
        if url not in _set_up:
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                await conn.execute("SELECT pg_advisory_lock(%s)", (_SETUP_LOCK_KEY,))
                try:
                    await saver.setup()
                finally:
                    await conn.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK_KEY,))
            _set_up.add(url)
        yield saver


def _redact(url: str) -> str:
    from adaptsum.store.catalog import _redact as redact

    return redact(url)
