"""Scale-out benchmark: the local default against PostgreSQL + a Chroma server, side by side.

Usage: python bench/scale.py [--questions 50] [--threads 8] [--pdf-dir DIR ...]

Starts a throwaway PostgreSQL (with fsync on, as in production) and `chroma run` (the
test fixtures' code, tests/services.py),
then for each setup, in fresh data directories and one process:

1. index time for the same PDFs (../shared/corpus and examples/ by default);
2. ask latency p50/p95 over N questions (bench/data/dev_questions.jsonl), the
   extractive engine through the whole graph with that setup's checkpointer,
   each question on its own thread, after one warm-up question;
3. throughput of 8 threads asking those questions at once (one graph, 8 OS threads),
   with the number of errors.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def _pdfs(dirs: list[Path]) -> list[Path]:
    out: list[Path] = []
    for d in dirs:
        out.extend(sorted(d.glob("*.pdf")))
    return out


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_setup(name: str, settings: dict[str, str], root: Path, pdfs, questions, threads) -> dict:
    from adaptsum import Context, build_graph, checkpointer
    from adaptsum.engines.factory import index_for

    ctx = Context(data_dir=str(root / name), **settings)
    index = index_for(ctx)
    index.embeddings.embed_query("warm-up")  # load the model outside the timing
    started = time.perf_counter()
    chunks = sum(index.index_file(pdf).chunks for pdf in pdfs)
    index_seconds = time.perf_counter() - started
    print(f"  {name}: indexed {chunks} chunks in {index_seconds:.1f} s", file=sys.stderr)

    graph = build_graph(checkpointer=checkpointer(ctx))

    def ask(question: str) -> float:
        t0 = time.perf_counter()
        out = graph.invoke(
            {"request": question},
            {"configurable": {"thread_id": uuid.uuid4().hex}},
            context=ctx,
        )
        if not out.get("answer"):
            raise RuntimeError(f"no answer to {question!r}")
        return time.perf_counter() - t0

    ask(questions[0])  # warm-up: Kiwi, sentence vectors, connection pools
    latencies = [ask(q) for q in questions]
    print(f"  {name}: {len(questions)} questions asked one by one", file=sys.stderr)

    errors = 0
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(ask, q) for q in questions]
        for future in futures:
            try:
                future.result()
            except Exception as err:  # counted and shown, never hidden
                errors += 1
                print(f"  {name}: error: {err}", file=sys.stderr)
    wall = time.perf_counter() - started
    return {
        "pdfs": len(pdfs),
        "chunks": chunks,
        "index_s": index_seconds,
        "p50_ms": 1000 * statistics.median(latencies),
        "p95_ms": 1000 * _percentile(latencies, 0.95),
        "throughput": len(questions) / wall,
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=50)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--pdf-dir", action="append", type=Path)
    args = parser.parse_args()

    from services import start_chroma, start_postgres

    dirs = args.pdf_dir or [d for d in (REPO.parent / "shared" / "corpus",) if d.is_dir()]
    pdfs = _pdfs([*dirs, REPO / "examples"])
    rows = [json.loads(line) for line in (REPO / "bench/data/dev_questions.jsonl").open()]
    questions = [row["question"] for row in rows]
    questions = (questions * (args.questions // max(len(questions), 1) + 1))[: args.questions]

    # A `kill` (SIGTERM) still runs the `finally` below: the servers are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    root = Path(tempfile.mkdtemp(prefix="adaptsum-scale-"))
    pg_root = Path(tempfile.mkdtemp(prefix="adaptsum-scale-pg-"))
    chroma_root = root / "chroma-server"
    chroma_root.mkdir()
    stop: list[str] = []
    chroma = None
    try:
        server, _, stop = start_postgres(pg_root, durable=True)
        chroma_url, chroma = start_chroma(chroma_root)
        setups = {
            "local (SQLite + embedded Chroma)": {},
            "PostgreSQL + Chroma server": {
                "database_url": server.create_database("bench"),
                "chroma_url": chroma_url,
            },
        }
        results = {}
        for name, settings in setups.items():
            print(f"running: {name} ...", file=sys.stderr)
            results[name] = run_setup(
                name.split()[0].lower(), settings, root, pdfs, questions, args.threads
            )
    finally:
        if chroma is not None:
            chroma.terminate()
            chroma.wait(timeout=30)
        if stop:
            subprocess.run(stop, capture_output=True, timeout=60)
        shutil.rmtree(pg_root, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)

    names = list(results)
    first = results[names[0]]
    print(
        f"\n{len(pdfs)} PDFs, {first['chunks']} chunks; {len(questions)} questions; "
        f"{args.threads} threads; extractive engine"
    )
    print(f"{'':34}" + "".join(f"{n:>34}" for n in names))
    for key, label, fmt in (
        ("index_s", "index time (s)", "{:.2f}"),
        ("p50_ms", "ask latency p50 (ms)", "{:.0f}"),
        ("p95_ms", "ask latency p95 (ms)", "{:.0f}"),
        ("throughput", f"{args.threads} threads (questions/s)", "{:.2f}"),
        ("errors", f"errors ({args.threads} threads)", "{}"),
    ):
        print(f"{label:34}" + "".join(f"{fmt.format(results[n][key]):>34}" for n in names))
    ratio = results[names[1]]["p50_ms"] / results[names[0]]["p50_ms"]
    print(f"{'p50 ratio (servers / local)':34}{ratio:>68.2f}")


if __name__ == "__main__":
    main()
