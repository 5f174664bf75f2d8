"""OCR for pages without a text layer, through Tesseract as PyMuPDF drives it.

Tesseract is a system package (`apt-get install tesseract-ocr tesseract-ocr-kor`):
its models ship with it, so OCR runs offline. PyMuPDF renders the page, Tesseract
reads it, and the result is a MuPDF text page: the same line and block geometry as
a born-digital page, so paragraphs are rejoined by the same rules. Text is cached
on disk by the file's hash and page number (and the OCR settings), so re-indexing a
scanned PDF, or indexing it into a second data directory, costs no OCR at all.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from adaptsum.errors import DocumentError

if TYPE_CHECKING:
    import pymupdf

OCR_DPI = 300
"""Render resolution: Tesseract is most accurate on text about 30 pixels high."""

OCR_VERSION = "1"
"""Bump when the OCR settings or the text it produces change, so caches are not reused."""

INSTALL_HINT = "apt-get install tesseract-ocr tesseract-ocr-kor"


def ocr_languages() -> str:
    """Tesseract languages, e.g. 'kor+eng' (ADAPTSUM_OCR_LANGUAGES overrides)."""
    return os.environ.get("ADAPTSUM_OCR_LANGUAGES", "kor+eng")


def cache_dir() -> Path:
    """Where OCR text is kept: ADAPTSUM_OCR_CACHE, else ~/.cache/adaptsum/ocr."""
    explicit = os.environ.get("ADAPTSUM_OCR_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "adaptsum" / "ocr"


def tessdata(path: Path) -> str:
    """Tesseract's model folder, checked to hold every configured language.

    Raises:
        DocumentError: Tesseract or one of its language packs is not installed.
    """
    import pymupdf

    if shutil.which("tesseract") is None and not os.environ.get("TESSDATA_PREFIX"):
        raise DocumentError(
            path, f"no text layer on some pages, and OCR needs Tesseract: {INSTALL_HINT}"
        )
    try:
        folder = pymupdf.get_tessdata()
    except Exception:
        raise DocumentError(
            path,
            f"no text layer on some pages, and Tesseract's language data was not found "
            f"(set TESSDATA_PREFIX, or {INSTALL_HINT})",
        ) from None
    missing = [
        lang
        for lang in ocr_languages().split("+")
        if not (Path(folder) / f"{lang}.traineddata").is_file()
    ]
    if missing:
        packages = " ".join(f"tesseract-ocr-{lang}" for lang in missing)
        raise DocumentError(
            path,
            f"OCR language data missing for {', '.join(missing)} in {folder}: "
            f"apt-get install {packages} (or set ADAPTSUM_OCR_LANGUAGES)",
        )
    return str(folder)


def ocr_page(path: Path, page: pymupdf.Page, key: str) -> str:
    """The normalised text of one scanned page, from the cache or from Tesseract.

    Args:
        path: the PDF, named in errors.
        page: the page to read.
        key: identifies the page's content (the file's sha256 and the page number).
    """
    from adaptsum.ingest.pdf import join_blocks

    languages = ocr_languages()
    name = hashlib.sha256(f"{key}:{languages}:{OCR_DPI}:{OCR_VERSION}".encode()).hexdigest()
    cached = cache_dir() / name[:2] / f"{name}.txt"
    if cached.is_file():
        return cached.read_text(encoding="utf-8")
    import pymupdf

    folder = tessdata(path)
    try:
        textpage = page.get_textpage_ocr(
            language=languages, dpi=OCR_DPI, full=True, tessdata=folder
        )
        blocks = page.get_text("dict", flags=pymupdf.TEXTFLAGS_TEXT, textpage=textpage)["blocks"]
    except Exception as exc:
        raise DocumentError(
            path, f"OCR failed on page {page.number + 1} ({str(exc).splitlines()[0][:120]})"
        ) from None
    text = join_blocks(blocks)
    cached.parent.mkdir(parents=True, exist_ok=True)
    staging = cached.with_suffix(f".{os.getpid()}.tmp")
    staging.write_text(text, encoding="utf-8")
    os.replace(staging, cached)  # readers never see half a file
    return text
