"""Map-reduce benchmark: parallel map against a chat model with a fixed latency per call.

Usage: python bench/mapreduce.py [--latency 0.5] [--chunks 55]

For max_concurrency 1, 4, 8 and unbounded it prints the wall time, the critical path
(the longest chain of calls given the concurrency: map rounds, collapse rounds, one
reduce), their ratio, and the speed-up over running every call in sequence. It also
prints the checkpoint database's size over the source text's, and how close the
--dry-run token estimate came to the tokens the run reported.

The model sleeps `latency` seconds per call and answers with text of the length the
prompts ask for; its reported usage is the tiktoken count of prompt and reply.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

import pymupdf
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult

REPO = Path(__file__).resolve().parents[1]
UNBOUNDED = 1024
"""LangGraph's sync executor has min(32, cores + 4) threads unless max_concurrency is set."""


class SlowModel(GenericFakeChatModel):
    """Sleeps per call; replies as long as asked; reports tiktoken usage."""

    latency: float = 0.5
    model_name: str = "slow"
    log: list = []
    lock: object = threading.Lock()

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        from adaptsum.providers.tokens import count_tokens

        time.sleep(self.latency)
        system, user = str(messages[0].content), str(messages[-1].content)
        kind = next(
            k
            for k, marker in [
                ("map", "You summarize one passage"),
                ("collapse", "You condense"),
                ("reduce", "You write the final summary"),
                ("stuff", "You summarize a whole document"),
                ("refine", "You are refining"),
            ]
            if marker in system
        )
        pages = re.findall(r"\[p\. \d+\]", user) or ["[p. 1]"]
        # About 28 o200k tokens, like a sentence of a real summary.
        sentence = (
            "This sentence stands in for one sentence of a model's summary, written about "
            "the passage with its main claim, its evidence and the page it came from. "
        )
        if kind == "map":
            count = 10  # 1-3 paragraphs of 5 sentences: 2 on average
        elif kind == "collapse":
            words = int(re.search(r"at most (\d+) words", system).group(1))
            count = max(4, words // 14)
        else:
            count = 30  # 5 paragraphs of 4-8 sentences
        text = " ".join(sentence.strip() for _ in range(count)) + " " + pages[0]
        with self.lock:
            self.log.append(kind)
        usage = {
            "input_tokens": count_tokens(system) + count_tokens(user),
            "output_tokens": count_tokens(text),
        }
        usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
        return ChatResult(
            generations=[ChatGeneration(message=AIMessage(content=text, usage_metadata=usage))]
        )


def _document(tmp: Path) -> Path:
    """A paper-sized PDF (the notebook summarized a 35-page report in 55 chunks).

    Made by concatenating the shared corpus twice (38 pages), or the samples ten times
    (40 pages) on a clone without it.
    """
    corpus = sorted((REPO.parent / "shared" / "corpus").glob("*.pdf"))
    sources = corpus * 2 if corpus else sorted((REPO / "examples").glob("*.pdf")) * 10
    out = tmp / "long.pdf"
    with pymupdf.open() as doc:
        for source in sources:
            with pymupdf.open(source) as src:
                doc.insert_pdf(src)
        doc.save(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--chunks", type=int, default=55)
    args = parser.parse_args()
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

    from langgraph.checkpoint.sqlite import SqliteSaver

    from adaptsum import Context, build_graph
    from adaptsum.ingest.pdf import load_pdf
    from adaptsum.store.index import DocumentIndex

    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        pdf = _document(tmp)
        pages = load_pdf(pdf).pages
        text_bytes = sum(len(p.page_content.encode()) for p in pages)
        size = _size_for(pages, args.chunks)
        ctx = Context(
            data_dir=str(tmp / "data"),
            engine="llm",
            chunk_size=size,
            chunk_overlap=0,
            stuff_budget=100,
            map_cache=False,  # every run maps every chunk
        )
        report = DocumentIndex(ctx).index_file(pdf)
        print(
            f"document: {pdf.name}, {report.chunks} chunks of <= {size} tokens, "
            f"{args.latency} s per call"
        )
        print(
            f"{'concurrency':>11} {'calls':>5} {'wall s':>7} {'critical s':>10} "
            f"{'wall/crit':>9} {'speed-up':>8}"
        )
        for concurrency in (1, 4, 8, None):
            # A fresh model name per run: the map cache is keyed by model, so no run
            # borrows another's results.
            model = SlowModel(
                messages=iter(()), latency=args.latency, log=[], model_name=f"slow-{concurrency}"
            )
            db = tmp / f"checkpoints-{concurrency}.sqlite"
            saver = SqliteSaver(sqlite3.connect(db, check_same_thread=False))
            graph = build_graph(saver, chat_model=model)
            limit = concurrency or UNBOUNDED
            # As the CLI runs it: the pool starts a whole round at once (so finished maps
            # are checkpointed as they finish) and Context.concurrency bounds the calls.
            config = {"configurable": {"thread_id": "bench"}, "max_concurrency": 258}
            run_ctx = dataclasses.replace(ctx, concurrency=concurrency or 0)
            plan = graph.invoke(
                {
                    "request": "summarize",
                    "documents": [str(pdf)],
                    "mode": "summarize",
                    "strategy": "map_reduce",
                    "dry_run": True,
                },
                {"configurable": {"thread_id": "plan"}},
                context=ctx,
            )["summary_plan"]
            started = time.perf_counter()
            out = graph.invoke(
                {
                    "request": "summarize",
                    "documents": [str(pdf)],
                    "mode": "summarize",
                    "strategy": "map_reduce",
                },
                config,
                context=run_ctx,
            )
            wall = time.perf_counter() - started
            maps = model.log.count("map")
            levels = _collapse_rounds(graph, config)
            rounds = math.ceil(maps / limit) + sum(math.ceil(g / limit) for g in levels) + 1
            critical = rounds * args.latency
            sequential = len(model.log) * args.latency
            label = str(concurrency) if concurrency else "unbounded"
            print(
                f"{label:>11} {len(model.log):>5} {wall:>7.2f} {critical:>10.2f} "
                f"{wall / critical:>9.2f} {sequential / wall:>7.1f}x"
            )
            saver.conn.close()
            db_bytes = sum(f.stat().st_size for f in tmp.glob(f"{db.name}*"))
        used = out["usage"]["total_tokens"]
        estimate = plan["estimated_tokens"]
        print(f"collapse groups per level: {levels}")
        print(
            f"checkpoint DB {db_bytes} bytes / source text {text_bytes} bytes = "
            f"{db_bytes / text_bytes:.2f}x (target <= 4x)"
        )
        print(
            f"dry-run estimate {estimate} tokens vs {used} used: "
            f"{(estimate - used) / used:+.1%} (target within 15%); "
            f"planned calls {plan['planned_calls']} vs {len(model.log)} made"
        )


def _size_for(pages, chunks: int) -> int:
    """The chunk size (no overlap) that cuts the document into about `chunks` chunks."""
    from adaptsum.ingest.chunking import chunk_pages

    low, high = 20, 4000
    while low < high:
        mid = (low + high) // 2
        if len(chunk_pages(pages, mid, 0)) > chunks:
            low = mid + 1
        else:
            high = mid
    return low


def _collapse_rounds(graph, config) -> list[int]:
    """Partials written per collapse level (each level's groups run in parallel)."""
    partials = graph.get_state(config).values["partials"]
    levels: dict[int, int] = {}
    for key in partials:
        level = int(key.split(":")[0])
        if level:
            levels[level] = levels.get(level, 0) + 1
    return [levels[level] for level in sorted(levels)]


if __name__ == "__main__":
    main()
