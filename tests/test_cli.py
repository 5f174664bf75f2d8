"""The `adaptsum` command: results with pages, and one clear line for every bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adaptsum.cli import main

from helpers import EN_SAMPLE, EXAMPLES, KO_SAMPLE, error_lines

EXPECTED_PROBLEMS = {
    "missing": "no such file",
    "empty": "empty file (0 bytes)",
    "not_pdf": "not a PDF",
    "truncated": "damaged or truncated PDF",
    "corrupt": "corrupt PDF",
    "encrypted": "encrypted PDF",
    "image_only": "no text layer",
}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _snapshot(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> tuple[list, list]:
    code, out, _ = run(capsys, "docs", "--json", "--data-dir", str(data_dir))
    assert code == 0
    code, hits, _ = run(
        capsys, "search", "한글 창제", "--json", "-k", "3", "--data-dir", str(data_dir)
    )
    assert code == 0
    return json.loads(out), json.loads(hits)


def test_index_docs_search(capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
    code, out, err = run(capsys, "index", str(EXAMPLES), "--data-dir", str(data_dir))
    assert code == 0, err
    assert out.count("indexed ") == 2
    assert "done: 4 pages" in out and "(" in out and " s" in out.splitlines()[-1]
    code, out, _ = run(capsys, "docs", "--data-dir", str(data_dir))
    assert "한글의 역사와 원리" in out and "The James Webb Space Telescope" in out
    code, out, _ = run(
        capsys, "search", "한글날은 언제인가?", "-k", "2", "--data-dir", str(data_dir)
    )
    assert code == 0
    first = out.splitlines()[0]
    assert first.startswith("1. [p") and "한글의 역사와 원리" in first and "score" in first
    code, out, _ = run(
        capsys,
        "search",
        "mirror",
        "--doc",
        "webb-telescope-en.pdf",
        "--pages",
        "1",
        "--json",
        "--data-dir",
        str(data_dir),
    )
    hits = json.loads(out)
    assert hits and {h["title"] for h in hits} == {"The James Webb Space Telescope"}
    assert all(h["page_start"] == 1 for h in hits)


def test_remove_takes_a_document_out_whole(
    capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    """`remove` leaves no chunk, vector, BM25 entry or glossary of the document behind,
    keeps the others, refuses an unknown name without touching anything, and the file
    can be indexed again."""
    from adaptsum.state.context import Context
    from adaptsum.store.index import DocumentIndex

    code, _, err = run(capsys, "index", str(EXAMPLES), "--data-dir", str(data_dir))
    assert code == 0, err
    index = DocumentIndex(Context(data_dir=str(data_dir)))
    korean, webb = sorted(index.documents(), key=lambda d: d.language != "ko")
    assert list((data_dir / "glossary").rglob("*.npz"))  # Webb's, kept throughout

    code, _, err = run(capsys, "remove", "nowhere.pdf", "--data-dir", str(data_dir))
    assert code == 1 and "no indexed document matches 'nowhere.pdf'" in err
    assert len(err.strip().splitlines()) == 1
    # an unset shell variable, or an id prefix both documents share, removes nothing
    code, _, err = run(capsys, "remove", KO_SAMPLE.name, "", "--data-dir", str(data_dir))
    assert code == 1 and "empty document name" in err and error_lines(err) == 1
    assert len(index.documents()) == 2

    code, _, err = run(
        capsys,
        "ask",
        str(KO_SAMPLE),
        "한글은 누가 만들었나요?",
        "--thread",
        "before",
        "--data-dir",
        str(data_dir),
    )
    assert code == 0, err
    code, out, err = run(capsys, "remove", KO_SAMPLE.name, "--data-dir", str(data_dir))
    assert code == 0, err
    assert out.startswith(f"removed {korean.doc_id}")
    index = DocumentIndex(Context(data_dir=str(data_dir)))
    assert [d.doc_id for d in index.documents()] == [webb.doc_id]
    assert index.catalog.chunk_count(index.collection, korean.revision) == 0
    assert not index.vectorstore.get(where={"revision": korean.revision}, include=[])["ids"]
    assert index.vectorstore.get(where={"revision": webb.revision}, include=[])["ids"]
    assert index.catalog.pending_holder(index.collection, korean.revision) is None
    hits = index.search("한글은 누가 만들었나?", k=5)
    assert hits and {h.document.doc_id for h in hits} == {webb.doc_id}
    assert all(
        not cid.startswith(korean.revision)
        for cid, _ in index.lexical.search("한글 세종", 10, {korean.revision, webb.revision})
    )
    assert list((data_dir / "glossary").rglob(f"{webb.revision}*.npz"))

    code, _, err = run(capsys, "remove", korean.doc_id, "--data-dir", str(data_dir))
    assert code == 1 and "no indexed document matches" in err
    # a thread that asked about the removed document says what became of it
    code, _, err = run(
        capsys,
        "ask",
        "세종대왕은 무엇을 했나요?",
        "--thread",
        "before",
        "--data-dir",
        str(data_dir),
    )
    assert code == 1 and f"document {korean.doc_id}, which this thread used" in err
    code, out, err = run(capsys, "index", str(KO_SAMPLE), "--data-dir", str(data_dir))
    assert code == 0 and "indexed " in out, err
    assert len(DocumentIndex(Context(data_dir=str(data_dir))).documents()) == 2


@pytest.mark.parametrize("kind", list(EXPECTED_PROBLEMS))
def test_bad_input_one_line_and_index_intact(
    kind: str,
    bad_pdfs: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    data_dir: Path,
) -> None:
    assert run(capsys, "index", str(KO_SAMPLE), "--data-dir", str(data_dir))[0] == 0
    before = _snapshot(data_dir, capsys)

    code, out, err = run(capsys, "index", str(bad_pdfs[kind]), "--data-dir", str(data_dir))
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err  # one line, no traceback
    assert lines[0].startswith("adaptsum: error: ")
    assert str(bad_pdfs[kind].resolve()) in lines[0] or str(bad_pdfs[kind]) in lines[0]
    assert EXPECTED_PROBLEMS[kind] in lines[0]
    assert _snapshot(data_dir, capsys) == before


def test_failing_file_does_not_stop_the_batch(
    bad_pdfs: dict[str, Path], capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    code, out, err = run(
        capsys,
        "index",
        str(bad_pdfs["encrypted"]),
        str(EN_SAMPLE),
        str(bad_pdfs["empty"]),
        "--data-dir",
        str(data_dir),
    )
    assert code == 1
    assert len(err.strip().splitlines()) == 2
    assert "indexed " in out and "webb-telescope-en.pdf" in out
    assert "2 file(s) failed" in out


def test_bad_flags_are_one_line(capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
    code, _, err = run(
        capsys,
        "index",
        str(KO_SAMPLE),
        "--chunk-size",
        "100",
        "--chunk-overlap",
        "100",
        "--data-dir",
        str(data_dir),
    )
    assert code == 1 and err.count("\n") == 1 and "chunk_overlap" in err
    with pytest.raises(SystemExit) as exited:  # refused by argparse, before any work
        run(capsys, "search", "x", "--pages", "5-2", "--data-dir", str(data_dir))
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.count("\n") == 1
    assert "adaptsum search: error: argument --pages: expected 1 <= N <= M, got '5-2'" in err
    code, _, err = run(capsys, "search", "x", "--data-dir", str(data_dir))
    assert code == 1 and "nothing is indexed yet" in err
    with pytest.raises(SystemExit) as exited:  # an empty query matched every chunk, exit 0
        run(capsys, "search", " ", "--data-dir", str(data_dir))
    assert exited.value.code == 2 and "argument query: is empty" in capsys.readouterr().err


def test_env_var_sets_the_data_dir(
    capsys: pytest.CaptureFixture[str], data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADAPTSUM_DATA_DIR", str(data_dir))
    assert run(capsys, "index", str(KO_SAMPLE))[0] == 0
    assert (data_dir / "catalog.sqlite").exists() and (data_dir / "chroma").is_dir()


def test_console_script_installed(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("adaptsum")
    assert exe.exists(), "pip install should put the adaptsum script beside python"
    env = {**os.environ, "ADAPTSUM_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [str(exe), "index", str(EN_SAMPLE), "--no-progress"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "done: 2 pages" in done.stdout


def test_ask_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ADAPTSUM_CHAT_API_KEY", raising=False)
    code, _, err = run(capsys, "ask", "missing.pdf", "질문", "--data-dir", str(data_dir))
    assert code == 1 and error_lines(err) == 1 and "missing.pdf: no such file" in err
    code, _, err = run(
        capsys, "ask", str(KO_SAMPLE), "한글날은?", "--engine", "llm", "--data-dir", str(data_dir)
    )
    assert code == 1 and error_lines(err) == 1 and "OPENAI_API_KEY" in err
    code, _, err = run(capsys, "ask", str(KO_SAMPLE), "  ", "--data-dir", str(data_dir))
    assert code == 1 and "request is empty" in err


def test_remove_refuses_a_name_that_matches_several_documents(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Two folders' report.pdf: `remove report.pdf` names both, so it removes neither."""
    data = str(tmp_path / "data")
    for folder, sample in (("a", KO_SAMPLE), ("b", EN_SAMPLE)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "report.pdf").write_bytes(sample.read_bytes())
        assert (
            run(capsys, "index", str(tmp_path / folder / "report.pdf"), "--data-dir", data)[0] == 0
        )
    code, _, err = run(capsys, "remove", "report.pdf", "--data-dir", data)
    assert code == 1 and "'report.pdf' matches 2 documents" in err and error_lines(err) == 1
    code, out, _ = run(capsys, "docs", "--json", "--data-dir", data)
    assert len(json.loads(out)) == 2
    code, out, _ = run(capsys, "remove", str(tmp_path / "a" / "report.pdf"), "--data-dir", data)
    assert code == 0 and out.count("removed ") == 1


def _stderr_on_a_terminal(args: list[str], data_dir: Path) -> str:
    """What the console script writes to a terminal's stderr, the way a user sees it."""
    import fcntl
    import pty
    import struct
    import termios
    import threading

    exe = Path(sys.executable).with_name("adaptsum")
    env = {**os.environ, "ADAPTSUM_DATA_DIR": str(data_dir), "ADAPTSUM_WORKER": "0"}
    controller, terminal = pty.openpty()
    # a terminal of 80 columns: tqdm draws nothing on one of width 0
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    read: list[bytes] = []

    def drain() -> None:  # a terminal's buffer is small: read while the command writes
        while True:
            try:
                data = os.read(controller, 4096)
            except OSError:  # the command closed its end
                return
            if not data:
                return
            read.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        done = subprocess.run(
            [str(exe), *args], stderr=terminal, stdout=subprocess.DEVNULL, env=env, timeout=180
        )
    finally:
        os.close(terminal)
    reader.join(timeout=10)
    os.close(controller)
    assert done.returncode == 0, b"".join(read).decode(errors="replace")
    return b"".join(read).decode(errors="replace")


def test_no_progress_silences_the_bars_of_ask_and_summarize(tmp_path: Path) -> None:
    """On a terminal, ask and summarize draw bars while they index; --no-progress leaves
    only their one-line messages (for screen readers and terminal recordings)."""
    shown = _stderr_on_a_terminal(
        ["ask", str(EN_SAMPLE), "When did Webb launch?"], tmp_path / "bars"
    )
    assert "embeddings" in shown and "%" in shown
    for command in (
        ["ask", str(EN_SAMPLE), "When did Webb launch?", "--no-progress"],
        ["summarize", str(KO_SAMPLE), "--no-progress"],
    ):
        quiet = _stderr_on_a_terminal(command, tmp_path / command[0])
        assert "embeddings" not in quiet and "%" not in quiet, quiet
        assert quiet.startswith("thread "), quiet
