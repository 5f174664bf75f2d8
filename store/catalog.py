"""SQLite catalogue: which document revisions are live, and the text of their chunks.

Chroma holds vectors; this catalogue decides which of them count. A revision's
vectors are written first and only then made live here in one transaction, so a
crash mid-index never leaves a half-written document visible, and never loses the
revision it was replacing. Chunk text lives here too, read by id, so graph state
carries ids rather than text.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from adaptsum.errors import ConfigError

SCHEMA_VERSION = 1
"""Bump when a table changes; a data directory of another version is refused, not misread."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    collection TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    revision TEXT NOT NULL,
    source TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    title TEXT NOT NULL,
    total_pages INTEGER NOT NULL,
    text_pages INTEGER NOT NULL,
    chunk_size INTEGER NOT NULL,
    chunk_overlap INTEGER NOT NULL,
    chunks INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    vectors INTEGER NOT NULL,
    indexed_at TEXT NOT NULL,
    language TEXT NOT NULL,
    page_offsets TEXT NOT NULL,
    PRIMARY KEY (collection, doc_id)
);
CREATE INDEX IF NOT EXISTS documents_source ON documents (collection, source);
CREATE TABLE IF NOT EXISTS chunks (
    collection TEXT NOT NULL,
    revision TEXT NOT NULL,
    chunk_index INTEGER NOT NULL,
    doc_id TEXT NOT NULL,
    page_start INTEGER NOT NULL,
    page_end INTEGER NOT NULL,
    char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (collection, revision, chunk_index)
);
CREATE TABLE IF NOT EXISTS sentence_vectors (
    collection TEXT NOT NULL,
    chunk_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    vectors BLOB NOT NULL,
    PRIMARY KEY (collection, chunk_id)
);
CREATE TABLE IF NOT EXISTS map_cache (
    key TEXT PRIMARY KEY,
    ref TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS partials (
    ref TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pending (
    collection TEXT NOT NULL,
    revision TEXT NOT NULL,
    started_at TEXT NOT NULL,
    PRIMARY KEY (collection, revision)
);
"""


@dataclass(frozen=True)
class DocumentRecord:
    """One live document revision in one collection."""

    collection: str
    doc_id: str
    revision: str
    source: str
    sha256: str
    title: str
    total_pages: int
    text_pages: int
    chunk_size: int
    chunk_overlap: int
    chunks: int
    tokens: int
    vectors: int
    indexed_at: str
    language: str
    """ISO 639-1 code detected from the text."""
    page_offsets: str
    """JSON [[page, first character offset], ...] of the joined text, to place sentences."""

    def page_of(self, offset: int) -> int:
        """The page holding character `offset` of the document's joined text."""
        page = 1
        for number, start in json.loads(self.page_offsets):
            if start > offset:
                break
            page = number
        return page


@dataclass(frozen=True)
class ChunkRecord:
    """A stored chunk: its id, document, page span, offsets and text."""

    chunk_id: str
    doc_id: str
    index: int
    page_start: int
    page_end: int
    char_start: int
    char_end: int
    tokens: int
    text: str


def chunk_id(revision: str, index: int) -> str:
    """Stable id of a chunk: its document revision and position."""
    return f"{revision}:{index:05d}"


def parse_chunk_id(value: str) -> tuple[str, int]:
    """Inverse of `chunk_id`."""
    revision, _, index = value.rpartition(":")
    return revision, int(index)


class Catalog:
    """Thin, transactional access to the catalogue database."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Graph nodes run in worker threads; one serialized connection serves them all.
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._lock = threading.RLock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        has_tables = self._db.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
        ).fetchone()[0]
        if has_tables and version != SCHEMA_VERSION:
            self._db.close()
            raise ConfigError(
                f"{path}: made by another version of adaptsum (catalogue schema {version}, "
                f"this one reads {SCHEMA_VERSION}); use another --data-dir, or delete "
                f"{path.parent} and index again"
            )
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def documents(self, collection: str | None = None) -> list[DocumentRecord]:
        """Live documents, of one collection or of all, oldest first."""
        sql = "SELECT * FROM documents"
        args: tuple = ()
        if collection is not None:
            sql += " WHERE collection = ?"
            args = (collection,)
        rows = self._query(sql + " ORDER BY indexed_at, source", args)
        return [DocumentRecord(*row) for row in rows]

    def find_revision(self, collection: str, revision: str) -> DocumentRecord | None:
        """The live document with this revision, if any."""
        rows = self._query(
            "SELECT * FROM documents WHERE collection = ? AND revision = ?",
            (collection, revision),
        )
        return DocumentRecord(*rows[0]) if rows else None

    def begin_revision(self, collection: str, revision: str) -> list[str]:
        """Mark `revision` as being written; return earlier unfinished revisions to clean up."""
        with self._transaction() as db:
            stale = [
                r
                for (r,) in db.execute(
                    "SELECT revision FROM pending WHERE collection = ?", (collection,)
                )
            ]
            db.execute(
                "INSERT OR REPLACE INTO pending VALUES (?, ?, ?)",
                (collection, revision, _now()),
            )
        live = {d.revision for d in self.documents(collection)}
        return [r for r in stale if r != revision and r not in live]

    def forget_pending(self, collection: str, revisions: Iterable[str]) -> None:
        """Drop pending marks whose vectors have been deleted."""
        with self._transaction() as db:
            db.executemany(
                "DELETE FROM pending WHERE collection = ? AND revision = ?",
                [(collection, r) for r in revisions],
            )

    def commit_revision(self, record: DocumentRecord, chunks: list[ChunkRecord]) -> list[str]:
        """Make a fully written revision live; return the revisions it replaced.

        A revision replaces the same document's older revision and whatever was
        indexed before from the same path.
        """
        with self._transaction() as db:
            replaced = [
                r
                for (r,) in db.execute(
                    "SELECT revision FROM documents WHERE collection = ? AND revision != ?"
                    " AND (doc_id = ? OR source = ?)",
                    (record.collection, record.revision, record.doc_id, record.source),
                )
            ]
            for revision in replaced:
                db.execute(
                    "DELETE FROM documents WHERE collection = ? AND revision = ?",
                    (record.collection, revision),
                )
                db.execute(
                    "DELETE FROM chunks WHERE collection = ? AND revision = ?",
                    (record.collection, revision),
                )
                db.execute(
                    "DELETE FROM sentence_vectors WHERE collection = ? AND chunk_id LIKE ?",
                    (record.collection, f"{revision}:%"),
                )
                db.execute(
                    "INSERT OR REPLACE INTO pending VALUES (?, ?, ?)",
                    (record.collection, revision, _now()),
                )  # its vectors are now garbage to delete
            db.execute(
                "DELETE FROM chunks WHERE collection = ? AND revision = ?",
                (record.collection, record.revision),
            )
            db.execute(
                "INSERT OR REPLACE INTO documents VALUES"
                " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.collection,
                    record.doc_id,
                    record.revision,
                    record.source,
                    record.sha256,
                    record.title,
                    record.total_pages,
                    record.text_pages,
                    record.chunk_size,
                    record.chunk_overlap,
                    record.chunks,
                    record.tokens,
                    record.vectors,
                    record.indexed_at,
                    record.language,
                    record.page_offsets,
                ),
            )
            db.executemany(
                "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        record.collection,
                        record.revision,
                        c.index,
                        c.doc_id,
                        c.page_start,
                        c.page_end,
                        c.char_start,
                        c.char_end,
                        c.tokens,
                        c.text,
                    )
                    for c in chunks
                ],
            )
            db.execute(
                "DELETE FROM pending WHERE collection = ? AND revision = ?",
                (record.collection, record.revision),
            )
        return replaced

    def chunks(self, collection: str, ids: Iterable[str]) -> dict[str, ChunkRecord]:
        """Live chunks by id; unknown or stale ids are absent from the result."""
        out: dict[str, ChunkRecord] = {}
        for cid in ids:
            revision, index = parse_chunk_id(cid)
            rows = self._query(
                "SELECT doc_id, chunk_index, page_start, page_end, char_start, char_end,"
                " tokens, text FROM chunks WHERE collection = ? AND revision = ?"
                " AND chunk_index = ?",
                (collection, revision, index),
            )
            if rows:
                out[cid] = ChunkRecord(cid, *rows[0])
        return out

    def sentence_vectors(self, collection: str, chunk_id: str, digest: str) -> bytes | None:
        """Cached float32 vectors of a chunk's sentences, if computed for the same sentences."""
        rows = self._query(
            "SELECT vectors FROM sentence_vectors WHERE collection = ? AND chunk_id = ?"
            " AND digest = ?",
            (collection, chunk_id, digest),
        )
        return rows[0][0] if rows else None

    def put_sentence_vectors(
        self, collection: str, chunk_id: str, digest: str, vectors: bytes
    ) -> None:
        """Cache a chunk's sentence vectors; `digest` names the sentences they embed."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO sentence_vectors VALUES (?, ?, ?, ?)",
                (collection, chunk_id, digest, vectors),
            )

    def cached_map(self, key: str) -> str | None:
        """The partial ref a map result was cached under `key` as, if any."""
        rows = self._query("SELECT ref FROM map_cache WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def put_cached_map(self, key: str, ref: str) -> None:
        """Remember a map result by its chunk-hash, prompt-version and model key."""
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO map_cache VALUES (?, ?, ?)", (key, ref, _now()))

    def put_partial(self, body: str) -> str:
        """Store a partial summary's JSON by content; return its ref (the hash)."""
        ref = hashlib.sha256(body.encode()).hexdigest()[:20]
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO partials VALUES (?, ?)", (ref, body))
        return ref

    def partial(self, ref: str) -> str:
        """A stored partial summary's JSON.

        Raises:
            KeyError: no partial has that ref (the data directory changed under a thread).
        """
        rows = self._query("SELECT body FROM partials WHERE ref = ?", (ref,))
        if not rows:
            raise KeyError(ref)
        return rows[0][0]

    def document_chunks(self, collection: str, revision: str) -> list[ChunkRecord]:
        """All chunks of one revision, in document order."""
        rows = self._query(
            "SELECT chunk_index, doc_id, chunk_index, page_start, page_end, char_start,"
            " char_end, tokens, text FROM chunks WHERE collection = ? AND revision = ?"
            " ORDER BY chunk_index",
            (collection, revision),
        )
        return [ChunkRecord(chunk_id(revision, row[0]), *row[1:]) for row in rows]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
