"""Build engines per run from the context, reusing the expensive parts across runs.

The index (its catalogue, Chroma client and embedding model) and chat clients
are created once per configuration and shared by every node and run in the process.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from adaptsum.engines.base import Engine, Resources
from adaptsum.state.context import Context
from adaptsum.store.catalog import catalog_target
from adaptsum.store.index import DocumentIndex

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

_lock = threading.Lock()
_indexes: dict[tuple, DocumentIndex] = {}
_models: dict[tuple, BaseChatModel] = {}


def index_for(ctx: Context) -> DocumentIndex:
    """The shared index for this data directory, embedding model, chunking and retrieval.

    The key holds every setting `DocumentIndex` reads from its context, so a run with
    other settings never gets an index configured for another run.
    """
    key = (
        str(ctx.data_path.resolve()),
        ctx.embeddings,
        ctx.embeddings_base_url,
        ctx.chunk_size,
        ctx.chunk_overlap,
        ctx.k,
        ctx.retrieval,
        str(catalog_target(ctx)),
        ctx.chroma_url,
    )
    with _lock:
        if key not in _indexes:
            _indexes[key] = DocumentIndex(ctx)
        return _indexes[key]


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
    ctx: Context, chat_model: BaseChatModel | None = None, deadline: float | None = None
) -> Engine:
    """The engine the context selects; `chat_model` overrides the configured one.

    `deadline` (monotonic seconds) bounds the llm engine's calls: the run's deadline.
    """
    resources = resources_for(ctx)
    if ctx.engine == "llm":
        from adaptsum.engines.llm import LLMEngine

        return LLMEngine(resources, chat_model or chat_model_for(ctx), deadline=deadline)
    from adaptsum.engines.extractive import ExtractiveEngine

    return ExtractiveEngine(resources)
