"""Start a turn on a thread, and make the documents it is about ready to search."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime
from langgraph.types import Overwrite

from adaptsum.engines.factory import index_for
from adaptsum.engines.language import detect_language
from adaptsum.errors import AdaptsumError, DocumentError
from adaptsum.state.context import Context
from adaptsum.state.graph_state import State


def start_turn(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Clear the previous turn's results (the thread keeps its messages) and note the language."""
    if not state.request.strip():
        raise AdaptsumError("the request is empty: ask a question or ask for a summary")
    return {
        "turn": state.turn + 1,
        "messages": [HumanMessage(state.request)],
        "question_language": detect_language(state.request),
        "answer": "",
        "citations": [],
        "route": "",
        "route_reason": "",
        "request_kind": "",
        "request_reason": "",
        "retrieval_queries": [],
        "retrieved": [],
        "grades": Overwrite({}),
        "usage": Overwrite({}),
    }


def prepare_documents(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Index PDF paths on demand (instant when unchanged) and resolve ids and names.

    Progress of any indexing is streamed as custom events of kind 'index'.
    """
    ctx = runtime.context
    if ctx.engine == "extractive" and ctx.min_term_support > 0:
        from adaptsum.store.lexical import warm_up

        warm_up(state.request)  # Korean terms need Kiwi: load it while retrieval runs
    index = index_for(ctx)
    writer = get_stream_writer()
    doc_ids: list[str] = []
    for ref in state.documents:
        path = Path(ref).expanduser()
        if path.exists():

            def progress(stage: str, done: int, total: int, name: str = path.name) -> None:
                writer(
                    {"kind": "index", "file": name, "stage": stage, "done": done, "total": total}
                )

            report = index.index_file(path, progress=progress)
            doc_ids.append(report.doc_id)
            continue
        try:
            doc_ids.extend(d.doc_id for d in index.resolve([ref]))
        except AdaptsumError:
            if path.suffix.lower() == ".pdf" or "/" in ref:
                raise DocumentError(
                    path.resolve(), "no such file, and no indexed document has that name"
                ) from None
            raise
    documents = index.resolve(doc_ids) if doc_ids else index.documents()
    if not documents:
        raise AdaptsumError(
            "nothing is indexed yet: pass a PDF path in 'documents' or run `adaptsum index`"
        )
    languages = Counter(d.language for d in documents)
    return {
        "doc_ids": list(dict.fromkeys(doc_ids)),
        "documents_language": languages.most_common(1)[0][0],
    }
