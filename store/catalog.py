"""The document catalogue on SQLAlchemy Core: SQLite in the data directory, or PostgreSQL.

Chroma holds vectors; this catalogue decides which of them count. A revision's
vectors are written first and only then made live here in one transaction, so a
crash mid-index never leaves a half-written document visible, and never loses the
revision it was replacing. Chunk text lives here too, read by id, so graph state
carries ids rather than text. What is slow to compute (sentence vectors, cached map
results, partial summaries) is kept here as well, so every replica sharing a
PostgreSQL catalogue shares it.

A revision being written is *pending*, held by one owner (``host:pid:uuid``) under a
lease that the writer renews while it embeds. Only a pending revision whose lease has
expired (its writer died) is crash debris whose vectors may be deleted; two indexers
never delete each other's work, and two indexing the same file at once end with one
live revision holding all its vectors (the second waits for the first).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import astuple, dataclass, fields
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from adaptsum.errors import AdaptsumError, ConfigError
from adaptsum.state.context import Context

SCHEMA_VERSION = 2
"""Bump when a table changes; a catalogue of another version is refused, not misread.

2 added the owner and lease of pending revisions (version 1 catalogues are upgraded
in place: the change only adds columns).
"""

LEASE_SECONDS = 60.0
"""How long a pending revision stays claimed without a heartbeat. Writers renew it every
third of that, so only a writer that died (or froze that long) loses its claim."""

_metadata = sa.MetaData()
_documents = sa.Table(
    "documents",
    _metadata,
    sa.Column("collection", sa.Text, primary_key=True),
    sa.Column("doc_id", sa.Text, primary_key=True),
    sa.Column("revision", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("sha256", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("total_pages", sa.Integer, nullable=False),
    sa.Column("text_pages", sa.Integer, nullable=False),
    sa.Column("chunk_size", sa.Integer, nullable=False),
    sa.Column("chunk_overlap", sa.Integer, nullable=False),
    sa.Column("chunks", sa.Integer, nullable=False),
    sa.Column("tokens", sa.Integer, nullable=False),
    sa.Column("vectors", sa.Integer, nullable=False),
    sa.Column("indexed_at", sa.Text, nullable=False),
    sa.Column("language", sa.Text, nullable=False),
    sa.Column("page_offsets", sa.Text, nullable=False),
    sa.Index("documents_source", "collection", "source"),
)
_chunks = sa.Table(
    "chunks",
    _metadata,
    sa.Column("collection", sa.Text, primary_key=True),
    sa.Column("revision", sa.Text, primary_key=True),
    sa.Column("chunk_index", sa.Integer, primary_key=True),
    sa.Column("doc_id", sa.Text, nullable=False),
    sa.Column("page_start", sa.Integer, nullable=False),
    sa.Column("page_end", sa.Integer, nullable=False),
    sa.Column("char_start", sa.Integer, nullable=False),
    sa.Column("char_end", sa.Integer, nullable=False),
    sa.Column("tokens", sa.Integer, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
)
_sentence_vectors = sa.Table(
    "sentence_vectors",
    _metadata,
    sa.Column("collection", sa.Text, primary_key=True),
    sa.Column("chunk_id", sa.Text, primary_key=True),
    sa.Column("digest", sa.Text, nullable=False),
    sa.Column("vectors", sa.LargeBinary, nullable=False),
)
_map_cache = sa.Table(
    "map_cache",
    _metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("ref", sa.Text, nullable=False),
    sa.Column("created_at", sa.Text, nullable=False),
)
_partials = sa.Table(
    "partials",
    _metadata,
    sa.Column("ref", sa.Text, primary_key=True),
    sa.Column("body", sa.Text, nullable=False),
)
_pending = sa.Table(
    "pending",
    _metadata,
    sa.Column("collection", sa.Text, primary_key=True),
    sa.Column("revision", sa.Text, primary_key=True),
    sa.Column("started_at", sa.Text, nullable=False),
    sa.Column("owner", sa.Text, nullable=False, server_default=""),
    sa.Column("lease_until", sa.Float, nullable=False, server_default="0"),
)
_meta = sa.Table(
    "adaptsum_meta",
    _metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


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

    @cached_property
    def _page_starts(self) -> list[list[int]]:
        """`page_offsets` parsed once: every quoted sentence asks for its pages."""
        return json.loads(self.page_offsets)

    def page_of(self, offset: int) -> int:
        """The page holding character `offset` of the document's joined text."""
        page = 1
        for number, start in self._page_starts:
            if start > offset:
                break
            page = number
        return page

    def pages_of(self, start: int, end: int) -> str:
        """The citation for text at [start, end): "p. 3", or "p. 3-4" across a page break."""
        first, last = self.page_of(start), self.page_of(max(start, end - 1))
        return f"p. {first}" if last == first else f"p. {first}-{last}"


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


class LeaseLostError(AdaptsumError):
    """Another indexer took over a pending revision whose lease had expired."""


def chunk_id(revision: str, index: int) -> str:
    """Stable id of a chunk: its document revision and position."""
    return f"{revision}:{index:05d}"


def parse_chunk_id(value: str) -> tuple[str, int]:
    """Inverse of `chunk_id`."""
    revision, _, index = value.rpartition(":")
    return revision, int(index)


def catalog_target(ctx: Context) -> Path | str:
    """Where the context's catalogue lives: its URL, or `catalog.sqlite` in the data dir."""
    return ctx.catalog_url or ctx.database_url or ctx.data_path / "catalog.sqlite"


def open_catalog(ctx: Context) -> Catalog:
    """The catalogue the context selects (see `catalog_target`)."""
    return Catalog(catalog_target(ctx))


def new_owner() -> str:
    """A writer's identity in pending marks: host, process and a fresh uuid."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def normalize_url(url: str) -> str:
    """Select psycopg 3 for `postgresql://` URLs (SQLAlchemy's default driver is psycopg2).

    Raises:
        ConfigError: not a PostgreSQL or SQLite URL.
    """
    url = url.strip()
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if url.startswith(("postgresql+psycopg://", "sqlite:///")):
        return url
    raise ConfigError(
        f"catalogue URL {_redact(url)!r}: expected postgresql://user@host:port/dbname "
        "or sqlite:///path"
    )


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparseable URL: show only its scheme
        return url.partition("://")[0] + "://…"


class Catalog:
    """Transactional access to the catalogue: a SQLite file or a PostgreSQL URL."""

    def __init__(self, target: Path | str) -> None:
        """Open (and create or upgrade) the catalogue.

        Args:
            target: a SQLite file path, or a database URL (`postgresql://…`, `sqlite:///…`).

        Raises:
            ConfigError: the catalogue is of another schema version, or cannot be reached.
        """
        if isinstance(target, Path) or "://" not in str(target):
            path = Path(target)
            path.parent.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{path}"
            self.where = str(path)
        else:
            url = normalize_url(str(target))
            self.where = _redact(url)
        self._sqlite = url.startswith("sqlite")
        self.engine = _make_engine(url, self._sqlite)
        # Writes that read-then-write (claims, commits) serialize across processes:
        # SQLite's BEGIN IMMEDIATE, PostgreSQL's transaction-scoped advisory lock.
        self._exclusive = self.engine.execution_options(adaptsum_exclusive=True)
        try:
            self._setup()
        except sa.exc.OperationalError as err:
            self.engine.dispose()
            raise ConfigError(
                f"catalogue {self.where}: cannot open it ({str(err.orig).strip().splitlines()[0]})"
            ) from None
        except BaseException:
            self.engine.dispose()
            raise

    # -- schema ----------------------------------------------------------------------
    def _setup(self) -> None:
        with self._exclusive.begin() as db:
            version = self._version(db)
            if version is None:
                _metadata.create_all(db)
            elif version == 1 and self._sqlite:
                _metadata.create_all(db)  # adds adaptsum_meta
                db.exec_driver_sql("ALTER TABLE pending ADD COLUMN owner TEXT NOT NULL DEFAULT ''")
                db.exec_driver_sql(
                    "ALTER TABLE pending ADD COLUMN lease_until FLOAT NOT NULL DEFAULT 0"
                )
            elif version != SCHEMA_VERSION:
                where = (
                    f"use another --data-dir, or delete {Path(self.where).parent} and index again"
                    if self._sqlite
                    else "point ADAPTSUM_CATALOG_URL at another database, or drop its tables"
                )
                raise ConfigError(
                    f"{self.where}: made by another version of adaptsum (catalogue schema "
                    f"{version}, this one reads {SCHEMA_VERSION}); {where}"
                )
            else:
                return
            db.execute(_upsert(db, _meta, {"key": "schema_version", "value": str(SCHEMA_VERSION)}))
            if self._sqlite:
                db.exec_driver_sql(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _version(self, db: Connection) -> int | None:
        """The stored schema version; None for an empty database."""
        tables = set(sa.inspect(db).get_table_names())
        if "adaptsum_meta" in tables:
            value = db.execute(
                sa.select(_meta.c.value).where(_meta.c.key == "schema_version")
            ).scalar()
            return int(value) if value is not None else 0
        if self._sqlite:
            # Version 1 kept its version in SQLite's user_version only.
            if not tables:
                return None
            return int(db.exec_driver_sql("PRAGMA user_version").scalar() or 0)
        return 0 if tables & {t.name for t in _metadata.sorted_tables} else None

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    # -- documents -----------------------------------------------------------------
    def documents(self, collection: str | None = None) -> list[DocumentRecord]:
        """Live documents, of one collection or of all, oldest first."""
        query = sa.select(_documents)
        if collection is not None:
            query = query.where(_documents.c.collection == collection)
        with self.engine.connect() as db:
            rows = db.execute(query.order_by(_documents.c.indexed_at, _documents.c.source))
            return [DocumentRecord(*row) for row in rows]

    def find_revision(self, collection: str, revision: str) -> DocumentRecord | None:
        """The live document with this revision, if any."""
        with self.engine.connect() as db:
            row = db.execute(
                sa.select(_documents).where(
                    _documents.c.collection == collection, _documents.c.revision == revision
                )
            ).first()
        return DocumentRecord(*row) if row else None

    # -- pending revisions: owner and lease ------------------------------------------
    def begin_revision(
        self, collection: str, revision: str, owner: str
    ) -> tuple[str | None, list[str]]:
        """Claim `revision` for writing by `owner`.

        Returns:
            (holder, stale): `holder` is the live owner already writing this revision
            (the caller should wait for it) or None when `owner` now holds it; `stale`
            lists pending revisions whose writers died, whose vectors the caller may
            delete (it holds them now, see `forget_pending`).
        """
        now = time.time()
        with self._exclusive.begin() as db:
            rows = db.execute(
                sa.select(_pending.c.revision, _pending.c.owner, _pending.c.lease_until).where(
                    _pending.c.collection == collection
                )
            ).all()
            live = {
                r
                for (r,) in db.execute(
                    sa.select(_documents.c.revision).where(_documents.c.collection == collection)
                )
            }
            for rev, holder, until in rows:
                if rev == revision and holder != owner and until > now:
                    return holder, []
            stale = [
                rev
                for rev, holder, until in rows
                if rev != revision and until <= now and rev not in live
            ]
            for rev in [revision, *stale]:
                db.execute(_upsert(db, _pending, self._mark(collection, rev, owner, now)))
        return None, stale

    def _mark(self, collection: str, revision: str, owner: str, now: float) -> dict[str, Any]:
        return {
            "collection": collection,
            "revision": revision,
            "started_at": _now(),
            "owner": owner,
            "lease_until": now + LEASE_SECONDS,
        }

    def renew(self, collection: str, revision: str, owner: str) -> bool:
        """Extend `owner`'s lease on a pending revision; False when it no longer holds it."""
        with self.engine.begin() as db:
            done = db.execute(
                sa.update(_pending)
                .where(
                    _pending.c.collection == collection,
                    _pending.c.revision == revision,
                    _pending.c.owner == owner,
                )
                .values(lease_until=time.time() + LEASE_SECONDS)
            )
        return done.rowcount > 0

    def release(self, collection: str, revision: str, owner: str) -> None:
        """End `owner`'s lease at once (it gave up): the next writer cleans up after it."""
        with self.engine.begin() as db:
            db.execute(
                sa.update(_pending)
                .where(
                    _pending.c.collection == collection,
                    _pending.c.revision == revision,
                    _pending.c.owner == owner,
                )
                .values(lease_until=0)
            )

    @contextmanager
    def lease(self, collection: str, revision: str, owner: str) -> Iterator[None]:
        """Renew `owner`'s lease in the background while the block runs."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(LEASE_SECONDS / 3):
                try:
                    self.renew(collection, revision, owner)
                except Exception:  # a missed beat is retried; the lease has slack
                    continue

        thread = threading.Thread(target=beat, daemon=True, name=f"lease-{revision}")
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def pending_holder(self, collection: str, revision: str) -> tuple[str, float] | None:
        """Owner and lease expiry (epoch seconds) of a pending revision, if pending."""
        with self.engine.connect() as db:
            row = db.execute(
                sa.select(_pending.c.owner, _pending.c.lease_until).where(
                    _pending.c.collection == collection, _pending.c.revision == revision
                )
            ).first()
        return (row[0], row[1]) if row else None

    def forget_pending(
        self, collection: str, revisions: Iterable[str], owner: str | None = None
    ) -> None:
        """Drop pending marks whose vectors have been deleted (only `owner`'s, if given)."""
        revisions = list(revisions)
        if not revisions:
            return
        condition = [_pending.c.collection == collection, _pending.c.revision.in_(revisions)]
        if owner is not None:
            condition.append(_pending.c.owner == owner)
        with self.engine.begin() as db:
            db.execute(sa.delete(_pending).where(*condition))

    def retire_revisions(
        self, collection: str, revisions: Iterable[str], owner: str | None = None
    ) -> list[str]:
        """Take revisions out of the live set in one transaction; those that were live.

        Their records, chunk text and cached sentence vectors go at once, so no search or
        run sees half a document; their vectors become pending under `owner`, who deletes
        them next (or, if it dies, whoever finds the lease expired), as a replaced
        revision's do.
        """
        owner = owner or new_owner()
        retired: list[str] = []
        with self._exclusive.begin() as db:
            now = time.time()
            for revision in dict.fromkeys(revisions):
                if self._retire(db, collection, revision, owner, now):
                    retired.append(revision)
        return retired

    def _retire(
        self, db: Connection, collection: str, revision: str, owner: str, now: float
    ) -> bool:
        """Take one revision out of the live set, inside the caller's transaction.

        Its record, chunks and cached sentence vectors go; its vectors are marked pending
        for `owner` to delete. False when it was not live.
        """
        gone = db.execute(
            sa.delete(_documents).where(
                _documents.c.collection == collection, _documents.c.revision == revision
            )
        ).rowcount
        db.execute(
            sa.delete(_chunks).where(
                _chunks.c.collection == collection, _chunks.c.revision == revision
            )
        )
        db.execute(
            sa.delete(_sentence_vectors).where(
                _sentence_vectors.c.collection == collection,
                _sentence_vectors.c.chunk_id.like(f"{revision}:%"),
            )
        )
        if gone:  # its vectors are now garbage, for this owner to delete
            db.execute(_upsert(db, _pending, self._mark(collection, revision, owner, now)))
        return bool(gone)

    def commit_revision(
        self, record: DocumentRecord, chunks: list[ChunkRecord], owner: str | None = None
    ) -> list[str]:
        """Make a fully written revision live; return the revisions it replaced.

        A revision replaces the same document's older revision and whatever was
        indexed before from the same path. The replaced revisions become pending under
        `owner`, who deletes their vectors next (or, if it dies, whoever finds the
        lease expired).

        Raises:
            LeaseLostError: `owner` no longer holds the revision (its lease expired and
                another indexer took it over); nothing changed.
        """
        owner = owner or new_owner()
        collection = record.collection
        with self._exclusive.begin() as db:
            holder = db.execute(
                sa.select(_pending.c.owner).where(
                    _pending.c.collection == collection, _pending.c.revision == record.revision
                )
            ).scalar()
            if holder is not None and holder != owner:
                raise LeaseLostError(
                    f"{record.source}: another indexer ({holder}) took over this revision "
                    "after our lease expired; index the file again"
                )
            replaced = [
                r
                for (r,) in db.execute(
                    sa.select(_documents.c.revision).where(
                        _documents.c.collection == collection,
                        _documents.c.revision != record.revision,
                        sa.or_(
                            _documents.c.doc_id == record.doc_id,
                            _documents.c.source == record.source,
                        ),
                    )
                )
            ]
            now = time.time()
            for revision in replaced:
                self._retire(db, collection, revision, owner, now)
            db.execute(
                sa.delete(_chunks).where(
                    _chunks.c.collection == collection, _chunks.c.revision == record.revision
                )
            )
            db.execute(_upsert(db, _documents, self._text(_row(record))))
            if chunks:
                db.execute(
                    sa.insert(_chunks),
                    [
                        self._text(
                            {
                                "collection": collection,
                                "revision": record.revision,
                                "chunk_index": c.index,
                                "doc_id": c.doc_id,
                                "page_start": c.page_start,
                                "page_end": c.page_end,
                                "char_start": c.char_start,
                                "char_end": c.char_end,
                                "tokens": c.tokens,
                                "text": c.text,
                            }
                        )
                        for c in chunks
                    ],
                )
            db.execute(
                sa.delete(_pending).where(
                    _pending.c.collection == collection, _pending.c.revision == record.revision
                )
            )
        return replaced

    def _text(self, row: dict[str, Any]) -> dict[str, Any]:
        """PostgreSQL text cannot hold NUL, which PDF text sometimes does: store U+FFFD.

        One character for one, so chunk offsets into the page text stay valid; SQLite
        keeps the text exactly as before.
        """
        if self._sqlite:
            return row
        return {k: v.replace("\x00", "\ufffd") if isinstance(v, str) else v for k, v in row.items()}

    # -- chunks --------------------------------------------------------------------
    def chunks(self, collection: str, ids: Iterable[str]) -> dict[str, ChunkRecord]:
        """Live chunks by id; unknown or stale ids are absent from the result."""
        wanted = [parse_chunk_id(cid) for cid in ids]
        if not wanted:
            return {}
        out: dict[str, ChunkRecord] = {}
        with self.engine.connect() as db:
            rows = db.execute(
                sa.select(
                    _chunks.c.revision,
                    _chunks.c.doc_id,
                    _chunks.c.chunk_index,
                    _chunks.c.page_start,
                    _chunks.c.page_end,
                    _chunks.c.char_start,
                    _chunks.c.char_end,
                    _chunks.c.tokens,
                    _chunks.c.text,
                ).where(
                    _chunks.c.collection == collection,
                    sa.tuple_(_chunks.c.revision, _chunks.c.chunk_index).in_(wanted),
                )
            )
            for revision, *rest in rows:
                cid = chunk_id(revision, rest[1])
                out[cid] = ChunkRecord(cid, *rest)
        order = {chunk_id(r, i): n for n, (r, i) in enumerate(wanted)}
        return dict(sorted(out.items(), key=lambda kv: order[kv[0]]))

    def chunk_count(self, collection: str, revision: str) -> int:
        """How many chunks of a revision the catalogue holds (its record says how many)."""
        with self.engine.connect() as db:
            return db.execute(
                sa.select(sa.func.count())
                .select_from(_chunks)
                .where(_chunks.c.collection == collection, _chunks.c.revision == revision)
            ).scalar_one()

    def document_chunks(self, collection: str, revision: str) -> list[ChunkRecord]:
        """All chunks of one revision, in document order."""
        with self.engine.connect() as db:
            rows = db.execute(
                sa.select(
                    _chunks.c.chunk_index,
                    _chunks.c.doc_id,
                    _chunks.c.chunk_index,
                    _chunks.c.page_start,
                    _chunks.c.page_end,
                    _chunks.c.char_start,
                    _chunks.c.char_end,
                    _chunks.c.tokens,
                    _chunks.c.text,
                )
                .where(_chunks.c.collection == collection, _chunks.c.revision == revision)
                .order_by(_chunks.c.chunk_index)
            )
            return [ChunkRecord(chunk_id(revision, row[0]), *row[1:]) for row in rows]

    # -- shared caches -------------------------------------------------------------
    def sentence_vectors(self, collection: str, chunk_id: str, digest: str) -> bytes | None:
        """Cached float32 vectors of a chunk's sentences, if computed for the same sentences."""
        with self.engine.connect() as db:
            value = db.execute(
                sa.select(_sentence_vectors.c.vectors).where(
                    _sentence_vectors.c.collection == collection,
                    _sentence_vectors.c.chunk_id == chunk_id,
                    _sentence_vectors.c.digest == digest,
                )
            ).scalar()
        return bytes(value) if value is not None else None

    def put_sentence_vectors(
        self, collection: str, chunk_id: str, digest: str, vectors: bytes
    ) -> None:
        """Cache a chunk's sentence vectors; `digest` names the sentences they embed."""
        row = {"collection": collection, "chunk_id": chunk_id, "digest": digest, "vectors": vectors}
        with self.engine.begin() as db:
            db.execute(_upsert(db, _sentence_vectors, row))

    def cached_map(self, key: str) -> str | None:
        """The partial ref a map result was cached under `key` as, if any."""
        with self.engine.connect() as db:
            return db.execute(sa.select(_map_cache.c.ref).where(_map_cache.c.key == key)).scalar()

    def put_cached_map(self, key: str, ref: str) -> None:
        """Remember a map result by its chunk-hash, prompt-version and model key."""
        with self.engine.begin() as db:
            db.execute(_upsert(db, _map_cache, {"key": key, "ref": ref, "created_at": _now()}))

    def put_partial(self, body: str) -> str:
        """Store a partial summary's JSON by content; return its ref (the hash)."""
        ref = hashlib.sha256(body.encode()).hexdigest()[:20]
        with self.engine.begin() as db:
            db.execute(_insert(db, _partials).values(ref=ref, body=body).on_conflict_do_nothing())
        return ref

    def partial(self, ref: str) -> str:
        """A stored partial summary's JSON.

        Raises:
            KeyError: no partial has that ref (the data directory changed under a thread).
        """
        with self.engine.connect() as db:
            body = db.execute(sa.select(_partials.c.body).where(_partials.c.ref == ref)).scalar()
        if body is None:
            raise KeyError(ref)
        return body


def _make_engine(url: str, sqlite: bool) -> Engine:
    if not sqlite:
        # Parallel map tasks each read the catalogue: a bounded pool they queue for
        # (statements are short), so N replicas cannot exhaust the server's connections.
        engine = sa.create_engine(
            url, pool_pre_ping=True, pool_size=8, max_overflow=24, pool_timeout=600
        )

        @sa.event.listens_for(engine, "begin")
        def _pg_begin(conn: Connection) -> None:
            if conn.get_execution_options().get("adaptsum_exclusive"):
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7432100010)")

        return engine
    # Graph nodes run in worker threads (unbounded for wide map steps), each with its
    # own connection: SQLite connections are cheap, so the overflow is unbounded.
    engine = sa.create_engine(
        url,
        connect_args={"timeout": 30, "check_same_thread": False},
        pool_size=8,
        max_overflow=-1,
    )

    @sa.event.listens_for(engine, "connect")
    def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy's begin event issues BEGIN itself
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
        dbapi_conn.execute("PRAGMA synchronous=NORMAL")

    @sa.event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Connection) -> None:
        exclusive = conn.get_execution_options().get("adaptsum_exclusive")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if exclusive else "BEGIN")

    return engine


def _insert(db: Connection, table: sa.Table) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (SQLite and PostgreSQL alike)."""
    if db.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def _upsert(db: Connection, table: sa.Table, row: dict[str, Any]) -> Any:
    """INSERT … ON CONFLICT (primary key) DO UPDATE: portable INSERT OR REPLACE."""
    statement = _insert(db, table).values(**row)
    keys = [c.name for c in table.primary_key.columns]
    return statement.on_conflict_do_update(
        index_elements=keys,
        set_={name: statement.excluded[name] for name in row if name not in keys},
    )


def _row(record: DocumentRecord) -> dict[str, Any]:
    return dict(zip([f.name for f in fields(record)], astuple(record), strict=True))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
