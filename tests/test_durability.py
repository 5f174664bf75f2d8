"""Finished map tasks are durable as they finish: a kill -9 resume redoes only those in flight."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pymupdf
import pytest

CONCURRENCY = 2
_WORDS = (
    "river mountain signal engine harvest lantern copper meadow archive orbit canyon velvet "
    "thunder pepper glacier compass harbor marble violet cipher falcon ember saddle quartz "
    "tunnel willow beacon ledger prism anchor"
).split()


def make_pdf(path: Path, pages: int, seed: int = 7) -> Path:
    """A PDF of distinct sentences on every page (many small chunks at chunk size 60)."""
    rnd = random.Random(seed)
    doc = pymupdf.open()
    for p in range(pages):
        sentences = [
            " ".join(rnd.choice(_WORDS) for _ in range(rnd.randint(8, 14))).capitalize()
            + f" near marker {p}-{s}."
            for s in range(14)
        ]
        doc.new_page().insert_textbox(
            pymupdf.Rect(50, 50, 550, 800), " ".join(sentences), fontsize=10
        )
    doc.save(path)
    return path


def _mapped(line: str) -> int | None:
    match = re.search(r"mapped chunk (\d+) of", line)
    return int(match.group(1)) if match else None


def test_kill_9_mid_map_repeats_only_tasks_in_flight(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "book.pdf", 12)
    exe = Path(sys.executable).with_name("adaptsum")
    command = [
        str(exe),
        "summarize",
        str(pdf),
        "--strategy",
        "map_reduce",
        "--chunk-size",
        "60",
        "--chunk-overlap",
        "10",
        "--concurrency",
        str(CONCURRENCY),
        "--data-dir",
        str(tmp_path / "data"),
        "--json",
        "-v",
    ]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    thread = None
    done_before: set[int] = set()
    deadline = time.monotonic() + 300
    while len(done_before) < 12:
        line = proc.stderr.readline()
        assert line and time.monotonic() < deadline, "the run ended before the kill"
        if thread is None:  # the thread id comes first, before any work
            thread = re.search(r"^thread (\w+) \(resume with --thread \1\)", line)
            assert thread or _mapped(line) is None, line
        if (order := _mapped(line)) is not None:
            done_before.add(order)
    assert thread
    os.kill(proc.pid, signal.SIGKILL)  # no clean-up: as if the machine went down
    proc.wait()
    resumed = subprocess.run(
        [*command, "--thread", thread.group(1)], capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming thread {thread.group(1)} at map_chunk" in resumed.stderr
    done_after = [o for line in resumed.stderr.splitlines() if (o := _mapped(line))]
    repeated = done_before & set(done_after)
    # Only tasks that finished in the instant before the kill (their write still on the
    # way) can run again: at most the CONCURRENCY in flight, never the finished ones.
    assert len(repeated) <= CONCURRENCY, sorted(repeated)
    chunks = int(re.search(r'"chunks": (\d+)', resumed.stdout).group(1))
    assert done_before | set(done_after) == set(range(1, chunks + 1))
    assert len(done_after) <= chunks - len(done_before) + CONCURRENCY


class _Cut(Exception):
    """Stands for a kill -9 between a step's saved writes and the checkpoint after it."""


def test_a_thread_cut_between_a_steps_writes_and_its_checkpoint_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The instant a kill -9 rarely hits, made certain: every task of a step has its
    writes saved and the checkpoint after the step never is. LangGraph then leaves the
    finished task out of `next`; `ask --thread` must continue the turn from its writes,
    not start it afresh."""
    from adaptsum import Context, build_graph
    from adaptsum.checkpoint import sqlite_saver
    from adaptsum.cli import main

    from helpers import EN_SAMPLE

    data = tmp_path / "data"
    ctx = Context(data_dir=str(data))
    saver = sqlite_saver(ctx)
    put = saver.put
    saved: list[int] = []

    def put_until_step_2(config, checkpoint, metadata, new_versions):  # noqa: ANN001, ANN202
        if metadata.get("step") == 2:
            raise _Cut
        saved.append(metadata["step"])
        return put(config, checkpoint, metadata, new_versions)

    saver.put = put_until_step_2
    graph = build_graph(checkpointer=saver)
    config = {"configurable": {"thread_id": "cut"}}
    request = {"request": "When did Webb launch?", "documents": [str(EN_SAMPLE)]}
    with pytest.raises(_Cut):
        graph.invoke(request, config, context=ctx, durability="sync")
    snapshot = graph.get_state(config)
    assert snapshot.next == ()  # the race: nothing looks left to run ...
    (finished,) = snapshot.tasks  # ... but the step's task finished, its writes saved
    assert finished.result is not None and saved == [-1, 0, 1]

    code = main(
        ["ask", str(EN_SAMPLE), "When did Webb launch?", "--thread", "cut", "--data-dir", str(data)]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"resuming thread cut at {finished.name}" in err
    assert "25 December 2021" in out
    messages = build_graph(checkpointer=sqlite_saver(ctx)).get_state(config).values["messages"]
    assert [m.type for m in messages] == ["human", "ai"]  # one turn, not two
