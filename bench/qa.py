"""Question-path benchmark: graph and checkpoint overhead per node, and ask latency.

Usage: python bench/qa.py [--runs 20]

1. Overhead: the llm-engine graph with a zero-latency fake chat model, run with no
   checkpointer, in memory, and with SQLite. Node time is measured from LangGraph's
   own callbacks; overhead per node = (wall time - time inside nodes) / node runs.
2. Ask latency with the extractive engine on an indexed sample: a re-ask inside a
   warm process (the graph's cost) and the whole `adaptsum ask` command (process
   start and imports included).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "hangul-ko.pdf"
QUESTION = "한글날은 언제인가요?"


class InstantModel(GenericFakeChatModel):
    """Answers every prompt at once with a valid reply for its kind."""

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        system = str(messages[0].content)
        if "You route requests" in system:
            text = json.dumps({"kind": "question", "reason": "bench"})
        elif "You judge whether" in system:
            text = json.dumps({"evidence": "10월 9일", "relevance": 8, "reason": "bench"})
        else:
            text = "한글날은 10월 9일입니다 [p. 1]."
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


class NodeTimer(BaseCallbackHandler):
    """Sums the wall time spent inside graph nodes (LangGraph tags node runs)."""

    def __init__(self) -> None:
        self.started: dict[Any, float] = {}
        self.inside = 0.0
        self.nodes = 0

    def on_chain_start(self, serialized, inputs, *, run_id, metadata=None, **kwargs) -> None:
        if (
            metadata
            and "langgraph_node" in metadata
            and kwargs.get("name") == metadata["langgraph_node"]
        ):
            self.started[run_id] = time.perf_counter()

    def on_chain_end(self, outputs, *, run_id, **kwargs) -> None:
        if run_id in self.started:
            self.inside += time.perf_counter() - self.started.pop(run_id)
            self.nodes += 1


def overhead(data_dir: str, runs: int) -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    from adaptsum import Context, build_graph, sqlite_saver

    ctx = Context(data_dir=data_dir, engine="llm")
    savers = {"none": None, "memory": InMemorySaver(), "sqlite": sqlite_saver(ctx)}
    print("graph + checkpoint overhead (llm engine, zero-latency fake model)")
    for name, saver in savers.items():
        graph = build_graph(saver, chat_model=InstantModel(messages=iter(())))
        per_node: list[float] = []
        for i in range(runs + 2):
            timer = NodeTimer()
            config = {"configurable": {"thread_id": f"bench-{i}"}, "callbacks": [timer]}
            started = time.perf_counter()
            graph.invoke({"request": QUESTION, "documents": [str(SAMPLE)]}, config, context=ctx)
            wall = time.perf_counter() - started
            if i >= 2:  # warm-up runs excluded
                per_node.append((wall - timer.inside) / timer.nodes * 1000)
        print(
            f"  {name:7} {timer.nodes} node runs/ask, overhead per node: median "
            f"{statistics.median(per_node):.2f} ms, max {max(per_node):.2f} ms (target <= 5 ms)"
        )


def latency(data_dir: str, runs: int) -> None:
    from adaptsum import Context, build_graph

    ctx = Context(data_dir=data_dir)
    graph = build_graph()
    graph.invoke({"request": QUESTION, "documents": [str(SAMPLE)]}, context=ctx)  # warm caches
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        out = graph.invoke({"request": QUESTION, "documents": [str(SAMPLE)]}, context=ctx)
        times.append(time.perf_counter() - started)
    assert out["route"] == "answer"
    print("ask latency, extractive engine, indexed sample")
    print(
        f"  re-ask in a warm process: median {statistics.median(times) * 1000:.0f} ms, "
        f"max {max(times) * 1000:.0f} ms (target <= 1 s)"
    )
    exe = Path(sys.executable).with_name("adaptsum")
    whole = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run(
            [str(exe), "ask", str(SAMPLE), QUESTION, "--data-dir", data_dir, "--json"],
            check=True,
            capture_output=True,
            env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
        )
        whole.append(time.perf_counter() - started)
    print(f"  whole `adaptsum ask` command: median {statistics.median(whole):.2f} s (3 runs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    with tempfile.TemporaryDirectory() as tmp:
        overhead(tmp, args.runs)
        latency(tmp, args.runs)


if __name__ == "__main__":
    main()
