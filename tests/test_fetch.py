"""Downloads and uploads (ingest/fetch.py) against a local http.server: what is refused and why."""

from __future__ import annotations

import base64
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from adaptsum.errors import DocumentError
from adaptsum.ingest.fetch import fetch_pdf, save_upload

from helpers import EN_SAMPLE


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {}

    def do_GET(self) -> None:  # noqa: N802
        status, headers, body = self.routes.get(self.path, (404, {}, b"missing"))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    pdf = EN_SAMPLE.read_bytes()
    _Handler.routes = {
        "/x.pdf": (200, {"Content-Type": "application/pdf"}, pdf),
        "/hop": (302, {"Location": "/x.pdf"}, b""),
        "/loop": (302, {"Location": "/loop"}, b""),
        "/to-file": (302, {"Location": "file:///etc/passwd"}, b""),
        "/html": (200, {"Content-Type": "text/html"}, b"<html></html>"),
        "/fake.pdf": (200, {"Content-Type": "application/pdf"}, b"hello, not a pdf"),
    }
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_loopback_is_refused_unless_the_operator_allows_it(
    site: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ADAPTSUM_ALLOW_PRIVATE_URLS", raising=False)
    with pytest.raises(DocumentError, match="127.0.0.1, a loopback, private or link-local"):
        fetch_pdf(f"{site}/x.pdf", tmp_path)
    assert not list(tmp_path.iterdir())
    monkeypatch.setenv("ADAPTSUM_ALLOW_PRIVATE_URLS", "1")
    path = fetch_pdf(f"{site}/hop", tmp_path)  # through one redirect
    assert path.read_bytes() == EN_SAMPLE.read_bytes() and path.name.endswith("x.pdf")


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ("/loop", "more than 5 redirects"),
        ("/to-file", "only http(s) URLs can be fetched"),
        ("/html", "not a PDF (served as text/html)"),
        ("/fake.pdf", "not a PDF (no %PDF- header)"),
        ("/none", "HTTP 404"),
    ],
)
def test_bad_downloads_are_refused_with_one_line(
    site: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, route: str, message: str
) -> None:
    monkeypatch.setenv("ADAPTSUM_ALLOW_PRIVATE_URLS", "1")
    with pytest.raises(DocumentError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fetch_pdf(f"{site}{route}", tmp_path)


def test_size_cap_applies_to_downloads_and_uploads(
    site: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADAPTSUM_ALLOW_PRIVATE_URLS", "1")
    monkeypatch.setenv("ADAPTSUM_MAX_DOWNLOAD_MB", "0.001")  # about 1 KB
    with pytest.raises(DocumentError, match="larger than the server's limit"):
        fetch_pdf(f"{site}/x.pdf", tmp_path)
    upload = {"name": "x.pdf", "data": base64.b64encode(EN_SAMPLE.read_bytes()).decode()}
    with pytest.raises(DocumentError, match="larger than the server's limit"):
        save_upload(upload, tmp_path)


def test_an_upload_cannot_name_a_path_outside_its_folder(tmp_path: Path) -> None:
    upload = {"name": "../../etc/evil", "data": base64.b64encode(EN_SAMPLE.read_bytes()).decode()}
    path = save_upload(upload, tmp_path / "uploads")
    assert path.parent == tmp_path / "uploads" and path.name.endswith("evil.pdf")


def test_an_uploads_citations_and_errors_name_the_users_file_not_the_servers_disk(
    tmp_path: Path,
) -> None:
    """Citations carried the stored copy's path (the operator's data directory, the user's
    hash folder); a damaged upload's error named it too and the copy stayed on disk."""
    from adaptsum import Context, build_graph

    data_dir = tmp_path / "data"
    graph = build_graph()
    raw = EN_SAMPLE.read_bytes()
    upload = {"name": "webb.pdf", "data": base64.b64encode(raw).decode()}
    out = graph.invoke(
        {"request": "When did Webb launch?", "documents": [upload]},
        context=Context(data_dir=str(data_dir)),
    )
    assert out["citations"] and {c["source"] for c in out["citations"]} == {"webb.pdf"}
    damaged = {"name": "cut.pdf", "data": base64.b64encode(raw[: len(raw) // 3]).decode()}
    with pytest.raises(DocumentError) as failed:
        graph.invoke(
            {"request": "When did Webb launch?", "documents": [damaged]},
            context=Context(data_dir=str(data_dir)),
        )
    assert str(failed.value).startswith("upload cut.pdf: "), failed.value
    assert str(data_dir) not in str(failed.value)
    assert [p.name for p in data_dir.rglob("*cut.pdf")] == []
