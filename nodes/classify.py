"""Decide whether the request is a question, a summary request, or needs the whole document.

Keyword rules decide first and cost no call; the model is asked only when they are
unsure, and then, when the question's and documents' languages differ, it classifies
and translates in the same call, so the ask saves a round trip.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.runtime import Runtime

from adaptsum.engines.factory import engine_for, resources_for
from adaptsum.nodes.retry import run_deadline
from adaptsum.state.context import Context
from adaptsum.state.graph_state import State


def classify_request(state: State, runtime: Runtime[Context], chat_model=None) -> dict[str, Any]:
    """The `mode` input overrides; otherwise the rules or the engine decide and say why."""
    if state.mode == "answer":
        return {"request_kind": "question", "request_reason": "mode 'answer' was requested"}
    if state.mode == "summarize":
        return {"request_kind": "summary", "request_reason": "mode 'summarize' was requested"}
    engine = engine_for(runtime.context, chat_model, run_deadline(runtime))
    if engine.name != "llm":
        result = engine.classify(state.request, state.question_language)
        return {"request_kind": result.kind, "request_reason": result.reason}
    from adaptsum.engines.llm import StructuredOutputFailed

    rule = engine.rule_classification(state.request, state.question_language)
    if rule is not None:
        return {"request_kind": rule.kind, "request_reason": rule.reason}
    first_turn = sum(isinstance(m, HumanMessage) for m in state.messages) <= 1
    translate = (
        first_turn
        and bool(state.documents_language)
        and state.documents_language != state.question_language
    )
    try:
        if translate:
            result, translation, usage = engine.classify_and_translate(
                state.request, state.question_language, state.documents_language
            )
            update: dict[str, Any] = {
                "request_kind": result.kind,
                "request_reason": result.reason,
                "usage": usage,
            }
            if translation and result.kind == "question":
                update["retrieval_queries"] = list(dict.fromkeys([translation, state.request]))
            return update
        result = engine.classify(state.request, state.question_language)
    except StructuredOutputFailed as exc:
        from adaptsum.engines.extractive import ExtractiveEngine

        fallback = ExtractiveEngine(resources_for(runtime.context)).classify(
            state.request, state.question_language
        )
        return {
            "request_kind": fallback.kind,
            "request_reason": f"{fallback.reason} (keyword rule: the model's output was "
            f"unusable: {str(exc)[:80]})",
            "usage": exc.usage,
        }
    return {"request_kind": result.kind, "request_reason": result.reason, "usage": result.usage}
