"""Write the turn's reply: a cited answer, the refusal line, or the summarize branch."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage
from langgraph.runtime import Runtime

from adaptsum.engines.factory import engine_for, index_for
from adaptsum.engines.language import REFUSAL, phrase
from adaptsum.ingest.pages import PageRange
from adaptsum.nodes.retry import run_deadline
from adaptsum.nodes.turn import end_of_turn
from adaptsum.state.context import Context
from adaptsum.state.graph_state import State, files_of


def reply_language(state: State, ctx: Context) -> str:
    """The asker's language ('auto'), the documents' ('document'), or a fixed one."""
    if ctx.answer_language == "document":
        return state.documents_language or state.question_language or "en"
    if ctx.answer_language != "auto":
        return ctx.answer_language
    return state.question_language or "en"


def answer(state: State, runtime: Runtime[Context], chat_model=None) -> dict[str, Any]:
    """Answer from the relevant chunks' evidence, best first, with page citations."""
    ctx = runtime.context
    index = index_for(ctx)
    evidence = sorted(
        (g for g in state.grades.values() if g["relevant"]),
        key=lambda g: (-g["relevance"], -g["score"]),
    )
    chunks = index.live_chunks([g["chunk_id"] for g in evidence], files_of(state.retrieved))
    documents = {d.doc_id: d for d in index.resolve(sorted({g["doc_id"] for g in evidence}))}
    if pages := PageRange.parse(state.pages):  # quote nothing from outside the asked pages
        chunks = {cid: pages.clip(c, documents[c.doc_id]) for cid, c in chunks.items()}
    language = reply_language(state, ctx)
    engine = engine_for(ctx, chat_model, run_deadline(runtime))
    result = engine.answer(state.request, language, evidence, chunks, documents)
    from adaptsum.providers.chat import dedupe_lines, emit_text

    message = AIMessage(result.text)
    if result.streamed and result.text == dedupe_lines(result.streamed + result.added):
        # The model's text is already on the `messages` stream: send only what adaptsum
        # added (pages, a flag), and reuse the reply's id so LangGraph does not send the
        # answer a second time. A client concatenating the stream gets the answer once
        # (with the model's repeated lines, which the final answer and the CLI drop:
        # `providers.chat.dedupe_lines` of the stream is the final answer).
        emit_text(result.added)
        message = AIMessage(result.text, id=result.message_id)
    update: dict[str, Any] = {
        "answer": result.text,
        "citations": result.citations,
        "usage": result.usage,
        **end_of_turn(state, message),
    }
    notes = "; ".join(result.notes)
    if result.refused:
        update["route"] = "refuse"
        if engine.name == "extractive":  # no model: its note says what was missing
            update["route_reason"] = f"{state.route_reason}; {notes}"
        else:
            update["route_reason"] = (
                f"{state.route_reason}; the model found the evidence insufficient"
            )
            if notes:
                update["route_reason"] += f" ({notes})"
    elif notes:
        update["route_reason"] = f"{state.route_reason}; {notes}"
    return update


def refuse(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """The notebook's refusal line, in the asker's language."""
    text = phrase(REFUSAL, reply_language(state, runtime.context))
    return {"answer": text, "citations": [], **end_of_turn(state, text)}
