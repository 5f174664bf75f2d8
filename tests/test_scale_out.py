"""Scale-out against real servers: checkpoints and catalogue in PostgreSQL, vectors in a
Chroma server, and two replicas (separate data directories) sharing them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from fakes import Script

from adaptsum import Context, async_checkpointer, build_graph, checkpointer
from adaptsum.store.index import DocumentIndex, PageRange

from helpers import EN_SAMPLE, KO_SAMPLE, env_without_settings

pytestmark = pytest.mark.services

EXE = str(Path(sys.executable).with_name("adaptsum"))


@pytest.fixture
def servers(postgres_url: str, chroma_url: str) -> dict[str, str]:
    """The two settings that move a deployment onto the servers."""
    return {"database_url": postgres_url, "chroma_url": chroma_url}


def _env(servers: dict[str, str]) -> dict[str, str]:
    env = env_without_settings()
    env.pop("OPENAI_API_KEY", None)
    env["ADAPTSUM_DATABASE_URL"] = servers["database_url"]
    env["ADAPTSUM_CHROMA_URL"] = servers["chroma_url"]
    return env


def _first_page_of(source: Path, target: Path) -> Path:
    """Overwrite `target` with the first page of `source`: another file, another revision."""
    import pymupdf

    with pymupdf.open(source) as src, pymupdf.open() as out:
        out.insert_pdf(src, from_page=0, to_page=0)
        out.save(target)
    return target


def _records(index: DocumentIndex) -> list[dict]:
    return index.vectorstore.get(include=["metadatas"])["metadatas"]


def test_chroma_server_behaves_like_the_embedded_store(
    servers: dict[str, str], tmp_path: Path, sample_copy: Path
) -> None:
    local = DocumentIndex(Context(data_dir=str(tmp_path / "local")))
    index = DocumentIndex(Context(data_dir=str(tmp_path / "replica"), **servers))
    assert index.collection == local.collection  # named by embedding model and dimension
    first = index.index_file(KO_SAMPLE)
    second = index.index_file(EN_SAMPLE)
    assert (first.status, second.status) == ("indexed", "indexed")
    assert index.index_file(KO_SAMPLE).status == "unchanged"  # idempotent
    assert len(_records(index)) == first.vectors + second.vectors
    # The vectors are on the server: the data directory has no embedded store.
    assert not (tmp_path / "replica" / "chroma").exists()
    assert not (tmp_path / "replica" / "catalog.sqlite").exists()
    hits = index.search("mirror segments", k=3, docs=[second.doc_id])
    assert hits and all(h.document.doc_id == second.doc_id for h in hits)
    hits = index.search("한글", k=5, docs=[first.doc_id], pages=PageRange(2, 2))
    assert hits and all(h.chunk.page_start <= 2 <= h.chunk.page_end for h in hits)
    # Same results as the embedded store for the same question.
    local.index_file(KO_SAMPLE)
    question = "한글은 누가 만들었나?"
    assert [h.chunk.chunk_id for h in index.search(question, k=3, docs=[first.doc_id])] == [
        h.chunk.chunk_id for h in local.search(question, k=3)
    ]
    # A changed file at the same path replaces its old revision, vectors included.
    assert index.index_file(_first_page_of(KO_SAMPLE, sample_copy)).status == "indexed"
    report = index.index_file(_first_page_of(EN_SAMPLE, sample_copy))
    assert report.status == "replaced"
    revisions = {d.revision for d in index.documents()}
    assert {m["revision"] for m in _records(index)} == revisions


def test_two_replicas_share_one_index_at_once(servers: dict[str, str], tmp_path: Path) -> None:
    env = _env(servers)
    one, two = tmp_path / "one", tmp_path / "two"
    done = subprocess.run(
        [EXE, "index", str(KO_SAMPLE), "--no-progress", "--data-dir", str(one)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    # The other replica never indexed anything, yet answers with citations at once.
    asked = subprocess.run(
        [EXE, "ask", "한글은 언제 만들어졌나?", "--json", "--data-dir", str(two)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert asked.returncode == 0, asked.stderr
    result = json.loads(asked.stdout)
    assert result["citations"], result
    assert "1443" in result["answer"] or "1446" in result["answer"], result["answer"]
    listed = subprocess.run(
        [EXE, "docs", "--json", "--data-dir", str(two)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert [d["source"] for d in json.loads(listed.stdout)] == [str(KO_SAMPLE.resolve())]
    assert not (two / "chroma").exists() and not (two / "checkpoints.sqlite").exists()


def test_summary_killed_on_one_replica_resumes_on_the_other(
    servers: dict[str, str], tmp_path: Path
) -> None:
    from openai_stub import openai_stub

    env = _env(servers)

    def command(data_dir: Path, base_url: str) -> list[str]:
        return [
            EXE,
            "summarize",
            str(KO_SAMPLE),
            "--engine",
            "llm",
            "--strategy",
            "map_reduce",
            "--chat-model",
            "openai:qwen3-8b",
            "--chat-base-url",
            base_url,
            "--chunk-size",
            "60",
            "--chunk-overlap",
            "10",
            "--concurrency",
            "2",
            "--thread",
            "killed",
            "--data-dir",
            str(data_dir),
            "--json",
        ]

    with openai_stub(Script(), delay=0.15) as (base_url, _, requests):
        proc = subprocess.Popen(
            command(tmp_path / "one", base_url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        deadline = time.monotonic() + 120
        while sum("You summarize one passage" in str(r) for r in requests) < 6:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done = subprocess.run(
            command(tmp_path / "two", base_url),
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
    assert done.returncode == 0, done.stderr
    # The thread was found in PostgreSQL: neither replica has a local checkpoint file.
    assert "resuming thread killed at map_chunk" in done.stderr
    assert not any(tmp_path.glob("*/checkpoints.sqlite"))
    maps = Counter(
        r["messages"][-1]["content"]
        for r in requests
        if "You summarize one passage" in r["messages"][0]["content"]
    )
    # Only work in flight at the kill repeats: up to `--concurrency` (2) calls awaiting the
    # server, plus up to as many finished tasks whose writes were still on their way.
    assert len([p for p, n in maps.items() if n > 1]) <= 2 * 2
    result = json.loads(done.stdout)
    assert result["route"] == "summarize" and result["citations"]
    assert len(maps) == result["summary_plan"]["chunks"]


def test_threads_continue_across_processes_and_async(
    servers: dict[str, str], tmp_path: Path
) -> None:
    import asyncio

    from langgraph.checkpoint.postgres import PostgresSaver
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    one = Context(data_dir=str(tmp_path / "one"), **servers)
    DocumentIndex(one).index_file(KO_SAMPLE)
    saver = checkpointer(one)
    assert isinstance(saver, PostgresSaver)
    config = {"configurable": {"thread_id": "shared"}}
    build_graph(checkpointer=saver).invoke(
        {"request": "한글은 누가 만들었나요?", "documents": [str(KO_SAMPLE)]}, config, context=one
    )
    two = Context(data_dir=str(tmp_path / "two"), **servers)

    async def follow_up() -> tuple[dict, dict]:
        async with async_checkpointer(two) as aio:
            assert isinstance(aio, AsyncPostgresSaver)
            graph = build_graph(checkpointer=aio)
            out = await graph.ainvoke(
                {"request": "그 사람은 몇 번째 임금이었나요?", "documents": [str(KO_SAMPLE)]},
                config,
                context=two,
            )
            return out, (await graph.aget_state(config)).values

    # Another replica (another data directory, the async API) continues the thread.
    out, state = asyncio.run(follow_up())
    assert [m.type for m in state["messages"]] == ["human", "ai", "human", "ai"]
    assert state["turn"] == 2
    assert any("제4대 임금" in c["evidence"] for c in out["citations"])


def test_bm25_is_derived_and_rebuilt_per_replica(
    servers: dict[str, str], tmp_path: Path, sample_copy: Path
) -> None:
    writer = DocumentIndex(Context(data_dir=str(tmp_path / "one"), **servers))
    reader = DocumentIndex(Context(data_dir=str(tmp_path / "two"), retrieval="hybrid", **servers))
    writer.index_file(_first_page_of(KO_SAMPLE, sample_copy))
    hits = reader.search("한글 창제", k=3)
    assert hits and (tmp_path / "two" / "bm25").is_dir()
    old = {h.chunk.chunk_id.rpartition(":")[0] for h in hits}
    # The writer replaces the document; the reader's BM25 index follows at once.
    assert writer.index_file(_first_page_of(EN_SAMPLE, sample_copy)).status == "replaced"
    hits = reader.search("James Webb telescope mirror", k=3)
    assert hits and not old & {h.chunk.chunk_id.rpartition(":")[0] for h in hits}
    assert "Webb" in hits[0].chunk.text
    # A damaged local cache is rebuilt from the catalogue, never trusted.
    for path in (tmp_path / "two" / "bm25").rglob("*"):
        if path.is_file():
            path.write_bytes(b"garbage")
    fresh = DocumentIndex(Context(data_dir=str(tmp_path / "two"), retrieval="hybrid", **servers))
    assert fresh.search("James Webb telescope mirror", k=3)[0].chunk.text == hits[0].chunk.text
