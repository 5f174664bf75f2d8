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
