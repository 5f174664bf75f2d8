"""The main graph: one request in, one cited answer, refusal or summary out.

    START → start_turn → prepare_documents → classify_request ─┬─ question → translate_query
      → retrieve → grade_chunk × N (Send) or grade_passages → decide_route ─┬─ answer → END
                                                          ├─ refuse → END
                                                          └─ whole document ┐
                                    └─ summary / whole document → plan_summary ◄┘
    plan_summary ─┬─ stuff_summary → END
                  ├─ collapse_gate ─┬─ map_chunk × wave (Send) → collapse_gate
                  │                 ├─ collapse_group × G (Send) → collapse_gate
                  │                 └─ reduce_summary → END
                  ├─ refine_chunk ⟲ (one chunk per step) → finish_refine → END
                  └─ summary_report (dry run, or a plan stopped at its pause) → END

Token budget (`max_tokens`): every model call reserves its worst case before it starts,
so a turn never spends more. When the next step does not fit, the run pauses with a
budget `interrupt` (`nodes/budget.py`): single-task model nodes pause themselves, and
`collapse_gate` checks each whole wave of parallel map or collapse tasks before it is
sent and pauses once for it. A turn stopped at a pause ends (route 'stopped') at once.

`graph` (compiled without a checkpointer) is what `langgraph.json` serves: the
LangGraph server brings its own persistence. Python callers use `build_graph` with
a checkpointer, e.g. `sqlite_saver()`.
"""

from __future__ import annotations

from functools import partial

from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from adaptsum.nodes.answer import answer, refuse
from adaptsum.nodes.attempts import counting_attempts
from adaptsum.nodes.budget import pausable
from adaptsum.nodes.classify import classify_request
from adaptsum.nodes.grading import decide_route, grade_chunk, grade_passages
from adaptsum.nodes.retrieval import retrieve, translate_query
from adaptsum.nodes.retry import MODEL_RETRY
from adaptsum.nodes.routing import (
    fan_out_grading,
    route_after_grading,
    route_collapse,
    route_plan,
    route_refine,
    route_request,
)
from adaptsum.nodes.summarize import (
    collapse_gate,
    collapse_group,
    finish_refine,
    map_chunk,
    plan_summary,
    reduce_summary,
    refine_chunk,
    stuff_summary,
    summary_report,
)
from adaptsum.nodes.turn import prepare_documents, start_turn
from adaptsum.state.context import Context
from adaptsum.state.graph_state import InputState, OutputState, State


def build_graph(
    checkpointer: BaseCheckpointSaver | None = None,
    *,
    chat_model: BaseChatModel | None = None,
) -> CompiledStateGraph:
    """Wire and compile the main graph.

    Args:
        checkpointer: Persists state between nodes and across turns of a thread
            (pass `sqlite_saver()`); None for the LangGraph server, which brings its own.
        chat_model: A LangChain chat model to use for the llm engine instead of the one
            `Context.chat_model` names (any provider, or a fake one in tests).
    """

    def with_model(node, chat_model, stop_note: str | None = None):
        """The node with its model, counting every attempt; `stop_note` adds budget pauses."""
        bound = partial(node, chat_model=chat_model)
        return counting_attempts(
            bound if stop_note is None else pausable(bound, stop_note=stop_note)
        )

    no_answer, no_summary = "No answer was written.", "No summary was written."
    builder = StateGraph(
        State, context_schema=Context, input_schema=InputState, output_schema=OutputState
    )
    builder.add_node("start_turn", start_turn)
    builder.add_node("prepare_documents", prepare_documents)
    builder.add_node(
        "classify_request",
        with_model(classify_request, chat_model, no_answer),
        retry_policy=MODEL_RETRY,
    )
    builder.add_node(
        "translate_query",
        with_model(translate_query, chat_model, no_answer),
        retry_policy=MODEL_RETRY,
    )
    builder.add_node("retrieve", retrieve)
    builder.add_node(
        "grade_chunk", with_model(grade_chunk, chat_model=chat_model), retry_policy=MODEL_RETRY
    )
    builder.add_node(
        "grade_passages",
        with_model(grade_passages, chat_model, no_answer),
        retry_policy=MODEL_RETRY,
    )
    builder.add_node("decide_route", decide_route)
    builder.add_node("answer", with_model(answer, chat_model, no_answer), retry_policy=MODEL_RETRY)
    builder.add_node("refuse", refuse)
    builder.add_node("plan_summary", with_model(plan_summary, chat_model=chat_model))
    builder.add_node("summary_report", summary_report)
    builder.add_node(
        "stuff_summary", with_model(stuff_summary, chat_model, no_summary), retry_policy=MODEL_RETRY
    )
    builder.add_node(
        "map_chunk", with_model(map_chunk, chat_model=chat_model), retry_policy=MODEL_RETRY
    )
    builder.add_node("collapse_gate", with_model(collapse_gate, chat_model))
    builder.add_node(
        "collapse_group",
        with_model(collapse_group, chat_model=chat_model),
        retry_policy=MODEL_RETRY,
    )
    builder.add_node(
        "reduce_summary",
        with_model(reduce_summary, chat_model, no_summary),
        retry_policy=MODEL_RETRY,
    )
    builder.add_node(
        "refine_chunk", with_model(refine_chunk, chat_model, no_summary), retry_policy=MODEL_RETRY
    )
    builder.add_node("finish_refine", finish_refine)

    builder.add_edge(START, "start_turn")
    builder.add_edge("start_turn", "prepare_documents")
    builder.add_edge("prepare_documents", "classify_request")
    builder.add_conditional_edges("classify_request", route_request)
    builder.add_edge("translate_query", "retrieve")
    builder.add_conditional_edges(
        "retrieve", fan_out_grading, ["grade_chunk", "grade_passages", "decide_route", END]
    )
    builder.add_edge("grade_chunk", "decide_route")
    builder.add_edge("grade_passages", "decide_route")
    builder.add_conditional_edges("decide_route", route_after_grading)
    builder.add_edge("answer", END)
    builder.add_edge("refuse", END)

    builder.add_conditional_edges(
        "plan_summary",
        route_plan,
        ["summary_report", "stuff_summary", "refine_chunk", "collapse_gate"],
    )
    builder.add_edge("map_chunk", "collapse_gate")
    builder.add_conditional_edges(
        "collapse_gate", route_collapse, ["map_chunk", "collapse_group", "reduce_summary", END]
    )
    builder.add_edge("collapse_group", "collapse_gate")
    builder.add_conditional_edges("refine_chunk", route_refine)
    builder.add_edge("stuff_summary", END)
    builder.add_edge("reduce_summary", END)
    builder.add_edge("finish_refine", END)
    builder.add_edge("summary_report", END)

    compiled = builder.compile(checkpointer=checkpointer)
    compiled.name = "adaptsum"
    return compiled


graph = build_graph()
