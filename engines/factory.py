"""Build engines per run from the context, reusing the expensive parts across runs.

The index (its catalogue, Chroma client and embedding model) and chat clients
are created once per configuration and shared by every node and run in the process.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import threading
from typing import TYPE_CHECKING

from adaptsum.engines.base import Engine, Resources
from adaptsum.state.context import Context, on_server
from adaptsum.store.catalog import catalog_target
from adaptsum.store.index import DocumentIndex

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from adaptsum.nodes.retry import Deadline

_lock = threading.Lock()
_indexes: dict[tuple, DocumentIndex] = {}
_models: dict[tuple, BaseChatModel] = {}


def caller_scope() -> str:
    """On a server with custom auth, a directory name for the authenticated caller; else ''.

    langgraph-api puts the identity its auth handler returned into the run's config as
    `langgraph_auth_user_id`; without auth (or outside a run, e.g. the CLI) there is none.
    """
    if not on_server():
        return ""
    try:
        from langgraph.config import get_config

        user = get_config().get("configurable", {}).get("langgraph_auth_user_id") or ""
    except RuntimeError:  # not inside a run
        return ""
    return hashlib.sha256(str(user).encode()).hexdigest()[:16] if user else ""


def index_for(ctx: Context) -> DocumentIndex:
    """The shared index for this data directory, embedding model, chunking and retrieval.

    The key holds every setting `DocumentIndex` reads from its context, so a run with
    other settings never gets an index configured for another run. On a server with
    auth, each caller has an index of their own under `users/` in the operator's data
    directory, so nobody can search, summarize or even name another user's documents.
    """
    scope = caller_scope()
    if scope:
        ctx = copy.copy(ctx)
        ctx.data_dir = str(ctx.data_path / "users" / scope)
    key = (
        str(ctx.data_path.resolve()),
        ctx.embeddings,
        ctx.embeddings_base_url,
        ctx.chunk_size,
        ctx.chunk_overlap,
        ctx.k,
        ctx.retrieval,
        ctx.glossary,
        str(catalog_target(ctx)),
        ctx.chroma_url,
    )
    with _lock:
        if key not in _indexes:
            _indexes[key] = DocumentIndex(ctx)
        return _indexes[key]


def close_indexes() -> None:
    """Close and forget every shared index (the ask worker, between requests)."""
    with _lock:
        indexes = list(_indexes.values())
        _indexes.clear()
    for index in indexes:
        with contextlib.suppress(Exception):
            index.catalog.close()


def resources_for(ctx: Context) -> Resources:
    """This run's settings with the shared index."""
    return Resources(ctx=ctx, index=index_for(ctx))


def chat_model_for(ctx: Context) -> BaseChatModel:
    """The shared chat client for this model, server and sampling settings."""
    from adaptsum.providers.chat import make_chat_model

    key = (ctx.chat_model, ctx.chat_base_url, ctx.temperature, ctx.request_timeout)
    with _lock:
        if key not in _models:
            _models[key] = make_chat_model(ctx)
        return _models[key]


def engine_for(
    ctx: Context, chat_model: BaseChatModel | None = None, deadline: Deadline | None = None
) -> Engine:
    """The engine the context selects; `chat_model` overrides the configured one.

    `deadline` (the run's clock, see `nodes.retry.run_deadline`) bounds the llm engine's calls.
    """
    resources = resources_for(ctx)
    if ctx.engine == "llm":
        from adaptsum.engines.llm import LLMEngine

        return LLMEngine(resources, chat_model or chat_model_for(ctx), deadline=deadline)
    from adaptsum.engines.extractive import ExtractiveEngine

    return ExtractiveEngine(resources)
