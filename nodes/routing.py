"""Pure routing functions: they read state and name the next node, nothing else."""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END
from langgraph.runtime import Runtime
from langgraph.types import Send

from adaptsum.nodes.budget import STOPPED
from adaptsum.nodes.summarize import collapse_tasks, map_tasks
from adaptsum.state.context import Context
from adaptsum.state.graph_state import GradeTask, State


def route_request(state: State) -> Literal["translate_query", "plan_summary", "__end__"]:
    """Questions go to retrieval; summary and whole-document requests to the summary plan.

    A turn stopped at a budget pause ends here (and likewise in every router below).
    """
    if state.route == STOPPED:
        return END
    return "translate_query" if state.request_kind == "question" else "plan_summary"


def fan_out_grading(
    state: State, runtime: Runtime[Context]
) -> list[Send] | Literal["decide_route", "grade_passages"]:
    """One parallel grader per retrieved chunk, or one batch grader (`grading`).

    Straight to the decision if retrieval found nothing.
    """
    if state.route == STOPPED:
        return END
    if not state.retrieved:
        return "decide_route"
    if runtime.context.engine == "llm" and _grading(runtime.context) == "batch":
        return "grade_passages"
    question = state.retrieval_queries[-1] if state.retrieval_queries else state.request
    return [
        Send(
            "grade_chunk",
            GradeTask(
                question=question,
                question_language=state.question_language,
                chunk=hit,
                pages=state.pages,
            ),
        )
        for hit in state.retrieved
    ]


def _grading(ctx: Context) -> str:
    if ctx.grading != "auto":
        return ctx.grading
    return "batch" if ctx.chat_base_url else "each"


def route_after_grading(state: State) -> Literal["answer", "refuse", "plan_summary", "__end__"]:
    """Follow the route `decide_route` recorded (with its reason) in state."""
    if state.route == STOPPED:
        return END
    if state.route == "answer":
        return "answer"
    if state.route == "summarize":
        return "plan_summary"
    return "refuse"


def route_plan(
    state: State,
) -> Literal["summary_report", "stuff_summary", "refine_chunk", "collapse_gate"]:
    """Dry run, stuff, refine, or the budget gate that sends map tasks in waves."""
    if state.dry_run or state.summary_plan.get("stopped"):
        return "summary_report"
    strategy = state.summary_plan.get("strategy")
    if strategy == "stuff":
        return "stuff_summary"
    if strategy == "refine":
        return "refine_chunk"
    return "collapse_gate"


def route_collapse(state: State) -> list[Send] | Literal["reduce_summary", "__end__"]:
    """The next round of map tasks; then collapse rounds while over the reduce budget."""
    if state.route == STOPPED:
        return END
    if state.summary_plan.get("strategy") == "map_reduce" and (maps := map_tasks(state)):
        return [Send("map_chunk", task) for task in maps]
    tasks = collapse_tasks(state)
    return [Send("collapse_group", task) for task in tasks] if tasks else "reduce_summary"


def route_refine(state: State) -> Literal["refine_chunk", "finish_refine", "__end__"]:
    """Next chunk until all are folded in; the step counter bounds the loop."""
    if state.route == STOPPED:
        return END
    if state.refine_step < state.summary_chunks:
        return "refine_chunk"
    return "finish_refine"
