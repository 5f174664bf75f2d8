"""A planted API key reaches the model server and nowhere else the user can see or keep."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakes import Script
from openai_stub import openai_stub

from adaptsum import Context, build_graph
from adaptsum.checkpoint import sqlite_saver

from helpers import KO_SAMPLE

KEY = "sk-adaptsum-PLANTED-dummy-key-7f3a9c"


def _files_holding(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_key_stays_out_of_checkpoints_logs_json_and_streams(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    with openai_stub(Script()) as (base_url, _, requests):
        env = {**os.environ, "OPENAI_API_KEY": KEY}
        llm = ["--engine", "llm", "--chat-model", "openai:qwen3-8b", "--chat-base-url", base_url]
        exe = str(Path(sys.executable).with_name("adaptsum"))
        outputs = []
        for args in (
            ["ask", str(KO_SAMPLE), "한글은 누가 만들었나요?", "--json", "-v"],
            ["summarize", str(KO_SAMPLE), "--strategy", "map_reduce", "--json", "-v"],
        ):
            done = subprocess.run(
                [exe, *args, *llm, "--data-dir", str(data), "--chunk-size", "60"],
                capture_output=True,
                text=True,
                env=env,
                timeout=300,
            )
            assert done.returncode == 0, done.stderr
            outputs.append(done.stdout + done.stderr)

        # The Python API's stream, every mode.
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        ctx = Context(
            data_dir=str(data),
            engine="llm",
            chat_model="openai:qwen3-8b",
            chat_base_url=base_url,
            chunk_size=60,
        )
        graph = build_graph(sqlite_saver(ctx))
        chunks = list(
            graph.stream(
                {"request": "훈민정음은 언제 반포되었나요?", "documents": [str(KO_SAMPLE)]},
                {"configurable": {"thread_id": "secrets"}},
                context=ctx,
                stream_mode=["values", "updates", "custom", "messages", "debug", "tasks"],
            )
        )
        outputs.append(repr(chunks))
        outputs.append(repr(graph.get_state({"configurable": {"thread_id": "secrets"}})))
    assert requests  # the model server was really called...
    assert all(KEY not in out for out in outputs)  # ...yet no output shows the key
    assert _files_holding(data, KEY.encode()) == []  # nor does any checkpoint or store
    assert _files_holding(data, KEY[-12:].encode()) == []
