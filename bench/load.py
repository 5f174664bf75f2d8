"""Load benchmark: concurrent users asking and summarizing different documents at once.

Usage: python bench/load.py [--threads 8] [--asks 4] [--summaries 1] [--skip-server|--skip-api]
                            [--book-pages 2000]

Two setups, each in a fresh data directory with the default local stores (SQLite
catalogue and checkpoints, embedded Chroma) and the extractive engine:

1. **Python API**: one process, one compiled graph with the SQLite checkpointer, N OS
   threads (`--threads`, default 8).
2. **`langgraph dev --n-jobs-per-worker N`** (the in-memory server), driven over HTTP by
   N client threads through langgraph-sdk; documents reach it as uploads through the
   `adaptsum-index` assistant, as a remote user's would.

Thread i owns document i: the PDFs of ../shared/corpus and examples/. When there are
fewer PDFs than threads, the extra threads get byte-distinct copies of the first ones
(a PDF comment appended, so another document id with the very same text): a run that
strayed into its twin's identical text is caught by document id all the same. Each
thread asks `--asks` questions of the development set about its document, each on a
new conversation thread, then summarizes it `--summaries` times.

Counted, never hidden: errors (an exception or a failed run), cross-talk (a citation
of any document but the thread's own, or an answer or summary that cites nothing of
its own), "database is locked" (in errors, logs and the server's log), refusals. Printed:
a table with throughput over the concurrent phase, p50/p95 per kind of request, and
peak RSS (the benchmark process for the API; the server's processes for the server).

`--book-pages N` first times `adaptsum index` of a generated N-page PDF in a child
process (seconds, pages/s and its peak RSS): the big-document bound that the tests
check only for loading and chunking, to stay fast.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

LOCKED = "database is locked"
SUMMARY_REQUEST = "Summarize this document."


@dataclass
class Job:
    """What one thread does: its document, its questions."""

    pdf: Path
    questions: list[str]
    doc_id: str = ""


@dataclass
class Tally:
    """What one setup measured."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {"ask": [], "summary": []})
    errors: list[str] = field(default_factory=list)
    crosstalk: list[str] = field(default_factory=list)
    refusals: int = 0
    wall: float = 0.0
    peak_rss_mb: float = 0.0
    locked: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, seconds: float, job: Job, out: dict) -> None:
        """Check one result for cross-talk; keep its latency."""
        cited = {c.get("doc_id") for c in out.get("citations") or []}
        with self.lock:
            self.latencies[kind].append(seconds)
            if out.get("route") == "refuse":
                self.refusals += 1
                if cited:
                    self.crosstalk.append(f"{job.pdf.name}: a refusal cites {sorted(cited)}")
                return
            if not out.get("answer"):
                self.errors.append(f"{job.pdf.name}: {kind} returned no text")
            elif cited != {job.doc_id}:
                self.crosstalk.append(
                    f"{job.pdf.name} ({job.doc_id}): {kind} cites {sorted(cited) or 'nothing'}"
                )

    def fail(self, job: Job, kind: str, message: str) -> None:
        with self.lock:
            self.errors.append(f"{job.pdf.name}: {kind}: {message[:300]}")
            self.locked += LOCKED in message


class _LockedLogs(logging.Handler):
    """Counts log records (any library's) that mention a locked database."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage() + (str(record.exc_info[1]) if record.exc_info else "")
        self.count += LOCKED in text


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def make_jobs(threads: int, asks: int, work: Path) -> list[Job]:
    """One document per thread (copies made distinct when PDFs run out), with its questions."""
    dirs = [REPO.parent / "shared" / "corpus", REPO / "examples"]
    pdfs = [p for d in dirs if d.is_dir() for p in sorted(d.glob("*.pdf"))]
    rows = [json.loads(line) for line in (REPO / "bench/data/dev_questions.jsonl").open()]
    jobs: list[Job] = []
    for i in range(threads):
        source = pdfs[i % len(pdfs)]
        questions = [r["question"] for r in rows if r["pdf"] == source.name and r.get("pages")]
        if not questions:
            raise SystemExit(f"no development question is about {source.name}")
        pdf = source
        if i >= len(pdfs):  # another document id, the same text
            pdf = work / f"copy{i}-{source.name}"
            pdf.write_bytes(source.read_bytes() + f"\n% load-bench copy {i}\n".encode())
        questions = (questions * asks)[i % len(questions) :][:asks]
        jobs.append(Job(pdf=pdf, questions=questions))
    return jobs


def drive(jobs: list[Job], tally: Tally, ask: Callable[[Job, str, str], dict], summaries: int):
    """Run every job on its own thread at once; fill `tally`."""

    def one(job: Job) -> None:
        for kind, request in [("ask", q) for q in job.questions] + [
            ("summary", SUMMARY_REQUEST)
        ] * summaries:
            started = time.perf_counter()
            try:
                out = ask(job, kind, request)
            except Exception as err:  # counted and shown, never hidden
                tally.fail(job, kind, f"{type(err).__name__}: {err}")
                continue
            if isinstance(out, dict) and "__error__" in out:
                tally.fail(job, kind, json.dumps(out["__error__"], ensure_ascii=False))
                continue
            tally.record(kind, time.perf_counter() - started, job, out)

    started = time.perf_counter()
    with ThreadPoolExecutor(len(jobs)) as pool:
        list(pool.map(one, jobs))
    tally.wall = time.perf_counter() - started


def run_api(jobs: list[Job], root: Path, summaries: int) -> Tally:
    """Setup 1: the Python API, one graph, N threads, default local stores."""
    from adaptsum import Context, build_graph, checkpointer
    from adaptsum.engines.factory import index_for

    ctx = Context(data_dir=str(root / "api"))
    index = index_for(ctx)
    for job in jobs:
        job.doc_id = index.index_file(job.pdf).doc_id
    graph = build_graph(checkpointer=checkpointer(ctx))

    def ask(job: Job, kind: str, request: str) -> dict:
        payload = {"request": request, "documents": [job.doc_id]}
        if kind == "summary":
            payload["mode"] = "summarize"
        config = {"configurable": {"thread_id": uuid.uuid4().hex}, "max_concurrency": 8}
        return graph.invoke(payload, config, context=ctx)

    ask(jobs[0], "ask", jobs[0].questions[0])  # warm-up: Kiwi, connections
    logs = _LockedLogs()
    logging.getLogger().addHandler(logs)
    tally = Tally()
    try:
        drive(jobs, tally, ask, summaries)
    finally:
        logging.getLogger().removeHandler(logs)
    tally.locked += logs.count
    tally.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return tally


def _tree_peak_rss_mb(pid: int) -> float:
    """Sum of the peak RSS (VmHWM) of a process and its descendants, from /proc."""
    import psutil

    total = 0
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    for proc in procs:
        try:
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def run_server(jobs: list[Job], root: Path, threads: int, summaries: int) -> Tally:
    """Setup 2: `langgraph dev --n-jobs-per-worker N`, N client threads over HTTP."""
    from langgraph_sdk import get_sync_client
    from services import start_langgraph_dev

    work = root / "server"
    work.mkdir()
    env = dict(os.environ)
    env.update(
        ADAPTSUM_DATA_DIR=str(work / "data"),
        ADAPTSUM_AUTH="none",  # a server only this machine reaches
        LANGSMITH_TRACING="false",
        LANGCHAIN_TRACING_V2="false",
        PYTHONUNBUFFERED="1",
    )
    url, proc = start_langgraph_dev(work, env, "--n-jobs-per-worker", str(threads))
    try:
        client = get_sync_client(url=url, timeout=1800)
        by_name: dict[str, str] = {}
        for job in jobs:
            upload = {"name": job.pdf.name, "data": base64.b64encode(job.pdf.read_bytes()).decode()}
            thread = client.threads.create()
            out = client.runs.wait(
                thread["thread_id"], "adaptsum-index", input={"documents": [upload]}
            )
            if "__error__" in out:
                raise RuntimeError(f"indexing {job.pdf.name} failed: {out['__error__']}")
            job.doc_id = by_name[job.pdf.name] = out["indexed"][0]["doc_id"]

        def ask(job: Job, kind: str, request: str) -> dict:
            payload = {"request": request, "documents": [job.doc_id]}
            if kind == "summary":
                payload["mode"] = "summarize"
            thread = client.threads.create()
            return client.runs.wait(
                thread["thread_id"], "adaptsum", input=payload, raise_error=False
            )

        ask(jobs[0], "ask", jobs[0].questions[0])  # warm-up
        tally = Tally()
        drive(jobs, tally, ask, summaries)
        tally.peak_rss_mb = _tree_peak_rss_mb(proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(work / ".langgraph_api", ignore_errors=True)
    log = (work / "server.log").read_text(errors="replace")
    tally.locked += log.count(LOCKED)
    return tally


def index_book(pages: int, root: Path) -> str:
    """`adaptsum index` of a generated `pages`-page PDF in a fresh data directory."""
    from helpers import make_book

    book = make_book(root / f"book-{pages}.pdf", pages)
    exe = Path(sys.executable).with_name("adaptsum")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(
        [str(exe), "index", str(book), "--no-progress", "--data-dir", str(root / "book")],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode != 0:
        raise SystemExit(f"indexing the {pages}-page PDF failed: {done.stderr.strip()}")
    line = done.stdout.splitlines()[0]
    rss = f"{peak / 1024:.0f} MB" if peak > before else "n/a (not the largest child)"
    return (
        f"`adaptsum index` of a {pages}-page PDF: {seconds:.1f} s ({pages / seconds:.0f} pages/s),"
        f" peak RSS {rss}; {line.split(':', 1)[1].strip()}"
    )


def row(name: str, tally: Tally) -> str:
    asks, sums = tally.latencies["ask"], tally.latencies["summary"]
    done = len(asks) + len(sums)
    return (
        f"| {name} | {done + len(tally.errors)} | {len(tally.errors)} | {len(tally.crosstalk)} "
        f"| {tally.locked} | {tally.refusals} | {done / tally.wall:.2f} "
        f"| {_percentile(asks, 0.5):.2f} / {_percentile(asks, 0.95):.2f} "
        f"| {_percentile(sums, 0.5):.2f} / {_percentile(sums, 0.95):.2f} "
        f"| {tally.peak_rss_mb:.0f} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--asks", type=int, default=4, help="questions per thread")
    parser.add_argument("--summaries", type=int, default=1, help="summaries per thread")
    parser.add_argument("--skip-server", action="store_true", help="the Python API only")
    parser.add_argument("--skip-api", action="store_true", help="the server only")
    parser.add_argument(
        "--book-pages", type=int, default=2000, help="pages of the generated PDF (0: skip)"
    )
    args = parser.parse_args()
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    # A `kill` (SIGTERM) still runs the `finally` blocks: the server is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    root = Path(tempfile.mkdtemp(prefix="adaptsum-load-"))
    book = ""
    try:
        if args.book_pages:
            book = index_book(args.book_pages, root)
            print(f"  {book}", file=sys.stderr)
        jobs = make_jobs(args.threads, args.asks, root)
        names = ", ".join(j.pdf.name for j in jobs)
        print(f"{len(jobs)} threads, one document each: {names}", file=sys.stderr)
        results = []
        if not args.skip_api:
            results.append(("Python API", run_api(jobs, root, args.summaries)))
            print("  Python API done", file=sys.stderr)
        if not args.skip_server:
            jobs = [Job(j.pdf, j.questions) for j in jobs]
            name = f"langgraph dev, {args.threads} jobs/worker"
            results.append((name, run_server(jobs, root, args.threads, args.summaries)))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"\n{args.threads} threads × ({args.asks} questions + {args.summaries} summary) on "
        "different documents, extractive engine, default local stores\n"
    )
    print(
        "| setup | requests | errors | cross-talk | database is locked | refusals "
        "| requests/s | ask p50 / p95 s | summary p50 / p95 s | peak RSS MB |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, tally in results:
        print(row(name, tally))
    if book:
        print(f"\n{book}")
    bad = 0
    for name, tally in results:
        for line in tally.errors + tally.crosstalk:
            print(f"{name}: {line}")
            bad += 1
        bad += tally.locked
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
