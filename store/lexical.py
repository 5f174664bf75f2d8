"""BM25 over Korean-aware tokens, kept in step with the catalogue's live chunks.

Tokens come from `adaptsum.ingest.terms`, the one term extractor that sentence
ranking and the refusal check use too (Kiwi morphemes for Korean). The BM25 index
(bm25s) is derived from the catalogue: its fingerprint is the set of live revisions
and the tokenizer version, so re-indexing or replacing a document rebuilds it on the
next search, and a document's old chunks can never be returned. It is saved in the data
directory as a per-machine cache: replicas sharing a PostgreSQL catalogue each rebuild
their own when the live revisions change, and a damaged copy is rebuilt rather than trusted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from adaptsum.ingest.terms import TOKENIZER_VERSION, key_terms, stem, tokenize, warm_up
from adaptsum.store.catalog import Catalog, chunk_id

__all__ = ["LexicalIndex", "key_terms", "tokenize", "warm_up"]

_log = logging.getLogger(__name__)


class LexicalIndex:
    """The BM25 index of one collection's live chunks, rebuilt when they change."""

    def __init__(self, root: Path, collection: str, catalog: Catalog) -> None:
        self.dir = root / "bm25" / collection
        self.collection = collection
        self.catalog = catalog
        self._lock = threading.Lock()
        self._loaded: tuple[str, object, list[str]] | None = None

    def _fingerprint(self) -> tuple[str, list[str]]:
        revisions = sorted(d.revision for d in self.catalog.documents(self.collection))
        key = ",".join([f"tokens:{TOKENIZER_VERSION}", *revisions])
        return hashlib.sha1(key.encode()).hexdigest(), revisions

    def _index(self) -> tuple[object, list[str]]:
        """The current BM25 model and its chunk ids, loading or rebuilding as needed."""
        fingerprint, revisions = self._fingerprint()
        with self._lock:
            if self._loaded and self._loaded[0] == fingerprint:
                return self._loaded[1], self._loaded[2]
            loaded = self._load(fingerprint)
            if loaded is not None:
                model, ids = loaded
            else:
                model, ids = self._build(revisions, fingerprint)
            self._loaded = (fingerprint, model, ids)
            return model, ids

    def _load(self, fingerprint: str) -> tuple[object, list[str]] | None:
        """The saved index if it matches the catalogue's live revisions, else None.

        The files are a per-machine cache: unreadable or stale ones are rebuilt from
        the (possibly shared) catalogue, never trusted over it.
        """
        import bm25s

        try:
            meta = json.loads((self.dir / "adaptsum.json").read_text())
            if meta["fingerprint"] != fingerprint:
                return None
            model = bm25s.BM25.load(str(self.dir), show_progress=False)
            ids = meta["chunk_ids"]
            if max(len(ids), 1) != int(model.scores["num_docs"]):  # type: ignore[attr-defined]
                return None
            return model, ids
        except Exception:  # missing, half-written or damaged files: rebuild
            return None

    def _build(self, revisions: list[str], fingerprint: str) -> tuple[object, list[str]]:
        import bm25s

        ids: list[str] = []
        corpus: list[list[str]] = []
        for revision in revisions:
            for chunk in self.catalog.document_chunks(self.collection, revision):
                ids.append(chunk_id(revision, chunk.index))
                corpus.append(tokenize(chunk.text) or ["∅"])
        model = bm25s.BM25()
        model.index(corpus or [["∅"]], show_progress=False)
        try:
            self._save(model, ids, fingerprint)
        except OSError as exc:  # a cache: the index still serves this process
            _log.warning("BM25 index not saved (%s); it is rebuilt when needed", exc)
        return model, ids

    def _save(self, model: object, ids: list[str], fingerprint: str) -> None:
        """Write beside, then swap in: a reader never sees half an index."""
        staging = self.dir.with_name(f"{self.dir.name}.{uuid.uuid4().hex}")
        try:
            staging.mkdir(parents=True)
            model.save(str(staging), show_progress=False)  # type: ignore[attr-defined]
            (staging / "adaptsum.json").write_text(
                json.dumps({"fingerprint": fingerprint, "chunk_ids": ids})
            )
            old = self.dir.with_name(f"{self.dir.name}.old.{uuid.uuid4().hex}")
            if self.dir.exists():
                os.replace(self.dir, old)
            os.replace(staging, self.dir)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def idf(self, revision: str | None = None) -> Callable[[str], float]:
        """Inverse document frequency over the live chunks (BM25's own statistics).

        With `revision`, over that document's chunks only: how rare a term is inside
        the document, whatever else the collection holds.
        """
        model, ids = self._index()
        vocab = model.vocab_dict  # type: ignore[attr-defined]
        indptr = model.scores["indptr"]  # type: ignore[attr-defined]
        rows = model.scores["indices"]  # type: ignore[attr-defined]
        inside = (
            None
            if revision is None
            else np.array([cid.rpartition(":")[0] == revision for cid in ids], dtype=bool)
        )
        n = max(len(ids) if inside is None else int(inside.sum()), 1)

        by_stem = self._stem_columns(model, vocab)

        def idf(term: str) -> float:
            columns = by_stem.get(stem(term), ())
            if not columns:
                df = 0
            else:
                held = np.unique(np.concatenate([rows[indptr[c] : indptr[c + 1]] for c in columns]))
                df = len(held) if inside is None else int(inside[held].sum())
            return math.log((n + 1) / (df + 0.5))

        return idf

    def _stem_columns(self, model: object, vocab: dict[str, int]) -> dict[str, list[int]]:
        """The vocabulary's columns by stem, kept on the model they were read from.

        The refusal check finds a term in a passage by stem ("telescopes" is held where
        "telescope" is written), so its rarity is counted by stem too: by its spelling,
        a plural the document never writes weighed as a word it never mentions.
        """
        cached = getattr(model, "_adaptsum_stems", None)
        if cached is None:
            cached = {}
            for word, column in vocab.items():
                cached.setdefault(stem(word), []).append(column)
            model._adaptsum_stems = cached  # type: ignore[attr-defined]
        return cached

    def search(self, query: str, k: int, revisions: set[str]) -> list[tuple[str, float]]:
        """Top-k chunk ids with BM25 scores, only from the given document revisions."""
        model, ids = self._index()
        vocab = model.vocab_dict  # type: ignore[attr-defined]
        terms = [t for t in tokenize(query) if t in vocab]
        if not terms or not ids:
            return []
        mask = np.array([cid.rpartition(":")[0] in revisions for cid in ids], dtype=float)
        if not mask.any():
            return []
        found, scores = model.retrieve(  # type: ignore[attr-defined]
            [terms], k=min(k, int(mask.sum())), show_progress=False, weight_mask=mask
        )
        return [(ids[i], float(s)) for i, s in zip(found[0], scores[0], strict=True) if s > 0]
