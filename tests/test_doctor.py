"""A damaged data directory: one line naming the file and the fix; `doctor --repair` mends it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import KO_SAMPLE

QUESTION = "한글은 누가 만들었나요?"


def adaptsum(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("adaptsum")
    return subprocess.run(
        [str(exe), *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The run failed with exactly one `adaptsum: error:` line and no traceback."""
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("adaptsum: error:")]
    assert len(errors) == 1, done.stderr
    return errors[0]


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("healthy")
    done = adaptsum(data, "index", str(KO_SAMPLE), "--no-progress")
    assert done.returncode == 0, done.stderr
    return data


def copy_of(indexed: Path, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(indexed, data)
    return data


def test_deleted_vectors_are_reported_and_rebuilt(indexed: Path, tmp_path: Path) -> None:
    data = copy_of(indexed, tmp_path)
    shutil.rmtree(data / "chroma")
    line = one_error_line(adaptsum(data, "ask", QUESTION))
    # Not "not enough information": the user is told the index is gone, and how to mend it.
    assert f"{data / 'chroma'}: the vector store holds 0 of the" in line
    assert "run `adaptsum doctor --repair`" in line
    report = adaptsum(data, "doctor")
    assert report.returncode == 1
    assert "has no vectors in the vector store; run `adaptsum doctor --repair`" in report.stdout
    assert "schema version" in report.stdout
    repaired = adaptsum(data, "doctor", "--repair")
    assert repaired.returncode == 0, repaired.stderr
    assert "vectors from the catalogue's chunk text" in repaired.stdout
    assert adaptsum(data, "doctor").stdout.rstrip().endswith("healthy")
    answer = adaptsum(data, "ask", QUESTION)
    assert answer.returncode == 0, answer.stderr
    assert "[p. " in answer.stdout and "route: answer" in answer.stdout


def test_catalogue_not_a_database(indexed: Path, tmp_path: Path) -> None:
    data = copy_of(indexed, tmp_path)
    catalogue = data / "catalog.sqlite"
    catalogue.write_bytes(b"this is not a database" * 100)
    line = one_error_line(adaptsum(data, "docs"))
    assert line == (
        f"adaptsum: error: {catalogue}: is not a SQLite database (damaged or overwritten); "
        "run `adaptsum doctor --repair`"
    )
    repaired = adaptsum(data, "doctor", "--repair")
    assert repaired.returncode == 0, repaired.stderr
    aside = list(data.glob("catalog.sqlite.damaged-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not")  # kept
    assert adaptsum(data, "docs").returncode == 0


def test_malformed_pages_and_damaged_checkpoints(indexed: Path, tmp_path: Path) -> None:
    data = copy_of(indexed, tmp_path)
    catalogue = data / "catalog.sqlite"
    raw = bytearray(catalogue.read_bytes())
    assert len(raw) > 3 * 4096
    raw[4096 : len(raw) - 100] = b"\xff" * (len(raw) - 4196)  # every page but the header
    catalogue.write_bytes(bytes(raw))
    line = one_error_line(adaptsum(data, "ask", QUESTION))
    assert f"{catalogue}: is damaged" in line and "adaptsum doctor --repair" in line

    data = copy_of(indexed, tmp_path / "second")
    checkpoints = data / "checkpoints.sqlite"
    checkpoints.write_bytes(b"\x00" * 8192)
    line = one_error_line(adaptsum(data, "ask", QUESTION))
    assert line.startswith(f"adaptsum: error: {checkpoints}: is not a SQLite database")
    assert adaptsum(data, "doctor", "--repair").returncode == 0
    assert list(data.glob("checkpoints.sqlite.damaged-*"))
    answer = adaptsum(data, "ask", QUESTION)
    assert answer.returncode == 0, answer.stderr


def test_index_after_vectors_are_gone_restores_not_unchanged(indexed: Path, tmp_path: Path) -> None:
    data = copy_of(indexed, tmp_path)
    shutil.rmtree(data / "chroma")
    done = adaptsum(data, "index", str(KO_SAMPLE), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("restored "), done.stdout  # never "unchanged"
    again = adaptsum(data, "index", str(KO_SAMPLE), "--no-progress")
    assert again.stdout.startswith("unchanged "), again.stdout
    assert adaptsum(data, "doctor").stdout.rstrip().endswith("healthy")


def _drop_chunk_text(data: Path) -> None:
    """Lose most of the catalogue's chunk text, as a damaged and salvaged catalogue would."""
    import sqlite3

    with sqlite3.connect(data / "catalog.sqlite") as db:
        db.execute("DELETE FROM chunks WHERE chunk_index > 0")


def test_repair_reindexes_from_the_source_pdf(indexed: Path, tmp_path: Path) -> None:
    data = copy_of(indexed, tmp_path)
    shutil.rmtree(data / "chroma")
    _drop_chunk_text(data)
    report = adaptsum(data, "doctor")
    assert report.returncode == 1
    assert "has no vectors in the vector store" in report.stdout
    assert "chunks' text in the catalogue; run `adaptsum doctor --repair`" in report.stdout
    repaired = adaptsum(data, "doctor", "--repair")
    assert repaired.returncode == 0, repaired.stderr
    assert f"restored from its source PDF {KO_SAMPLE.name}" in repaired.stdout
    assert adaptsum(data, "doctor").stdout.rstrip().endswith("healthy")
    answer = adaptsum(data, "ask", QUESTION)
    assert answer.returncode == 0, answer.stderr
    assert "[p. " in answer.stdout and "route: answer" in answer.stdout


def test_repair_without_the_source_pdf_says_so_and_deletes_nothing(tmp_path: Path) -> None:
    source = tmp_path / "gone.pdf"
    shutil.copy(KO_SAMPLE, source)
    data = tmp_path / "data"
    assert adaptsum(data, "index", str(source), "--no-progress").returncode == 0
    source.unlink()
    _drop_chunk_text(data)
    repaired = adaptsum(data, "doctor", "--repair")
    assert repaired.returncode == 0, repaired.stderr
    assert f"chunks are in the catalogue and its source {source} is gone; index the PDF again" in (
        repaired.stdout
    )
    docs = adaptsum(data, "docs")
    assert "gone.pdf" in docs.stdout  # the document's record is kept
