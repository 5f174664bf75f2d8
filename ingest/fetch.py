"""Documents from remote callers: http(s) downloads and uploaded bytes, checked before indexing.

A server must not become a tool for reaching its own network (SSRF), filling its disk
or parsing whatever a URL returns. So a download resolves the host itself and refuses
loopback, private, link-local and other non-public addresses (every address the name
resolves to, again after each redirect), follows a bounded number of redirects that stay
on http(s), stops at a size cap and a timeout, and keeps only a `%PDF` body served
with a PDF or generic binary content type. The limits are the operator's (environment):

- `ADAPTSUM_ALLOW_PRIVATE_URLS=1` allows non-public addresses (tests, intranet servers).
- `ADAPTSUM_MAX_DOWNLOAD_MB` (default 50) caps a download or an upload.
- `ADAPTSUM_DOWNLOAD_TIMEOUT` (default 30 s) bounds connecting and each read.

Known limit: the address is checked before connecting, so a DNS answer that changes
between the check and the connection (rebinding) is not caught; put the server behind
an egress proxy for that.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from adaptsum.errors import ConfigError, DocumentError

MAX_REDIRECTS = 5
PDF_TYPES = {
    "application/pdf",
    "application/x-pdf",
    "application/octet-stream",
    "binary/octet-stream",
}
"""Content types a PDF is served with; anything else (text/html: a login or error page) is not."""


def is_url(ref: object) -> bool:
    """True for an http(s) URL, the only kind of address a document may be fetched from."""
    return isinstance(ref, str) and ref[:8].lower().startswith(("http://", "https://"))


def is_upload(ref: object) -> bool:
    """True for an uploaded document: a mapping with a file name and base64 bytes."""
    return isinstance(ref, Mapping) and ("data" in ref or "name" in ref)


def _setting(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {raw!r}")
    return value


def max_bytes() -> int:
    """The operator's cap on one download or upload."""
    return int(_setting("ADAPTSUM_MAX_DOWNLOAD_MB", 50) * 1024 * 1024)


def private_urls_allowed() -> bool:
    """Whether the operator lets downloads reach loopback/private/link-local addresses."""
    raw = os.environ.get("ADAPTSUM_ALLOW_PRIVATE_URLS", "")
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _safe_name(name: str) -> str:
    """A file name that cannot leave the uploads directory or hide its type."""
    base = os.path.basename(unquote(name).replace("\\", "/")) or "document.pdf"
    base = re.sub(r"[^\w.\- ]+", "_", base).strip(" .") or "document"
    if not base.lower().endswith(".pdf"):
        base += ".pdf"
    return base[-100:]


_STORED = re.compile(r"[0-9a-f]{16}-(.+)")


def shown_name(source: str | Path) -> str:
    """The name to show for an indexed file: an upload's own name, else its path.

    Uploads and downloads are stored as `<hash>-name.pdf` in an `uploads` folder. A
    server's users see citations and progress; its disk layout is not theirs to see.
    """
    path = Path(source)
    if path.parent.name == "uploads" and (match := _STORED.fullmatch(path.name)):
        return match.group(1)
    return str(source)


def shown_file(source: str | Path) -> str:
    """The file name part of `shown_name`, to name a document in a message."""
    return Path(shown_name(source)).name


def _store(data: bytes, name: str, directory: Path) -> Path:
    """Write the bytes under a content-hash name (same bytes, same file) atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(data).hexdigest()[:16]
    target = directory / f"{digest}-{_safe_name(name)}"
    if not target.exists():
        partial = target.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(target)
    return target


def _check_pdf_bytes(label: str, data: bytes) -> None:
    if not data:
        raise DocumentError(label, "empty file (0 bytes)")
    if b"%PDF-" not in data[:1024]:
        raise DocumentError(label, "not a PDF (no %PDF- header)")


def save_upload(upload: Mapping[str, Any], directory: Path) -> Path:
    """Decode an uploaded document (`{"name": "x.pdf", "data": "<base64>"}`) into `directory`.

    Raises:
        DocumentError: no name or data, data that is not base64, too large, or not a PDF.
    """
    name = upload.get("name")
    data = upload.get("data")
    if not isinstance(name, str) or not name.strip():
        raise DocumentError("upload", "needs a 'name' (the file name, e.g. report.pdf)")
    label = f"upload {name}"
    if data == "":
        raise DocumentError(label, "empty file (0 bytes)")
    if not isinstance(data, str):
        raise DocumentError(label, "needs 'data': the file's bytes in base64")
    limit = max_bytes()
    if len(data) > limit * 4 // 3 + 4:
        raise DocumentError(label, f"larger than the server's limit of {limit // 2**20} MB")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise DocumentError(label, "'data' is not valid base64") from None
    _check_pdf_bytes(label, raw)
    return _store(raw, name, directory)


def _check_address(url: str, host: str, port: int) -> None:
    """Refuse a host that resolves to any non-public address, unless the operator allows it."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise DocumentError(url, f"cannot resolve host {host!r}") from None
    if private_urls_allowed():
        return
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not address.is_global or address.is_multicast:
            raise DocumentError(
                url,
                f"refused: {host} resolves to {address}, a loopback, private or link-local "
                "address (the server's operator can allow these with "
                "ADAPTSUM_ALLOW_PRIVATE_URLS=1)",
            )


def _file_name(url: str, headers: Mapping[str, str]) -> str:
    disposition = headers.get("content-disposition", "")
    match = re.search(r'filename\*?=(?:UTF-8\'\')?"?([^";]+)', disposition, re.IGNORECASE)
    if match:
        return match.group(1)
    return os.path.basename(urlsplit(url).path) or "document.pdf"


def fetch_pdf(url: str, directory: Path) -> Path:
    """Download the PDF at an http(s) URL into `directory` and return its path.

    Redirects are followed by hand (at most `MAX_REDIRECTS`) so each hop's scheme and
    addresses are checked before connecting.

    Raises:
        DocumentError: a refused or unreachable address, an HTTP error, a timeout, a body
            over the size cap, or something that is not a PDF; the message names the URL.
    """
    import httpx

    limit = max_bytes()
    timeout = _setting("ADAPTSUM_DOWNLOAD_TIMEOUT", 30.0)
    current = url
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(current)
            if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
                raise DocumentError(url, f"only http(s) URLs can be fetched, got {current!r}")
            port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
            _check_address(url, parts.hostname, port)
            try:
                with client.stream("GET", current, headers={"Accept": "application/pdf"}) as resp:
                    if resp.is_redirect:
                        location = resp.headers.get("location", "")
                        if not location:
                            raise DocumentError(url, f"HTTP {resp.status_code} without a Location")
                        current = urljoin(current, location)
                        continue
                    if resp.status_code != 200:
                        raise DocumentError(url, f"HTTP {resp.status_code} {resp.reason_phrase}")
                    kind = resp.headers.get("content-type", "").split(";")[0].strip().lower()
                    if kind and kind not in PDF_TYPES:
                        raise DocumentError(url, f"not a PDF (served as {kind})")
                    declared = resp.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > limit:
                        raise DocumentError(
                            url, f"larger than the server's limit of {limit // 2**20} MB"
                        )
                    body = bytearray()
                    for block in resp.iter_bytes():
                        body.extend(block)
                        if len(body) > limit:
                            raise DocumentError(
                                url, f"larger than the server's limit of {limit // 2**20} MB"
                            )
                    name = _file_name(current, resp.headers)
            except httpx.TimeoutException:
                raise DocumentError(url, f"timed out after {timeout:g} s") from None
            except httpx.HTTPError as exc:
                raise DocumentError(url, f"download failed: {exc}") from None
            _check_pdf_bytes(url, bytes(body))
            return _store(bytes(body), name, directory)
    raise DocumentError(url, f"more than {MAX_REDIRECTS} redirects")
