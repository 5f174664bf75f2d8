"""Index PDFs into Chroma idempotently, and search them with document and page filters.

One Chroma collection per embedding model and dimension. A document revision is
named by the file's sha256 plus the chunking settings: re-indexing an unchanged
file only reads its hash; a changed file at the same path gets a new revision that
replaces the old one once fully written (see `store.catalog`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adaptsum.errors import AdaptsumError, ConfigError, EmbeddingsMismatchError
from adaptsum.ingest.files import check_pdf_file, read_pdf_bytes
from adaptsum.ingest.ocr import OCR_VERSION
from adaptsum.ingest.pages import PageRange
from adaptsum.ingest.terms import Translations, korean_words, neutral_terms
from adaptsum.state.context import Context, on_server
from adaptsum.store.catalog import (
    ChunkRecord,
    DocumentRecord,
    _now,
    chunk_id,
    new_owner,
    open_catalog,
    parse_chunk_id,
)
from adaptsum.store.memo import Memo, loaded_once

if TYPE_CHECKING:
    from langchain_chroma import Chroma
    from langchain_core.embeddings import Embeddings

    from adaptsum.ingest.chunking import Chunk
    from adaptsum.providers.embeddings import EmbeddingsInfo

# Bump when what is indexed for the same settings changes (chunk boundaries, or the
# vectors written for a chunk), so indexes get rebuilt. 5: every sentence has a vector;
# 6: a sentence goes on after "et al.", "e.g." and other abbreviations, Kiwi decides
# whether a Korean line break was a space, arXiv's margin stamp is dropped, and a piece
# with fewer than two words ("86 CHILD_MAX .") is no sentence; 7: nor does one end after
# an abbreviation a paper coins before a digit or a lower-case word ("Cand. 1").
SPLITTER_VERSION = "7"


Progress = Callable[[str, int, int], None]
"""Called as progress(stage, done, total): 'ocr pages', 'pages', 'chunks', 'embeddings'
or 'words' (the glossary of a document not in Korean)."""

EMBED_BATCH = 8

QUERY_CACHE_SIZE = 256
"""Query embeddings kept per index: the same question is searched and graded several times."""

SENTENCE_CACHE_SIZE = 1024
"""Chunks whose sentence vectors are kept per index: retrieval, grading and the answer
each read them (a Chroma read is about 12 ms), and a chunk id names one revision of a
file, whose vectors never change."""

CLAIM_POLL_SECONDS = 0.25
"""How often an indexer waiting for another's write of the same revision looks again."""

CLAIM_MAX_WAIT_SECONDS = 3600.0
"""Bound on that wait: a writer still renewing its lease after an hour is reported."""


@dataclass(frozen=True)
class IndexReport:
    """What indexing one file did."""

    path: str
    doc_id: str
    status: str  # "indexed" | "unchanged" | "replaced" | "restored"
    """'restored': the revision was live but its vectors or chunk text were gone, and were
    written again from the file (so a deleted `chroma/` never reads as 'unchanged')."""
    title: str
    pages: int
    skipped_pages: int
    chunks: int
    added_chunks: int
    tokens: int
    vectors: int
    seconds: float
    ocr_pages: int = 0
    """Pages read by OCR (scans without a text layer)."""
    ocr_seconds: float = 0.0
    """Time those pages took (near zero when their text came from the OCR cache)."""


@dataclass(frozen=True)
class SearchHit:
    """A retrieved chunk with its document, page span and cosine similarity."""

    chunk: ChunkRecord
    document: DocumentRecord
    score: float


@dataclass(frozen=True)
class _Window:
    """A text embedded for a chunk, pointing back to the chunk.

    `kind` 'chunk': the chunk, or a slice of it short enough for the embedding model.
    'sentence': one of its sentences (number `part`), searched on its own: a passage
    whose one sentence answers a question is found by that sentence, where the
    vector of the whole passage averages it away (small-to-big retrieval).
    """

    chunk: Chunk | ChunkRecord
    part: int
    text: str
    kind: str = "chunk"


def chroma_http_client(url: str, settings: Any) -> Any:
    """A `chromadb.HttpClient` for a Chroma server URL such as http://host:8000.

    Raises:
        ConfigError: the URL is not http(s)://host[:port].
    """
    from urllib.parse import urlsplit

    import chromadb

    parts = urlsplit(url.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(f"chroma_url {url!r}: expected http://host:port of a `chroma run` server")
    try:
        return chromadb.HttpClient(
            host=parts.hostname,
            port=parts.port or (443 if parts.scheme == "https" else 8000),
            ssl=parts.scheme == "https",
            settings=settings,
        )
    except Exception as err:  # chromadb raises ValueError/ConnectError on an unreachable server
        raise ConfigError(f"Chroma server {url}: cannot connect ({err})") from None


class DocumentIndex:
    """The persistent store: catalogue + Chroma collection for the configured embeddings."""

    def __init__(self, ctx: Context, embeddings: tuple[Embeddings, EmbeddingsInfo] | None = None):
        self.ctx = ctx
        self.root = ctx.data_path
        self._embeddings = embeddings
        self.catalog = open_catalog(ctx)
        self._query_vectors: Memo[list[float]] = Memo(QUERY_CACHE_SIZE)
        self._sentence_vectors: Memo[tuple[list[str], Any]] = Memo(SENTENCE_CACHE_SIZE)

    # -- configuration -------------------------------------------------------------
    @property
    def embeddings(self) -> Embeddings:
        """The embedding model, loaded on first use (not needed to skip unchanged files)."""
        return self._model[0]

    @property
    def info(self) -> EmbeddingsInfo:
        """Name and dimension of the configured embedding model."""
        return self._model[1]

    @loaded_once
    def _model(self) -> tuple[Embeddings, EmbeddingsInfo]:
        from adaptsum.providers.embeddings import make_embeddings

        return self._embeddings or make_embeddings(self.ctx)

    @property
    def collection(self) -> str:
        """Chroma collection (and catalogue partition) of the configured model."""
        return self.info.collection_name

    @loaded_once
    def vectorstore(self) -> Chroma:
        """The Chroma store, checked to hold this model's vectors."""
        import chromadb
        from chromadb.config import Settings
        from langchain_chroma import Chroma

        settings = Settings(anonymized_telemetry=False, allow_reset=False)
        if self.ctx.chroma_url:
            client = chroma_http_client(self.ctx.chroma_url, settings)
        else:
            client = chromadb.PersistentClient(path=str(self.root / "chroma"), settings=settings)
        store = Chroma(
            collection_name=self.collection,
            embedding_function=self.embeddings,
            client=client,
            collection_metadata={"embeddings": self.info.spec, "dim": self.info.dim},
            collection_configuration={"hnsw": {"space": "cosine"}},
        )
        meta = client.get_collection(self.collection).metadata or {}
        if meta.get("embeddings") not in (None, self.info.spec) or meta.get("dim") not in (
            None,
            self.info.dim,
        ):
            raise EmbeddingsMismatchError(
                f"collection {self.collection} holds {meta.get('embeddings')} vectors of "
                f"dimension {meta.get('dim')}, but embeddings are {self.info.spec} "
                f"({self.info.dim}-dim); use a separate --data-dir or the original model"
            )
        return store

    def revision(self, sha256: str) -> str:
        """Name of a document version: file content plus the chunking that cut it.

        And the OCR's version: a scanned page read better is a new text, which an index
        built from the old one would keep until something else changed.
        """
        ctx = self.ctx
        key = f"{sha256}:{ctx.chunk_size}:{ctx.chunk_overlap}:{SPLITTER_VERSION}:ocr{OCR_VERSION}"
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    # -- indexing ------------------------------------------------------------------
    def index_file(
        self, path: str | Path, progress: Progress | None = None, password: str | None = None
    ) -> IndexReport:
        """Index one PDF; skip it in well under a second when it is already indexed.

        Raises:
            DocumentError: the file cannot be read as a text PDF. Nothing changes then.
        """
        started = time.perf_counter()
        check_pdf_file(Path(path).expanduser())  # a symlink loop cannot even be resolved
        path = Path(path).expanduser().resolve()
        data = read_pdf_bytes(path)  # hashed and parsed from these same bytes
        sha = hashlib.sha256(data).hexdigest()
        revision = self.revision(sha)
        existing = self.catalog.find_revision(self.collection, revision)
        if existing is not None and self._complete(existing):
            return IndexReport(
                path=str(path),
                doc_id=existing.doc_id,
                status="unchanged",
                title=existing.title,
                pages=existing.total_pages,
                skipped_pages=existing.total_pages - existing.text_pages,
                chunks=existing.chunks,
                added_chunks=0,
                tokens=existing.tokens,
                vectors=existing.vectors,
                seconds=time.perf_counter() - started,
            )

        # PDF and splitter libraries load only when there is something to index.
        from adaptsum.ingest.chunking import chunk_pages, join_pages
        from adaptsum.ingest.language import detect_language
        from adaptsum.ingest.pdf import load_pdf

        loaded = load_pdf(path, data=data, password=password, progress=progress)
        del data
        _notify(progress, "pages", len(loaded.pages), loaded.total_pages)
        chunks = chunk_pages(loaded.pages, self.ctx.chunk_size, self.ctx.chunk_overlap)
        _, starts, numbers = join_pages(loaded.pages)
        _notify(progress, "chunks", len(chunks), len(chunks))
        windows = self._windows(chunks)
        doc_id = sha[:12]

        owner = new_owner()
        restoring = existing is not None
        try:
            if not self._claim(revision, owner, live=restoring):
                # Another process wrote this very revision while we waited for it.
                return self.index_file(path, progress, password)
            if restoring and self._complete(existing):  # another run restored it meanwhile
                self.catalog.forget_pending(self.collection, [revision], owner)
                return self.index_file(path, progress, password)
            with self.catalog.lease(self.collection, revision, owner):
                if restoring:  # what is left of the live revision's vectors is rewritten
                    self.vectorstore.delete(where={"revision": revision})
                self._write_vectors(doc_id, revision, windows, progress)
            record = DocumentRecord(
                collection=self.collection,
                doc_id=doc_id,
                revision=revision,
                source=str(path),
                sha256=sha,
                title=loaded.title,
                total_pages=loaded.total_pages,
                text_pages=len(loaded.pages),
                chunk_size=self.ctx.chunk_size,
                chunk_overlap=self.ctx.chunk_overlap,
                chunks=len(chunks),
                tokens=sum(c.tokens for c in chunks),
                vectors=len(windows),
                indexed_at=_now(),
                language=detect_language(" ".join(c.text for c in chunks[:4])[:4000]),
                page_offsets=json.dumps(list(zip(numbers, starts, strict=True))),
            )
            replaced = self.catalog.commit_revision(
                record,
                [
                    ChunkRecord(
                        chunk_id(revision, c.index),
                        doc_id,
                        c.index,
                        c.page_start,
                        c.page_end,
                        c.char_start,
                        c.char_end,
                        c.tokens,
                        c.text,
                    )
                    for c in chunks
                ],
                owner,
            )
        except BaseException:
            # Ctrl-C (at any point from the claim to the commit) or a failed write: give
            # the claim up now, so the next run cleans up the half-written vectors at once
            # instead of waiting out the lease. The revision is not live: only
            # `commit_revision`'s one transaction makes it so, complete.
            self.catalog.release(self.collection, revision, owner)
            raise
        # Ctrl-C from here on leaves the replaced revisions pending under a lease that
        # expires in a minute; they are no longer live, and the next writer deletes them.
        self._delete_vectors(replaced, owner)
        if replaced:
            self.glossary.discard_except({d.revision for d in self.documents()})
        if self.ctx.glossary and record.language != "ko":
            self.glossary.prepare(revision, progress)
        return IndexReport(
            path=str(path),
            doc_id=doc_id,
            status="restored" if restoring else "replaced" if replaced else "indexed",
            title=loaded.title,
            pages=loaded.total_pages,
            skipped_pages=loaded.skipped_pages,
            chunks=len(chunks),
            added_chunks=len(chunks),
            tokens=record.tokens,
            vectors=len(windows),
            seconds=time.perf_counter() - started,
            ocr_pages=len(loaded.ocr_pages),
            ocr_seconds=loaded.ocr_seconds,
        )

    def _windows(self, chunks: list[Chunk] | list[ChunkRecord]) -> list[_Window]:
        """One window per chunk (several when it exceeds the model's), then its sentences.

        Splitting (rather than letting the model truncate) keeps every token of a
        long chunk searchable; all its windows carry the chunk's id. Pieces are measured
        by the model's own count minus its fixed per-input overhead (prefix and special
        tokens, counted once per window, not once per piece), and cut by a binary search
        on length: a few dozen counts per window, even for a page of unbroken text.
        """
        from adaptsum.ingest.sentences import split_sentences

        window = self.info.window
        count = getattr(self.embeddings, "count_tokens", None)
        out: list[_Window] = []
        if window is None or count is None:
            out.extend(_Window(c, 0, c.text) for c in chunks)
        else:
            overhead = count("")
            for c in chunks:
                pieces = _fit(c.text, count, overhead, window - overhead)
                out.extend(_Window(c, part, text) for part, text in enumerate(pieces))
        for c in chunks:
            out.extend(
                _Window(c, number, s.text, "sentence")
                for number, s in enumerate(split_sentences(c.text))
            )
        return out

    def _write_vectors(
        self, doc_id: str, revision: str, windows: list[_Window], progress: Progress | None
    ) -> None:
        total = len(windows)
        _notify(progress, "embeddings", 0, total)
        for start in range(0, total, EMBED_BATCH):
            batch = windows[start : start + EMBED_BATCH]
            self.vectorstore.add_texts(
                texts=[w.text for w in batch],
                metadatas=[
                    {
                        "doc_id": doc_id,
                        "revision": revision,
                        "chunk_id": chunk_id(revision, w.chunk.index),
                        "chunk_index": w.chunk.index,
                        "part": w.part,
                        "kind": w.kind,
                        "page_start": w.chunk.page_start,
                        "page_end": w.chunk.page_end,
                    }
                    for w in batch
                ],
                ids=[
                    f"{chunk_id(revision, w.chunk.index)}/{'s' if w.kind == 'sentence' else ''}"
                    f"{w.part}"
                    for w in batch
                ],
            )
            _notify(progress, "embeddings", start + len(batch), total)

    def _complete(self, doc: DocumentRecord) -> bool:
        """Whether a live revision still has all its vectors and all its chunk text.

        One filtered id listing and one count: milliseconds, paid so that a data directory
        whose `chroma/` was deleted or damaged is never reported 'unchanged'.
        """
        if self.catalog.chunk_count(self.collection, doc.revision) < doc.chunks:
            return False
        got = self.vectorstore.get(where={"revision": doc.revision}, include=[])
        return len(got["ids"]) >= doc.vectors

    def _claim(self, revision: str, owner: str, live: bool = False) -> bool:
        """Hold `revision` for writing; False if another writer finished it meanwhile.

        A live writer of the same revision is waited for (its lease bounds the wait);
        revisions whose writers died are cleaned up here, never those of live writers.
        `live`: the revision is already live (being restored), so its being in the
        catalogue does not mean the other writer finished; only its lease ending does.
        """
        deadline = time.monotonic() + CLAIM_MAX_WAIT_SECONDS
        holder = None
        while time.monotonic() < deadline:
            holder, stale = self.catalog.begin_revision(self.collection, revision, owner)
            if holder is None:
                self._delete_vectors(stale, owner)
                if not live and self.catalog.find_revision(self.collection, revision) is not None:
                    # Another writer committed it between our first look and this claim
                    # (it was granted at once, so the check after the wait never ran).
                    self.catalog.forget_pending(self.collection, [revision], owner)
                    return False
                return True
            time.sleep(CLAIM_POLL_SECONDS)
            if not live and self.catalog.find_revision(self.collection, revision) is not None:
                return False
        raise AdaptsumError(
            f"revision {revision} is still being indexed by {holder} after "
            f"{CLAIM_MAX_WAIT_SECONDS:.0f} s; try again later"
        )

    def _delete_vectors(self, revisions: Sequence[str], owner: str | None = None) -> None:
        if not revisions:
            return
        self.vectorstore.delete(where={"revision": {"$in": list(revisions)}})
        self.catalog.forget_pending(self.collection, revisions, owner)

    def remove(self, refs: Sequence[str]) -> list[DocumentRecord]:
        """Take documents out of the index: their chunks, vectors and glossaries; the removed.

        The catalogue drops them in one transaction first, so a search sees each document
        whole or not at all; a crash before the vectors are deleted leaves them pending,
        and the next writer deletes them. A run paused on a removed document stops with
        a clear error when it resumes (see `live_chunks`).

        Stricter than `resolve`, which chooses documents to read: each reference must name
        exactly one document, so an empty one (an unset shell variable) or a short id
        prefix cannot take out more than was meant.

        Raises:
            AdaptsumError: a reference is empty, matches no document or several; nothing
                is removed then.
        """
        documents: list[DocumentRecord] = []
        for ref in refs:
            if not ref.strip():
                raise AdaptsumError("an empty document name or id: nothing removed")
            matches = self.resolve([ref])
            if len(matches) > 1:
                listed = ", ".join(f"{d.doc_id} ({Path(d.source).name})" for d in matches[:5])
                raise AdaptsumError(
                    f"{ref!r} matches {len(matches)} documents ({listed}): give a longer id; "
                    "nothing removed"
                )
            documents.extend(d for d in matches if d not in documents)
        owner = new_owner()
        retired = self.catalog.retire_revisions(
            self.collection, [d.revision for d in documents], owner
        )
        self._delete_vectors(retired, owner)
        self.glossary.discard_except({d.revision for d in self.documents()})
        return [d for d in documents if d.revision in retired]

    # -- reading -------------------------------------------------------------------
    def documents(self) -> list[DocumentRecord]:
        """Documents indexed with the configured embeddings."""
        return self.catalog.documents(self.collection)

    def resolve(self, refs: Sequence[str]) -> list[DocumentRecord]:
        """Documents named by id (or its prefix), file name, or path.

        Raises:
            AdaptsumError: a reference matches no indexed document.
        """
        docs = self.documents()
        out: list[DocumentRecord] = []
        for ref in refs:
            as_path = str(Path(ref).expanduser().resolve())
            hits = [
                d
                for d in docs
                if d.doc_id.startswith(ref) or d.source == as_path or Path(d.source).name == ref
            ]
            if not hits:
                where = "the ids your index runs returned" if on_server() else "`adaptsum docs`"
                raise AdaptsumError(
                    f"no indexed document matches {ref!r} (see {where}; "
                    f"embeddings {self.info.spec})"
                )
            out.extend(h for h in hits if h not in out)
        return out

    def live_chunks(
        self, ids: Sequence[str], files: dict[str, str] | None = None
    ) -> dict[str, ChunkRecord]:
        """Chunks a run found earlier, read back by id, all of them or a clear error.

        A run keeps chunk ids in its checkpoint; if a document is indexed again (or
        removed) before the run reads them, those ids are gone. The caller learns which
        file changed and what to do, not a `KeyError` from deep inside a node.

        Args:
            ids: chunk ids (`revision:NNNNN`) the run holds.
            files: file name per revision, to name the document in the error.

        Raises:
            AdaptsumError: some of the chunks are no longer indexed.
        """
        chunks = self.catalog.chunks(self.collection, ids)
        if gone := [cid for cid in dict.fromkeys(ids) if cid not in chunks]:
            revision, _ = parse_chunk_id(gone[0])
            raise self._changed_under_run(
                revision, files, f"{len(gone)} passage(s) it found are gone"
            )
        return chunks

    def live_revision(self, revision: str, file: str = "") -> DocumentRecord:
        """The document revision a run is working on, or the error saying it changed.

        Raises:
            AdaptsumError: that revision is no longer indexed.
        """
        if record := self.catalog.find_revision(self.collection, revision):
            return record
        raise self._changed_under_run(revision, {revision: file}, "its pages are gone")

    @staticmethod
    def _changed_under_run(revision: str, files: dict[str, str] | None, what: str) -> AdaptsumError:
        name = (files or {}).get(revision) or "a document"
        return AdaptsumError(
            f"{name}: indexed again or removed while this run was using it ({what}); ask again"
        )

    def search(
        self,
        query: str,
        k: int | None = None,
        docs: Sequence[str] | None = None,
        pages: PageRange | None = None,
    ) -> list[SearchHit]:
        """Top-k chunks for `query`, optionally only from `docs` and within `pages`."""
        k = k or self.ctx.k
        live = self._live(docs)
        by_revision = {d.revision: d for d in live}
        # Long chunks have several vectors: fetch extra so k distinct chunks remain.
        depth = k * 3 if self.ctx.retrieval == "dense" else max(k * 4, 20)
        dense, found = self._nearest(query, depth, by_revision, "chunk", pages)
        if pages is None and found < min(depth, sum(d.chunks for d in live)):
            self._check_vectors(live)
        if self.ctx.retrieval == "hybrid":
            # Words only match words of the same language: for documents in another
            # language BM25 looks for the query's terms as they write them (see
            # `translated_terms`).
            from adaptsum.ingest.language import detect_language

            language = detect_language(query)
            same = {r for r, d in by_revision.items() if d.language == language}
            ranked = self._fuse(query, dense, depth, same, set(by_revision) - same, pages)[:k]
        else:
            ranked = dense[:k]
        return self._hits(ranked, by_revision)

    def search_sentences(
        self,
        query: str,
        k: int,
        docs: Sequence[str] | None = None,
        pages: PageRange | None = None,
    ) -> list[SearchHit]:
        """The chunks holding the k sentences closest to `query`, best first, once each.

        Each hit's score is its best sentence's cosine similarity. A question is
        usually answered by one sentence; its chunk's own vector, an average over a
        few hundred tokens, can rank far down (a Korean question on a 214-page English
        manual) where the sentence itself ranks first.
        """
        by_revision = {d.revision: d for d in self._live(docs)}
        ranked, _ = self._nearest(query, k, by_revision, "sentence", pages)
        return self._hits(ranked, by_revision)

    def _live(self, docs: Sequence[str] | None) -> list[DocumentRecord]:
        """The documents a search covers: those named, else all.

        Raises:
            AdaptsumError: nothing is indexed (with these embeddings).
        """
        live = self.resolve(docs) if docs else self.documents()
        if not live:
            raise AdaptsumError(self._nothing_indexed_message())
        return live

    def _nearest(
        self,
        query: str,
        k: int,
        revisions: dict[str, DocumentRecord],
        kind: str,
        pages: PageRange | None,
    ) -> tuple[list[tuple[str, float]], int]:
        """Chunks of the k nearest vectors of `kind`, each with its best cosine, best first.

        Also returns how many vectors came back (a short count can mean lost vectors).
        """
        found = self.vectorstore.similarity_search_by_vector_with_relevance_scores(
            self.query_vector(query), k=k, filter=_where(revisions, kind, pages)
        )
        best: dict[str, float] = {}
        for doc, distance in found:
            cid = doc.metadata["chunk_id"]
            best[cid] = max(best.get(cid, -1.0), 1.0 - float(distance))
        return sorted(best.items(), key=lambda kv: -kv[1]), len(found)

    def _hits(
        self, ranked: list[tuple[str, float]], revisions: dict[str, DocumentRecord]
    ) -> list[SearchHit]:
        chunks = self.catalog.chunks(self.collection, [cid for cid, _ in ranked])
        return [
            SearchHit(chunks[cid], revisions[cid.rpartition(":")[0]], score)
            for cid, score in ranked
            if cid in chunks
        ]

    def sentence_vectors(self, chunk_ids: Sequence[str]) -> dict[str, tuple[list[str], Any]]:
        """Each chunk's sentences and their vectors (one row each), in the chunk's order.

        Read from Chroma once per chunk, all the chunks not yet read in one request.
        """
        import numpy as np

        out = {cid: hit for cid in chunk_ids if (hit := self._sentence_vectors.get(cid))}
        wanted = [cid for cid in dict.fromkeys(chunk_ids) if cid not in out]
        if not wanted:
            return out
        got = self.vectorstore.get(
            where={"$and": [{"chunk_id": {"$in": wanted}}, {"kind": "sentence"}]},
            include=["embeddings", "metadatas", "documents"],
        )
        rows: dict[str, list[tuple[int, str, Any]]] = {}
        for vector, meta, text in zip(
            got["embeddings"], got["metadatas"], got["documents"], strict=True
        ):
            rows.setdefault(meta["chunk_id"], []).append((int(meta["part"]), text, vector))
        for cid, items in rows.items():
            items.sort(key=lambda item: item[0])
            out[cid] = self._sentence_vectors.put(
                cid,
                (
                    [text for _, text, _ in items],
                    np.asarray([vector for *_, vector in items], dtype=np.float32),
                ),
            )
        return out

    def query_vector(self, query: str) -> list[float]:
        """The query's embedding, computed once per query text for every search and grade."""
        cached = self._query_vectors.get(query)
        if cached is None:
            cached = self._query_vectors.put(query, self.embeddings.embed_query(query))
        return cached

    @loaded_once
    def lexical(self):
        """The BM25 side of hybrid retrieval (built on first use)."""
        from adaptsum.store.lexical import LexicalIndex

        return LexicalIndex(self.root, self.collection, self.catalog)

    @loaded_once
    def glossary(self):
        """Each document's words by a cross-lingual encoder (built on first use)."""
        from adaptsum.store.glossary import Glossary

        return Glossary(self.root, self.collection, self.catalog)

    def cross_language_terms(self, query: str, revision: str) -> tuple[set[str], Translations]:
        """The query's terms a document in another language can hold, and its words for them.

        Its script-neutral terms ("SOLAR", "GSM8K", "2024") as they are; with the
        glossary on, its Korean words too, each with the document's own words nearest it.
        """
        terms = set(neutral_terms(query))
        if not self.ctx.glossary or not (words := korean_words(query)):
            return terms, {}
        return terms | words, self.glossary.translations(words, revision)

    def translated_terms(self, query: str, revision: str) -> list[str]:
        """The query's terms as a document in another language writes them (for BM25)."""
        terms, translations = self.cross_language_terms(query, revision)
        words = sorted(terms - translations.keys())
        words += [w for term in sorted(translations) for w in translations[term]]
        return list(dict.fromkeys(words))

    def gloss(self, query: str, revision: str) -> str | None:
        """A Korean query in the words a document in another language uses for its terms.

        Its script-neutral terms and each Korean word's translations in the document
        (see `translated_terms`); None when the query has no Korean word to translate
        or the glossary is off.
        """
        if not self.ctx.glossary or not korean_words(query):
            return None
        return " ".join(self.translated_terms(query, revision)) or None

    def _fuse(
        self,
        query: str,
        dense: list[tuple[str, float]],
        depth: int,
        revisions: set[str],
        other: set[str],
        pages: PageRange | None,
    ) -> list[tuple[str, float]]:
        """Reciprocal rank fusion of the dense and BM25 rankings (k=60, as in its paper).

        BM25 searches `revisions` (documents in the query's language) with the whole
        query and each of `other` (documents in other languages) with the query's terms
        as that document writes them (see `translated_terms`).

        Each chunk keeps its cosine similarity as its score (chunks BM25 alone found
        get theirs computed), so thresholds mean the same in both retrieval modes.
        """
        lexical = self.lexical.search(query, depth, revisions) if revisions else []
        for revision in other:
            if words := self.translated_terms(query, revision):
                lexical += self.lexical.search(" ".join(words), depth, {revision})
        lexical.sort(key=lambda hit: -hit[1])
        if pages is not None:
            spans = self.catalog.chunks(self.collection, [cid for cid, _ in lexical])
            lexical = [
                (cid, s)
                for cid, s in lexical
                if cid in spans
                and spans[cid].page_start <= pages.last
                and spans[cid].page_end >= pages.first
            ]
        fused: dict[str, float] = {}
        for ranking in (dense, lexical):
            for rank, (cid, _) in enumerate(ranking):
                fused[cid] = fused.get(cid, 0.0) + 1.0 / (60 + rank + 1)
        cosine = dict(dense)
        missing = [cid for cid in fused if cid not in cosine]
        if missing:
            cosine.update(self._cosines(query, missing))
        order = sorted(fused, key=lambda cid: -fused[cid])
        return [(cid, cosine.get(cid, 0.0)) for cid in order]

    def _cosines(self, query: str, chunk_ids: list[str]) -> dict[str, float]:
        """Cosine similarity of the query to chunks the dense search did not return."""
        import numpy as np

        got = self.vectorstore.get(
            where={"$and": [{"chunk_id": {"$in": chunk_ids}}, {"kind": "chunk"}]},
            include=["embeddings", "metadatas"],
        )
        q = np.asarray(self.query_vector(query), dtype=np.float32)
        out: dict[str, float] = {}
        for vector, meta in zip(got["embeddings"], got["metadatas"], strict=True):
            sim = float(np.asarray(vector, dtype=np.float32) @ q)
            out[meta["chunk_id"]] = max(out.get(meta["chunk_id"], -1.0), sim)
        return out

    def _check_vectors(self, live: Sequence[DocumentRecord]) -> None:
        """Say so when the vector store lacks vectors the catalogue lists (never "no answer").

        Raises:
            StoreDamagedError: naming the vector store, the shortfall and the repair.
        """
        from adaptsum.store.doctor import REPAIR, StoreDamagedError

        got = self.vectorstore.get(
            where={"revision": {"$in": [d.revision for d in live]}}, include=["metadatas"]
        )
        have, want = len(got["ids"]), sum(d.vectors for d in live)
        if have < want:
            where = self.ctx.chroma_url or str(self.root / "chroma")
            raise StoreDamagedError(
                f"{where}: the vector store holds {have} of the {want} vectors the catalogue "
                f"lists for {len(live)} document(s) (deleted or damaged); run `{REPAIR}`"
            )

    def _nothing_indexed_message(self) -> str:
        others = [d for d in self.catalog.documents() if d.collection != self.collection]
        if others:
            names = sorted({d.collection for d in others})
            return (
                f"no documents are indexed with embeddings {self.info.spec}; "
                f"{len(others)} are indexed in {', '.join(names)}: index them again with "
                f"these embeddings, or search with the embeddings they were indexed with"
            )
        return "nothing is indexed yet: run `adaptsum index FILE.pdf` first"


def _where(
    revisions: dict[str, DocumentRecord], kind: str, pages: PageRange | None
) -> dict[str, Any]:
    """Chroma's filter for vectors of `kind` ('chunk' or 'sentence') of these revisions."""
    clauses: list[dict[str, Any]] = [{"revision": {"$in": list(revisions)}}, {"kind": kind}]
    if pages is not None:
        clauses += [{"page_end": {"$gte": pages.first}}, {"page_start": {"$lte": pages.last}}]
    return {"$and": clauses}


def _fit(text: str, count: Callable[[str], int], overhead: int, budget: int) -> list[str]:
    """Consecutive pieces of `text` of at most `budget` model tokens, cut at spaces if any.

    Neighbours share about a sixteenth of a piece so no phrase is only ever cut in two.
    """
    pieces: list[str] = []
    start, end_of_text = 0, len(text)
    while start < end_of_text:
        # No token spans more than a few dozen characters: look no further than that,
        # so each window costs O(window), not O(rest of the text).
        reach = min(end_of_text, start + budget * 32)
        if reach == end_of_text and count(text[start:]) - overhead <= budget:
            pieces.append(text[start:])
            break
        lo, hi = start + 1, reach  # the longest prefix that fits
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if count(text[start:mid]) - overhead <= budget:
                lo = mid
            else:
                hi = mid - 1
        end = lo
        space = text.rfind(" ", start + (end - start) * 4 // 5, end)
        if space > start:
            end = space
        pieces.append(text[start:end])
        start = max(start + 1, end - (end - start) // 16)
    return pieces


def _notify(progress: Progress | None, stage: str, done: int, total: int) -> None:
    if progress is not None:
        progress(stage, done, total)
