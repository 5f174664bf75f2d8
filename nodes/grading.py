"""Grade each retrieved chunk in parallel, then decide the route and say why.

A grader whose model keeps failing (server errors, timeouts, dropped connections
through every retry) does not fail the run: on the node's last attempt its chunks
count as not relevant and the reason says what failed, so the route is decided and
explained instead of the run ending in an error.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from adaptsum.engines.factory import engine_for, index_for, resources_for
from adaptsum.ingest.pages import PageRange
from adaptsum.nodes.budget import STOPPED
from adaptsum.nodes.concurrency import work_slot
from adaptsum.nodes.retry import MAX_ATTEMPTS, last_attempt, retryable, run_deadline
from adaptsum.providers.budget import TokenBudgetExceeded
from adaptsum.state.context import Context
from adaptsum.state.graph_state import (
    Grade,
    GradeTask,
    Retrieved,
    State,
    files_of,
    not_relevant,
)
from adaptsum.store.catalog import ChunkRecord


def grade_chunk(task: GradeTask, runtime: Runtime[Context], chat_model=None) -> dict[str, Any]:
    """One grader per chunk (fanned out with `Send`); reads the chunk's text by id.

    If the model's output stays unusable through its retries, the chunk is graded by
    the extractive rule instead, the reason says so, and the failed tries' tokens count.
    """
    ctx = runtime.context
    index = index_for(ctx)
    hit = task["chunk"]
    chunk = index.live_chunks([hit["chunk_id"]], files_of([hit]))[hit["chunk_id"]]
    document = index.resolve([chunk.doc_id])[0]
    if pages := PageRange.parse(task.get("pages")):
        chunk = pages.clip(chunk, document)
    engine = engine_for(ctx, chat_model, run_deadline(runtime))
    if engine.name != "llm":
        grade, usage = engine.grade(
            task["question"], task["question_language"], task["chunk"], chunk, document
        )
        return {"grades": {grade["chunk_id"]: grade}, "usage": usage}
    from adaptsum.engines.llm import StructuredOutputFailed

    try:
        with work_slot(runtime, ctx.concurrency):
            grade, usage = engine.grade(
                task["question"], task["question_language"], task["chunk"], chunk, document
            )
    except TokenBudgetExceeded as exc:  # parallel graders must not each pause: use the rule
        from adaptsum.engines.extractive import ExtractiveEngine

        grade, usage = ExtractiveEngine(resources_for(ctx)).grade(
            task["question"], task["question_language"], task["chunk"], chunk, document
        )
        grade["reason"] = f"not graded by the model ({exc}); similarity rule: {grade['reason']}"
    except StructuredOutputFailed as exc:
        from adaptsum.engines.extractive import ExtractiveEngine

        grade, _ = ExtractiveEngine(resources_for(ctx)).grade(
            task["question"], task["question_language"], task["chunk"], chunk, document
        )
        usage = exc.usage
        grade["reason"] = f"grader failed ({exc}); similarity rule: {grade['reason']}"
    except Exception as exc:
        if not gives_up(runtime, exc):
            raise  # retried by MODEL_RETRY, or final (deadline, Ctrl-C, a rejected request)
        grade = failed_grade(task["chunk"], chunk, exc)
        usage = {}
    return {"grades": {grade["chunk_id"]: grade}, "usage": usage}


def gives_up(runtime: Runtime, exc: Exception) -> bool:
    """Whether a grader's failure becomes "not relevant" rather than an error.

    Only on the last attempt, for a transient fault that kept coming (a 500, a dropped
    reply, a timeout). A server that cannot be reached at all ends the run with that
    line instead: refusing would blame the documents for a server that is down.
    """
    from adaptsum.providers.chat import server_unreachable

    return last_attempt(runtime) and retryable(exc) and not server_unreachable(exc)


def failed_grade(hit: Retrieved, chunk: ChunkRecord, exc: Exception) -> Grade:
    """The grade of a chunk whose grader kept failing: not relevant, and why."""
    detail = " ".join(str(exc).split())[:160]
    return not_relevant(
        hit,
        chunk,
        f"grader failed after {MAX_ATTEMPTS} attempts "
        f"({type(exc).__name__}: {detail}); counted not relevant",
    )


def grade_passages(state: State, runtime: Runtime[Context], chat_model=None) -> dict[str, Any]:
    """All retrieved chunks graded in one structured call (`grading='batch'`): one round trip."""
    ctx = runtime.context
    index = index_for(ctx)
    hits = state.retrieved
    chunks = index.live_chunks([h["chunk_id"] for h in hits], files_of(hits))
    documents = {d.doc_id: d for d in index.resolve(sorted({h["doc_id"] for h in hits}))}
    if pages := PageRange.parse(state.pages):
        chunks = {cid: pages.clip(c, documents[c.doc_id]) for cid, c in chunks.items()}
    engine = engine_for(ctx, chat_model, run_deadline(runtime))
    question = state.retrieval_queries[-1] if state.retrieval_queries else state.request
    try:
        grades, usage, note = engine.grade_batch(
            question, state.question_language, hits, chunks, documents
        )
    except Exception as exc:
        if not gives_up(runtime, exc):
            raise  # retried by MODEL_RETRY, or final (deadline, Ctrl-C, a rejected request)
        grades = [failed_grade(h, chunks[h["chunk_id"]], exc) for h in hits]
        usage, note = {}, grades[0]["reason"] if grades else ""
    update: dict[str, Any] = {"grades": {g["chunk_id"]: g for g in grades}, "usage": usage}
    if note:
        update["request_reason"] = f"{state.request_reason}; {note}"
    return update


def decide_route(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Answer with relevant evidence, refuse without any, or summarize; record the reason."""
    if state.route == STOPPED:  # stopped at a budget pause: the turn ends as it is
        return {}
    if state.request_kind in ("summary", "whole_document"):
        return {"route": "summarize", "route_reason": state.request_reason}
    grades = [state.grades[r["chunk_id"]] for r in state.retrieved if r["chunk_id"] in state.grades]
    relevant = [g for g in grades if g["relevant"]]
    if relevant:
        best = max(relevant, key=lambda g: (g["relevance"], g["score"]))
        return {
            "route": "answer",
            "route_reason": f"{len(relevant)} of {len(grades)} retrieved chunks are relevant "
            f"(best: p. {best['evidence_page']}, {best['reason']})",
        }
    if not grades:
        return {"route": "refuse", "route_reason": "retrieval returned no chunks"}
    best = max(grades, key=lambda g: (g["relevance"], g["score"]))
    return {
        "route": "refuse",
        "route_reason": f"none of {len(grades)} retrieved chunks is relevant "
        f"(best: p. {best['evidence_page']}, {best['reason']})",
    }
