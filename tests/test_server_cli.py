"""The CLI side of issue 9: documents by URL, and pauses for approval answered by flag."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from adaptsum.cli import main

from helpers import KO_SAMPLE, error_lines


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def site() -> Iterator[str]:
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(  # noqa: E731
        *a, directory=str(KO_SAMPLE.parent), **kw
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_ask_about_a_pdf_by_url(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"{site}/{KO_SAMPLE.name}"
    monkeypatch.delenv("ADAPTSUM_ALLOW_PRIVATE_URLS", raising=False)
    code, _, err = run(capsys, "ask", url, "한글은 누가 만들었나요?", "--data-dir", str(tmp_path))
    assert code == 1 and "loopback, private or link-local" in err and error_lines(err) == 1
    monkeypatch.setenv("ADAPTSUM_ALLOW_PRIVATE_URLS", "1")
    code, out, _ = run(capsys, "ask", url, "한글은 누가 만들었나요?", "--data-dir", str(tmp_path))
    assert code == 0 and "세종" in out and "[p. 1]" in out
    code, out, _ = run(capsys, "index", url, "--data-dir", str(tmp_path))
    assert code == 0 and out.startswith("unchanged")  # the same bytes, already indexed


def test_a_paused_summary_is_answered_by_flag(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    base = ["summarize", str(KO_SAMPLE), "--data-dir", str(tmp_path), "--approve-plan"]
    code, _, err = run(capsys, *base, "--thread", "paused")
    assert code == 1 and "paused: summarize with this plan?" in err and error_lines(err) == 1
    code, out, _ = run(capsys, *base, "--thread", "paused", "--approve", "no")
    assert code == 0 and "stopped before summarizing" in out
    code, out, _ = run(capsys, *base, "--thread", "approved", "--approve", "yes")
    assert code == 0 and "[p. 1]" in out and "stopped" not in out
