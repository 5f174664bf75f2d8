"""The index graph: documents in (URLs, uploads), ids and titles out.

    START → index_documents → END

The second assistant in `langgraph.json`, so a remote caller can index a document once
and then ask about it by id on any thread of the main graph. Progress is streamed as
custom events of kind 'index'. Compiled without a checkpointer, like `main_graph`.
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from adaptsum.nodes.turn import index_documents
from adaptsum.state.context import Context
from adaptsum.state.graph_state import IndexInput, IndexOutput, IndexState


def build_index_graph() -> CompiledStateGraph:
    """Wire and compile the index graph."""
    builder = StateGraph(
        IndexState, context_schema=Context, input_schema=IndexInput, output_schema=IndexOutput
    )
    builder.add_node("index_documents", index_documents)
    builder.add_edge(START, "index_documents")
    builder.add_edge("index_documents", END)
    compiled = builder.compile()
    compiled.name = "adaptsum-index"
    return compiled


graph = build_index_graph()
