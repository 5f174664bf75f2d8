"""The catalogue on SQLite and PostgreSQL: leases on pending revisions, schema versions,
and two processes indexing at once without deleting each other's vectors."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from adaptsum.errors import ConfigError
from adaptsum.state.context import Context
from adaptsum.store.catalog import (
    Catalog,
    ChunkRecord,
    DocumentRecord,
    LeaseLostError,
    _pending,
)
from adaptsum.store.index import DocumentIndex

from helpers import EN_SAMPLE, KO_SAMPLE, env_without_settings


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a catalogue lives: a SQLite file, or a fresh database on a real PostgreSQL."""
    if request.param == "sqlite":
        return tmp_path / "catalog.sqlite"
    return request.getfixturevalue("postgres_url")


def _expire(catalog: Catalog, revision: str) -> None:
    """Make a pending revision's lease run out, as if its writer had died."""
    with catalog.engine.begin() as db:
        db.execute(sa.update(_pending).where(_pending.c.revision == revision).values(lease_until=0))


def _record(revision: str, source: str = "/x.pdf", doc_id: str = "d1") -> DocumentRecord:
    return DocumentRecord(
        "c", doc_id, revision, source, "sha", "t", 1, 1, 400, 50, 0, 0, 0, "now", "en", "[[1, 0]]"
    )


def test_live_writers_keep_their_pending_revisions(target: Path | str) -> None:
    catalog = Catalog(target)
    assert catalog.begin_revision("c", "r1", "a") == (None, [])
    # Another writer starting meanwhile must not treat r1 as crash debris.
    assert catalog.begin_revision("c", "r2", "b") == (None, [])
    # A second writer of the same revision is told to wait for its holder.
    assert catalog.begin_revision("c", "r1", "b") == ("a", [])
    assert catalog.renew("c", "r1", "a") and not catalog.renew("c", "r1", "b")
    _expire(catalog, "r1")
    # Once the lease has expired (the writer died), the next writer cleans it up...
    holder, stale = catalog.begin_revision("c", "r3", "c")
    assert holder is None and stale == ["r1"]
    assert catalog.pending_holder("c", "r1")[0] == "c"
    assert catalog.pending_holder("c", "r2")[0] == "b"  # ...but never a live one
    catalog.forget_pending("c", ["r1"], "c")
    assert catalog.pending_holder("c", "r1") is None


def test_commit_after_a_lost_lease_changes_nothing(target: Path | str) -> None:
    catalog = Catalog(target)
    catalog.begin_revision("c", "r1", "a")
    _expire(catalog, "r1")
    assert catalog.begin_revision("c", "r1", "b") == (None, [])  # b took it over
    with pytest.raises(LeaseLostError, match="took over"):
        catalog.commit_revision(_record("r1"), [], "a")
    assert catalog.documents("c") == []
    catalog.commit_revision(_record("r1"), [], "b")
    assert [d.revision for d in catalog.documents("c")] == ["r1"]
    # A new revision of the same path replaces it; the old one becomes the committer's
    # garbage to delete, not anyone else's.
    catalog.begin_revision("c", "r2", "c")
    assert catalog.commit_revision(_record("r2", doc_id="d2"), [], "c") == ["r1"]
    assert [d.revision for d in catalog.documents("c")] == ["r2"]
    assert catalog.pending_holder("c", "r1")[0] == "c"


def test_text_with_nul_is_stored(target: Path | str) -> None:
    """PDF text can hold NUL, which PostgreSQL text refuses: it is kept as U+FFFD there."""
    catalog = Catalog(target)
    catalog.begin_revision("c", "r1", "a")
    text = "Hugging Face (\x00 Transformers)"
    chunk = ChunkRecord("r1:00000", "d1", 0, 1, 1, 0, 32, 9, text)
    catalog.commit_revision(_record("r1"), [chunk], "a")
    (stored,) = catalog.chunks("c", ["r1:00000"]).values()
    assert len(stored.text) == len(text) and stored.text.replace("\ufffd", "\x00") == text


def test_another_schema_version_is_refused(target: Path | str) -> None:
    catalog = Catalog(target)
    with catalog.engine.begin() as db:
        db.exec_driver_sql("UPDATE adaptsum_meta SET value = '99' WHERE key = 'schema_version'")
    catalog.close()
    with pytest.raises(ConfigError, match=r"another version of adaptsum \(catalogue schema 99"):
        Catalog(target)


def test_version_1_sqlite_catalogue_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE pending (collection TEXT NOT NULL, revision TEXT NOT NULL,"
        " started_at TEXT NOT NULL, PRIMARY KEY (collection, revision));"
        "INSERT INTO pending VALUES ('c', 'r0', 'then');"
        "PRAGMA user_version = 1;"
    )
    old.close()
    catalog = Catalog(path)
    # A version-1 pending mark has no owner and an expired lease: debris to clean up.
    assert catalog.begin_revision("c", "r1", "a") == (None, ["r0"])
    catalog.close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 2


def test_unreachable_postgresql_is_one_line() -> None:
    with pytest.raises(ConfigError, match=r"catalogue postgresql\+psycopg://u:\*\*\*@127.0.0.1"):
        Catalog("postgresql://u:secret@127.0.0.1:9/x?connect_timeout=2")


def _pending_count(catalog: Catalog) -> int:
    with catalog.engine.connect() as db:
        return db.execute(sa.select(sa.func.count()).select_from(_pending)).scalar()


def _vector_counts(index: DocumentIndex) -> dict[str, int]:
    got = index.vectorstore.get(include=["metadatas"])
    counts: dict[str, int] = {}
    for meta in got["metadatas"]:
        counts[meta["revision"]] = counts.get(meta["revision"], 0) + 1
    return counts


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("services", marks=pytest.mark.services)]
)
def test_two_processes_indexing_at_once_keep_every_vector(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Issue 11's data loss: two `adaptsum index` runs at once deleted each other's vectors."""
    env = env_without_settings()
    env["ADAPTSUM_CHUNK_SIZE"] = "40"  # many small chunks: a long window for the race
    env["ADAPTSUM_CHUNK_OVERLAP"] = "0"
    if backend == "services":
        env["ADAPTSUM_DATABASE_URL"] = request.getfixturevalue("postgres_url")
        env["ADAPTSUM_CHROMA_URL"] = request.getfixturevalue("chroma_url")
    exe = str(Path(sys.executable).with_name("adaptsum"))
    # Locally both share one data directory; with servers each has its own, like replicas.
    shared = backend == "sqlite"

    def start(name: str, *pdfs: Path) -> subprocess.Popen:
        data_dir = tmp_path / ("shared" if shared else name)
        return subprocess.Popen(
            [exe, "index", *map(str, pdfs), "--no-progress", "--data-dir", str(data_dir)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    first = start("one", KO_SAMPLE)
    # Once the first run is writing vectors, a second starts another file, then the
    # file the first is writing. Before leases, the second deleted the first's vectors
    # written so far as "crash debris", and both still reported success.
    catalog = Catalog(env.get("ADAPTSUM_DATABASE_URL") or tmp_path / "shared" / "catalog.sqlite")
    deadline = time.monotonic() + 240
    while not _pending_count(catalog):
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.1)
    time.sleep(3)  # a few batches written
    second = start("two", EN_SAMPLE, KO_SAMPLE)
    runs = [first, second]
    outs = [run.communicate(timeout=300) for run in runs]
    for run, (_, err) in zip(runs, outs, strict=True):
        assert run.returncode == 0, err
    ctx = Context(
        data_dir=str(tmp_path / ("shared" if shared else "one")),
        chunk_size=40,
        chunk_overlap=0,
        database_url=env.get("ADAPTSUM_DATABASE_URL", ""),
        chroma_url=env.get("ADAPTSUM_CHROMA_URL", ""),
    )
    index = DocumentIndex(ctx)
    docs = index.documents()
    assert sorted(Path(d.source).name for d in docs) == sorted([KO_SAMPLE.name, EN_SAMPLE.name])
    # Every live document has all its vectors, and nothing else is left behind.
    assert _vector_counts(index) == {d.revision: d.vectors for d in docs}
    assert all(d.vectors >= 5 for d in docs)
    assert _pending_count(index.catalog) == 0
    hit = index.search("한글 창제 원리", k=1)[0]
    assert hit.document.source.endswith(KO_SAMPLE.name)
