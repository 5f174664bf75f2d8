"""Health of a data directory: find damaged stores and stray or missing vectors, and repair.

Four stores live in a data directory: the catalogue (`catalog.sqlite`, the truth about
which documents are live and the text of their chunks), the checkpoints
(`checkpoints.sqlite`), the vectors (`chroma/`) and the BM25 cache (`bm25/`). Vectors
and BM25 are derived from the catalogue's chunk text, so they can always be rebuilt;
the two databases hold the user's data, so a damaged one is moved aside (never
deleted) and a clean one started.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from adaptsum.errors import AdaptsumError
from adaptsum.state.context import Context

SQLITE_MAGIC = b"SQLite format 3\x00"
REPAIR = "adaptsum doctor --repair"


class StoreDamagedError(AdaptsumError):
    """A store of the data directory cannot be read; the message names it and the fix."""


@dataclass
class Finding:
    """One problem: where it is, what is wrong, and whether `--repair` mends it."""

    where: str
    problem: str
    repairable: bool = True

    def line(self) -> str:
        """The one line shown to the user."""
        fix = f"; run `{REPAIR}`" if self.repairable else ""
        return f"{self.where}: {self.problem}{fix}"


@dataclass
class Report:
    """What `doctor` found (and what `--repair` did)."""

    lines: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)


def sqlite_problem(path: Path, thorough: bool = False) -> str | None:
    """What is wrong with a SQLite file, or None when it reads (or does not exist yet).

    The header check is instant; `thorough` adds SQLite's `quick_check` of every page.
    """
    if not path.exists() or path.stat().st_size == 0:
        return None
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
    except OSError as err:
        return f"cannot be read ({err.strerror})"
    if head != SQLITE_MAGIC:
        return "is not a SQLite database (damaged or overwritten)"
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            pragma = "quick_check" if thorough else "schema_version"
            rows = conn.execute(f"PRAGMA {pragma}").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as err:
        return f"is damaged ({err})"
    if thorough and rows and rows[0][0] != "ok":
        return f"is damaged ({rows[0][0]})"
    return None


def sqlite_files(ctx: Context) -> dict[str, Path]:
    """The SQLite files of the data directory, by store."""
    root = ctx.data_path
    files = {"checkpoints": root / "checkpoints.sqlite"}
    if not (ctx.catalog_url or ctx.database_url):
        files["catalogue"] = root / "catalog.sqlite"
    if not ctx.chroma_url:
        files["vectors"] = root / "chroma" / "chroma.sqlite3"
    return files


def check_on_open(ctx: Context) -> None:
    """Refuse, in one line, to work on a data directory whose databases are not SQLite.

    Raises:
        StoreDamagedError: naming the file, the problem and the repair command.
    """
    for path in sqlite_files(ctx).values():
        problem = sqlite_problem(path)
        if problem:
            raise StoreDamagedError(Finding(str(path), problem).line())


def explain(ctx: Context, exc: BaseException) -> str | None:
    """One line for a storage error raised mid-run, naming the damaged file; None if not one."""
    text = f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
    markers = ("DatabaseError", "malformed", "not a database", "InternalError", "chromadb")
    if not any(m in text for m in markers):
        return None
    for path in sqlite_files(ctx).values():
        problem = sqlite_problem(path, thorough=True)
        if problem:
            return Finding(str(path), problem).line()
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return Finding(str(ctx.data_path), f"a store failed ({first[:200]})").line()


def _du(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def move_aside(path: Path) -> Path:
    """Rename a damaged file or folder (and its -wal/-shm) beside itself; nothing is deleted."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    shutil.move(str(path), str(target))
    for suffix in ("-wal", "-shm", "-journal"):
        extra = path.with_name(path.name + suffix)
        if extra.exists():
            shutil.move(str(extra), str(target) + suffix)
    return target


def _vector_revisions(index) -> Counter[str]:
    """How many vectors each revision has in the vector store."""
    got = index.vectorstore.get(include=["metadatas"])
    return Counter((m or {}).get("revision", "?") for m in got["metadatas"])


def run(ctx: Context, repair: bool = False) -> Report:
    """Check every store; with `repair`, mend what can be mended. Never raises for damage."""
    report = Report()
    root = ctx.data_path
    report.lines.append(f"data directory {root}")
    files = sqlite_files(ctx)

    # 1. The databases themselves.
    for name, path in files.items():
        problem = sqlite_problem(path, thorough=True)
        if problem is None:
            state = "ok" if path.exists() else "not created yet"
            report.lines.append(f"{name:11} {path.name}: {state}, {_human(_du(path))}")
            continue
        finding = Finding(str(path), problem)
        report.findings.append(finding)
        if repair:
            moved = move_aside(path.parent if name == "vectors" else path)
            report.repaired.append(
                f"moved {path.name if name != 'vectors' else 'chroma/'} "
                f"aside to {moved.name}; a clean one starts"
            )

    # 2. The catalogue's documents against the vector store.
    from adaptsum.store.index import DocumentIndex

    try:
        index = DocumentIndex(ctx)
        documents = index.documents()
        others = [d for d in index.catalog.documents() if d.collection != index.collection]
    except Exception as exc:  # damage found above already says which file
        if not report.findings:
            report.findings.append(Finding(str(root), f"catalogue cannot be read ({exc})"))
        return report
    from adaptsum.store import catalog as catalog_module

    report.lines.append(
        f"catalogue   schema version {catalog_module.SCHEMA_VERSION}; {len(documents)} documents "
        f"in {index.collection}" + (f", {len(others)} in other collections" if others else "")
    )
    try:
        counts = _vector_revisions(index)
    except Exception as exc:
        report.findings.append(
            Finding(str(root / "chroma"), f"vector store cannot be read ({type(exc).__name__})")
        )
        if repair and (root / "chroma").exists() and not ctx.chroma_url:
            moved = move_aside(root / "chroma")
            report.repaired.append(f"moved chroma/ aside to {moved.name}")
            index = DocumentIndex(ctx)
        counts = Counter()
    live = {d.revision for d in documents}
    for doc in documents:
        have = counts.get(doc.revision, 0)
        text = index.catalog.chunk_count(index.collection, doc.revision)
        if have == doc.vectors and text == doc.chunks:
            continue
        name = f"{doc.doc_id} ({_safe(Path(doc.source).name)})"
        if have != doc.vectors:
            what = "no vectors" if have == 0 else f"{have} of {doc.vectors} vectors"
            report.findings.append(Finding(name, f"has {what} in the vector store"))
        if text != doc.chunks:
            report.findings.append(
                Finding(name, f"has {text} of its {doc.chunks} chunks' text in the catalogue")
            )
        if repair:
            report.repaired.append(_rebuild_vectors(index, doc, have))
    catalogue_replaced = any(f.where == str(files.get("catalogue")) for f in report.findings)
    orphans = {
        rev: n
        for rev, n in counts.items()
        if rev not in live and index.catalog.pending_holder(index.collection, rev) is None
    }
    if orphans:
        report.findings.append(
            Finding(
                str(root / "chroma"),
                f"{sum(orphans.values())} orphan vectors of {len(orphans)} revisions no document "
                "uses",
            )
        )
        if repair and not catalogue_replaced:  # else they may be all that is left
            index.vectorstore.delete(where={"revision": {"$in": list(orphans)}})
            report.repaired.append(f"deleted {sum(orphans.values())} orphan vectors")
    report.lines.append(
        f"vectors     {sum(counts.values())} in chroma/, {_human(_du(root / 'chroma'))}"
    )

    # 3. BM25: a cache of the catalogue; rebuilt on repair.
    bm25 = root / "bm25"
    report.lines.append(f"bm25        {_human(_du(bm25))}")
    if repair and documents:
        shutil.rmtree(bm25, ignore_errors=True)  # a cache of the catalogue, not user data
        index.lexical.search("index", 1, live)  # builds and saves it from chunk text
        report.repaired.append(f"rebuilt the BM25 index of {len(documents)} documents")
    # 4. Glossaries: per-document caches of chunk text; stale ones deleted on repair.
    report.lines.append(f"glossary    {_human(_du(index.glossary.dir))}")
    if repair and not catalogue_replaced and (gone := index.glossary.discard_except(live)):
        report.repaired.append(f"deleted {gone} glossaries of documents no longer indexed")
    report.lines.append(f"total       {_human(_du(root))}")
    return report


def _safe(name: str) -> str:
    """A file name fit for one line: control characters (a newline in a name) escaped."""
    return name if name.isprintable() else repr(name)[1:-1]


def _rebuild_vectors(index, doc, had: int) -> str:
    """Write a document's vectors again from the catalogue's chunk text (no PDF needed).

    When that text is incomplete too, the source PDF is indexed again if it is unchanged.
    """
    chunks = index.catalog.document_chunks(index.collection, doc.revision)
    if len(chunks) != doc.chunks:
        return _reindex_from_source(index, doc, len(chunks))
    if had:
        index.vectorstore.delete(where={"revision": doc.revision})
    windows = index._windows(chunks)
    index._write_vectors(doc.doc_id, doc.revision, windows, None)
    return f"{doc.doc_id}: wrote {len(windows)} vectors from the catalogue's chunk text"


def _reindex_from_source(index, doc, have: int) -> str:
    """Restore a document whose chunk text is incomplete by reading its source PDF again.

    Only the very bytes that were indexed are used (same sha256), with the chunk settings
    they were indexed with, so the document keeps its id and revision; a changed or
    missing file is reported, and nothing of the document is deleted.
    """
    import dataclasses

    from adaptsum.errors import DocumentError
    from adaptsum.ingest.files import file_sha256
    from adaptsum.store.index import DocumentIndex

    source = Path(doc.source)
    head = f"{doc.doc_id}: NOT repaired: {have} of {doc.chunks} chunks are in the catalogue and"
    if not source.is_file():
        return f"{head} its source {_safe(str(source))} is gone; index the PDF again"
    try:
        same = file_sha256(source) == doc.sha256
    except OSError as err:
        return f"{head} its source {_safe(str(source))} cannot be read ({err.strerror})"
    if not same:
        return (
            f"{head} its source {_safe(str(source))} has changed since; "
            f"`adaptsum index {_safe(str(source))}` indexes the new version"
        )
    ctx = dataclasses.replace(index.ctx, chunk_size=doc.chunk_size, chunk_overlap=doc.chunk_overlap)
    try:
        done = DocumentIndex(ctx, embeddings=(index.embeddings, index.info)).index_file(
            source, password=os.environ.get("ADAPTSUM_PDF_PASSWORD") or None
        )
    except DocumentError as err:
        return f"{head} reading its source failed: {err}"
    return (
        f"{doc.doc_id}: {done.status} from its source PDF {_safe(source.name)}: "
        f"{done.chunks} chunks, {done.vectors} vectors"
    )
