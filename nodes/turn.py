"""Start a turn on a thread, and make the documents it is about ready to search."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, get_args

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime

from adaptsum.engines.factory import index_for
from adaptsum.engines.language import detect_language
from adaptsum.errors import AdaptsumError, DocumentError, InputError
from adaptsum.ingest.fetch import fetch_pdf, is_upload, is_url, save_upload, shown_name
from adaptsum.ingest.pages import PageRange
from adaptsum.nodes.attempts import forget_failed
from adaptsum.providers.budget import forget_run
from adaptsum.state.context import Context, on_server
from adaptsum.state.graph_state import IndexedDocument, IndexState, Mode, State, Strategy
from adaptsum.store.index import IndexReport

_DOC_ID = re.compile(r"[0-9a-f]{12}")
"""A document id: the first 12 hex digits of the PDF's sha256."""


def exchange(state: State, reply: str | AIMessage) -> list[AnyMessage]:
    """The turn's question and its reply, added to the thread together when the turn ends.

    Written only by the nodes that finish a turn, so a turn that fails or is cancelled
    leaves no unanswered question for later follow-ups to see.
    """
    return [HumanMessage(state.request), AIMessage(reply) if isinstance(reply, str) else reply]


TURN_OPTIONS: dict[str, Any] = {"pages": "", "mode": "auto", "strategy": "auto", "dry_run": False}
"""The request's options at their defaults. They hold for their own turn only: LangGraph
keeps a channel's value until it is written again, so a follow-up that left them out
ran with the last turn's ('When did Webb launch?' after a refine summary of page 2 was
summarized again, page 2 only, by refine)."""


def end_of_turn(state: State, reply: str | AIMessage) -> dict[str, Any]:
    """What every node that finishes a turn writes besides its answer.

    The exchange, and the request's options back at their defaults for the next turn.
    """
    return {"messages": exchange(state, reply), **TURN_OPTIONS}


def check_input(state: State) -> None:
    """Reject input a client sent with a wrong type or value, naming the field.

    The server does not validate input against the published schema, so this is where
    `mode: "bogus"` or `documents: "x.pdf"` become one-line errors.

    Raises:
        InputError: the first bad field.
    """
    if not isinstance(state.request, str):
        raise InputError(f"request must be a string, got {state.request!r}"[:200])
    if not state.request.strip():
        raise InputError("request is empty: ask a question or ask for a summary")
    for name, allowed in (("mode", Mode), ("strategy", Strategy)):
        value = getattr(state, name)
        if value not in get_args(allowed):
            choices = ", ".join(repr(a) for a in get_args(allowed))
            raise InputError(f"{name} must be one of {choices}, got {value!r}")
    if not isinstance(state.dry_run, bool):
        raise InputError(f"dry_run must be true or false, got {state.dry_run!r}")
    if not isinstance(state.pages, str):
        raise InputError(f"pages must be a string such as '3' or '2-5', got {state.pages!r}")
    PageRange.parse(state.pages)
    if not isinstance(state.documents, list):
        raise InputError(
            f"documents must be a list (URLs, uploads or ids), got {state.documents!r}"[:200]
        )
    for ref in state.documents:
        if not (isinstance(ref, str) or isinstance(ref, dict)):
            raise InputError(f"documents: each item must be a string or an upload, got {ref!r}")
        if isinstance(ref, dict) and not is_upload(ref):
            raise InputError(
                "documents: an upload is {'name': 'report.pdf', 'data': '<the bytes in "
                f"base64>'}}, got one with the keys {sorted(map(str, ref))}"[:300]
            )


def start_turn(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Check the input, clear the previous turn's results and note the request's language.

    The thread keeps its messages; `None` clears the reducer-backed fields (see
    `merge_grades`).
    """
    check_input(state)
    forget_run(runtime)  # the token budget is per turn
    forget_failed(runtime)  # and so is the usage of the last turn's failed attempts
    return {
        "token_budget": runtime.context.max_tokens,
        "turn": state.turn + 1,
        "question_language": detect_language(state.request),
        "answer": "",
        "citations": [],
        "route": "",
        "route_reason": "",
        "request_kind": "",
        "request_reason": "",
        "retrieval_queries": [],
        "retrieved": [],
        "grades": None,
        "usage": None,
    }


def uploads_dir(index) -> Path:
    """Where downloaded and uploaded PDFs are kept: inside the (caller's) data directory."""
    return Path(index.root) / "uploads"


def index_document(index, ref: Any, progress: Callable[..., None]) -> IndexReport | None:
    """Index a URL or an upload (anywhere) or a local path (outside a server).

    Returns None for a reference that is neither (an id or a name to resolve).
    """
    if is_upload(ref):
        path, label = save_upload(ref, uploads_dir(index)), f"upload {ref['name']}"
    elif is_url(ref):
        progress("download", 0, 1, name=ref)
        path, label = fetch_pdf(ref, uploads_dir(index)), ref
    elif not on_server() and (
        Path(ref).expanduser().exists() or Path(ref).expanduser().is_symlink()
    ):  # a broken or looping link is indexed so that its error names it
        return index.index_file(
            Path(ref).expanduser(),
            progress=partial(progress, name=Path(ref).name),
            password=os.environ.get("ADAPTSUM_PDF_PASSWORD") or None,  # the CLI's --password
        )
    else:
        return None
    # A stored copy is named by the user's file name or URL, never by its path on the
    # server's disk; one that cannot be indexed is not kept.
    try:
        return index.index_file(path, progress=partial(progress, name=shown_name(path)))
    except DocumentError as exc:
        path.unlink(missing_ok=True)
        raise DocumentError(label, exc.problem) from None


def _thread_document(index, ref: str, state: State) -> list[str]:
    """Ids of the indexed documents `ref` names.

    Raises:
        AdaptsumError: nothing matches; for a document an earlier turn of the thread
            used, the error says it was removed or replaced since.
    """
    try:
        return [d.doc_id for d in index.resolve([ref])]
    except AdaptsumError:
        if ref in state.doc_ids:
            raise AdaptsumError(
                f"document {ref}, which this thread used, is no longer indexed (removed, or "
                "replaced by a new version of its file): name the document again"
            ) from None
        raise


def prepare_documents(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Index uploads, URLs and (outside a server) PDF paths on demand; resolve ids and names.

    Indexing is instant when the bytes are unchanged. Progress is streamed as custom
    events of kind 'index'. A turn without documents uses the thread's; on a server a
    thread without any is refused rather than searching every user's documents.
    """
    ctx = runtime.context
    if ctx.engine == "extractive" and ctx.min_term_support > 0:
        from adaptsum.store.lexical import warm_up

        warm_up(state.request)  # Korean terms need Kiwi: load it while retrieval runs
    index = index_for(ctx)
    writer = get_stream_writer()

    def progress(stage: str, done: int, total: int, name: str = "") -> None:
        writer({"kind": "index", "file": name, "stage": stage, "done": done, "total": total})

    doc_ids: list[str] = []
    for ref in state.documents:
        report = index_document(index, ref, progress)
        if report is not None:
            doc_ids.append(report.doc_id)
        elif on_server():
            if not _DOC_ID.fullmatch(ref):
                raise InputError(
                    f"documents: {ref!r} is not an http(s) URL, an upload or a document id "
                    "(a server does not read files from its own disk)"
                )
            doc_ids.extend(_thread_document(index, ref, state))
        else:
            try:
                doc_ids.extend(_thread_document(index, ref, state))
            except AdaptsumError:
                path = Path(ref).expanduser()
                if path.suffix.lower() == ".pdf" or "/" in ref:
                    raise DocumentError(
                        path.resolve(), "no such file, and no indexed document has that name"
                    ) from None
                raise
    if not doc_ids and state.doc_ids:  # a follow-up: the thread's documents
        doc_ids = [i for ref in state.doc_ids for i in _thread_document(index, ref, state)]
    if not doc_ids and on_server():
        raise InputError(
            "documents is empty: give URLs, uploads or document ids (a server does not "
            "search every user's documents)"
        )
    documents = index.resolve(doc_ids) if doc_ids else index.documents()
    if not documents:
        raise AdaptsumError(
            "nothing is indexed yet: pass a PDF path in 'documents' or run `adaptsum index`"
        )
    languages = Counter(d.language for d in documents)
    doc_ids = list(dict.fromkeys(doc_ids))
    return {
        "doc_ids": doc_ids,
        "documents": doc_ids,  # uploads' bytes do not stay in the checkpoint
        "documents_language": languages.most_common(1)[0][0],
    }


def index_documents(state: IndexState, runtime: Runtime[Context]) -> dict[str, Any]:
    """The index graph's one step: index every URL or upload, report each document.

    Documents already indexed (same bytes) return at once with status 'unchanged'.
    """
    index = index_for(runtime.context)
    writer = get_stream_writer()

    def progress(stage: str, done: int, total: int, name: str = "") -> None:
        writer({"kind": "index", "file": name, "stage": stage, "done": done, "total": total})

    refs = state.get("documents")
    if not isinstance(refs, list) or not refs:
        raise InputError("documents is empty: give http(s) URLs or uploads ({name, data})")
    indexed: list[IndexedDocument] = []
    for ref in refs:
        if not (is_url(ref) or is_upload(ref)) and on_server():
            raise InputError(
                f"documents: {str(ref)[:200]!r} is not an http(s) URL or an upload "
                "(a server does not read files from its own disk)"
            )
        report = index_document(index, ref, progress)
        if report is None:
            raise DocumentError(str(ref), "no such file")
        indexed.append(
            IndexedDocument(
                doc_id=report.doc_id,
                title=report.title,
                pages=report.pages,
                chunks=report.chunks,
                status=report.status,
            )
        )
    return {"indexed": indexed}
