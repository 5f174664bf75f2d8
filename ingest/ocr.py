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

OCR_VERSION = "4"
"""Bump when the OCR settings or the text it produces change, so caches are not reused
(and documents are indexed again: it is part of a revision's name)."""

OSD_DPI = 150
"""Render resolution for Tesseract's script detection: enough for it, a quarter the pixels."""

SCRIPT_LANGUAGES = {"Latin": "eng", "Korean": "kor+eng", "Hangul": "kor+eng"}
"""Tesseract's detected script -> the languages to read a page with. A Latin page read
with the Korean model too came out with Hangul letters in its noise (the scanned
bulletin's letterhead became its title, '더니떠[너즈자00 ...') and took three times as
long; a Korean page keeps English, as Korean documents write Latin names and numbers.
Tesseract names Hangul pages 'Korean' (some 'Japanese': those keep the configured
languages)."""

LATIN_CONFIDENCE = 5.0
"""Script confidence a 'Latin' page needs to be read in English alone. The bulletin's
typed pages score 5.9 and 6.3; a Korean budget table, mostly figures, was called Latin
at 1.3 to 3.1 (by scan resolution), and read with `eng` alone its Hangul was lost
('에너지 바우처' as 'o}] L] A]'). Below it a page keeps the configured languages: slower
and noisier for English, never a Korean page lost."""


INSTALL_HINT = "apt-get install tesseract-ocr tesseract-ocr-kor"


def ocr_languages() -> str:
    """Tesseract languages, e.g. 'kor+eng' (ADAPTSUM_OCR_LANGUAGES overrides)."""
    return os.environ.get("ADAPTSUM_OCR_LANGUAGES", "kor+eng")


def _chosen_by_script() -> bool:
    """Whether each page's languages follow its detected script (unless the user set them)."""
    return not os.environ.get("ADAPTSUM_OCR_LANGUAGES")


def page_languages(page: pymupdf.Page, folder: str) -> str:
    """The languages to read `page` with, from Tesseract's own script detection (OSD).

    The `tesseract` command does the detection (PyMuPDF's OCR has no OSD) on the page
    rendered at `OSD_DPI`, about 0.7 s a page. A script it cannot tell (too little
    text, an unlisted script, no command or no `osd` model) keeps the configured
    languages, which read everything, only slower and noisier.
    """
    import subprocess

    configured = ocr_languages()
    command = shutil.which("tesseract")
    if command is None or not (Path(folder) / "osd.traineddata").is_file():
        return configured
    image = page.get_pixmap(dpi=OSD_DPI).tobytes("png")
    try:
        done = subprocess.run(
            [command, "stdin", "stdout", "--psm", "0", "--tessdata-dir", folder],
            input=image,
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return configured
    found = dict(
        line.split(":", 1)
        for line in done.stdout.decode(errors="replace").splitlines()
        if ":" in line
    )
    script = found.get("Script", "").strip()
    try:
        confidence = float(found.get("Script confidence", "0"))
    except ValueError:
        confidence = 0.0
    if script == "Latin" and confidence < LATIN_CONFIDENCE:
        return configured
    return SCRIPT_LANGUAGES.get(script, configured)


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

    automatic = _chosen_by_script()
    setting = f"auto:{ocr_languages()}" if automatic else ocr_languages()  # known before OCR
    name = hashlib.sha256(f"{key}:{setting}:{OCR_DPI}:{OCR_VERSION}".encode()).hexdigest()
    cached = cache_dir() / name[:2] / f"{name}.txt"
    if cached.is_file():
        return cached.read_text(encoding="utf-8")
    import pymupdf

    folder = tessdata(path)
    languages = page_languages(page, folder) if automatic else ocr_languages()
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
    if "kor" in languages.split("+"):
        from adaptsum.ingest.terms import respace

        text = respace(text)
    cached.parent.mkdir(parents=True, exist_ok=True)
    staging = cached.with_suffix(f".{os.getpid()}.tmp")
    staging.write_text(text, encoding="utf-8")
    os.replace(staging, cached)  # readers never see half a file
    return text
