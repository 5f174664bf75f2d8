"""Pure routing functions: they read state and name the next node, nothing else."""

from __future__ import annotations

from typing import Literal

from langgraph.types import Send

from adaptsum.state.graph_state import GradeTask, State


def route_request(state: State) -> Literal["translate_query", "summarize"]:
    """Questions go to retrieval; summary requests to the summarize branch."""
    return "translate_query" if state.request_kind == "question" else "summarize"


def fan_out_grading(state: State) -> list[Send] | Literal["decide_route"]:
    """One parallel grader per retrieved chunk; straight to the decision if none came back."""
    if not state.retrieved:
        return "decide_route"
    question = state.retrieval_queries[-1] if state.retrieval_queries else state.request
    return [
        Send(
            "grade_chunk",
            GradeTask(question=question, question_language=state.question_language, chunk=hit),
        )
        for hit in state.retrieved
    ]


def route_after_grading(state: State) -> Literal["answer", "refuse", "summarize"]:
    """Follow the route `decide_route` recorded (with its reason) in state."""
    if state.route == "answer":
        return "answer"
    if state.route == "summarize":
        return "summarize"
    return "refuse"
