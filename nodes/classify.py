"""Decide whether the request is a question, a summary request, or needs the whole document."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from adaptsum.engines.factory import engine_for, resources_for
from adaptsum.nodes.retry import PARSE_ERRORS, last_attempt
from adaptsum.state.context import Context
from adaptsum.state.graph_state import State


def classify_request(state: State, runtime: Runtime[Context], chat_model=None) -> dict[str, Any]:
    """The `mode` input overrides; otherwise the engine decides and says why."""
    if state.mode == "answer":
        return {"request_kind": "question", "request_reason": "mode 'answer' was requested"}
    if state.mode == "summarize":
        return {"request_kind": "summary", "request_reason": "mode 'summarize' was requested"}
    engine = engine_for(runtime.context, chat_model)
    try:
        result = engine.classify(state.request, state.question_language)
    except PARSE_ERRORS as exc:
        if not last_attempt(runtime):
            raise
        from adaptsum.engines.extractive import ExtractiveEngine

        result = ExtractiveEngine(resources_for(runtime.context)).classify(
            state.request, state.question_language
        )
        return {
            "request_kind": result.kind,
            "request_reason": f"{result.reason} (keyword rule: the model's output was "
            f"unusable: {str(exc)[:80]})",
        }
    return {"request_kind": result.kind, "request_reason": result.reason, "usage": result.usage}
