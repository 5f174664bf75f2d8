"""Cheap checks on a file before any PDF library is loaded: existence, size, magic, hash.

Kept free of heavy imports so that re-indexing an unchanged file costs only a hash.
"""

from __future__ import annotations

import errno
import hashlib
import stat
from pathlib import Path

from adaptsum.errors import DocumentError


def file_sha256(path: Path) -> str:
    """Content hash that names a document version; read in blocks to bound memory."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_pdf_file(path: Path) -> None:
    """Reject what is plainly not a readable PDF before handing it to MuPDF.

    A symlink loop, a FIFO (opening one would wait forever for a writer), a socket or a
    device is refused here by its `stat`, before anything opens it.

    Raises:
        DocumentError: missing, a symlink loop, a directory, not a regular file,
            unreadable, empty, or without a PDF header.
    """
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DocumentError(path, "symlink loop (the link leads back to itself)") from None
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise DocumentError(path, "no such file") from None
        raise DocumentError(path, f"cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(mode):
        raise DocumentError(path, "is a directory, not a PDF file")
    if not stat.S_ISREG(mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket or device"
        raise DocumentError(path, f"not a regular file but {kind}")
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(1024)
    except PermissionError:
        raise DocumentError(path, "permission denied") from None
    if size == 0:
        raise DocumentError(path, "empty file (0 bytes)")
    if b"%PDF-" not in head:
        raise DocumentError(path, "not a PDF (no %PDF- header)")


def read_pdf_bytes(path: Path) -> bytes:
    """The whole file, read once: its hash and its parse must come from the same bytes.

    MuPDF otherwise reads pages lazily from disk, so a file overwritten while it is
    indexed would be stored under the hash of a version that was never parsed.

    Raises:
        DocumentError: missing, a directory, unreadable, empty, or not a PDF.
    """
    check_pdf_file(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(path, f"cannot be read ({exc.strerror or exc})") from None
    if not data:
        raise DocumentError(path, "empty file (0 bytes)")
    return data
