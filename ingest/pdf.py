"""Load a PDF page by page with PyMuPDF into LangChain `Document`s with page metadata.

Lines are re-joined into paragraphs from their geometry: a line that runs to the
right margin was wrapped by the layout, so it continues on the next line; a shorter
line ends a paragraph, list item or heading. Korean PDFs (Notion, Word) wrap between
any two syllables and drop the space when the break falls on one, so a Hangul wrap
gets a space back only after a syllable that usually ends a word (a particle or verb
ending such as 을/는/의/고); elsewhere the syllables are re-joined.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pymupdf
from langchain_core.documents import Document

from adaptsum.errors import DocumentError
from adaptsum.ingest.files import read_pdf_bytes
from adaptsum.ingest.ocr import ocr_page
from adaptsum.ingest.terms import space_at_wrap

Progress = Callable[[str, int, int], None]

PROGRESS_EVERY = 25
"""Pages between two progress reports while the text is read."""

_CJK = re.compile(r"[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u9fff\uac00-\ud7a3]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u3000]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")
_HYPHENATED = re.compile(r"([a-z])-\n([a-z])")
_ARXIV_STAMP = re.compile(
    r"[ \t]*\n?arXiv:\d{4}\.\d{4,5}(?:v\d+)?[ \t]*\[[\w.\-]+\]"
    r"[ \t]*\d{1,2}[ \t]+[A-Z][a-z]{2}[ \t]+\d{4}"
)
"""The identifier arXiv prints up the margin of page 1 ("arXiv:2004.04906v3 [cs.CL] 30 Sep
2020"): MuPDF reads it into the middle of the nearest sentence."""
# ﬁ, ﬂ, ﬀ, ...; and the Hebrew and Arabic presentation forms (shaped glyphs, e.g. ﺗﻘﻊ)
# that many RTL PDFs map their text to: folded to the letters a reader types.
_LIGATURES = re.compile(r"[\ufb00-\ufb06\ufb1d-\ufb4f\ufb50-\ufdff\ufe70-\ufefe]")
_ENDS_PARAGRAPH = tuple(".!?:。")
_HANGUL_START = re.compile(r"[\uac00-\ud7a3]")
_DAMAGE = re.compile(r"cannot load|not a stream|bad xref|object missing|syntax error", re.I)


@dataclass(frozen=True)
class LoadedPdf:
    """A PDF's text pages plus what the index and the user need to know about it."""

    path: Path
    sha256: str
    title: str
    total_pages: int
    pages: list[Document]
    """Pages with text; metadata: source, sha256, page (1-based), total_pages, title."""
    ocr_pages: list[int] = field(default_factory=list)
    """Pages whose text came from OCR (1-based)."""
    ocr_seconds: float = 0.0
    """Time spent on OCR, cached pages included."""

    @property
    def skipped_pages(self) -> int:
        """Pages without a text layer (blank, or images needing OCR)."""
        return self.total_pages - len(self.pages)


def load_pdf(
    path: str | Path,
    data: bytes | None = None,
    password: str | None = None,
    progress: Progress | None = None,
) -> LoadedPdf:
    """Read every page's text from `data` (the file's bytes, read here when not given).

    Pages without a text layer that hold images (scans) are read by OCR; see `ingest.ocr`.
    `progress("pages", done, total)` is called every few pages as their text is read, and
    `progress("ocr pages", done, total)` as scans are read.

    Raises:
        DocumentError: missing, empty, not a PDF, corrupt or truncated, encrypted,
            without any text layer, or damaged so that some pages cannot be read (named).
    """
    path = Path(path).expanduser().resolve()
    if data is None:
        data = read_pdf_bytes(path)
    sha = hashlib.sha256(data).hexdigest()
    try:
        doc = pymupdf.open(stream=data, filetype="pdf")
    except Exception as exc:  # MuPDF's own errors vary by version
        raise DocumentError(path, f"corrupt PDF, cannot be opened ({_short(exc)})") from None
    with doc:
        if doc.needs_pass and not (password and doc.authenticate(password)):
            raise DocumentError(
                path,
                "encrypted PDF: wrong password"
                if password
                else "encrypted PDF: a password is needed to read it (give it with --password)",
            )
        texts, lost = _page_texts(doc, progress)
        if lost:
            raise DocumentError(path, _damage_message(lost))
        scanned = [
            n for n, text in enumerate(texts, start=1) if not text and _has_images(doc[n - 1])
        ]
        started = time.perf_counter()
        for done, number in enumerate(scanned, start=1):
            texts[number - 1] = ocr_page(path, doc[number - 1], f"{sha}:{number}")
            if progress is not None:
                progress("ocr pages", done, len(scanned))
        ocr_seconds = time.perf_counter() - started
        if doc.is_repaired and not any(texts):
            raise DocumentError(path, _damage_message(lost))
        if not any(texts):
            raise DocumentError(
                path,
                f"no text layer in any of its {doc.page_count} pages, and OCR found no text "
                f"on the {len(scanned)} with images (blank pages or an unreadable scan)",
            )
        title = _title(doc, texts, path)
        total = doc.page_count
    pages = [
        Document(
            page_content=text,
            metadata={
                "source": str(path),
                "sha256": sha,
                "page": number,
                "total_pages": total,
                "title": title,
            },
        )
        for number, text in enumerate(texts, start=1)
        if text
    ]
    return LoadedPdf(
        path=path,
        sha256=sha,
        title=title,
        total_pages=total,
        pages=pages,
        ocr_pages=[n for n in scanned if texts[n - 1]],
        ocr_seconds=ocr_seconds,
    )


def _has_images(page: pymupdf.Page) -> bool:
    return bool(page.get_images(full=False))


def _damage_message(lost: list[int]) -> str:
    if not lost:
        return "damaged or truncated PDF (MuPDF had to rebuild it and found no readable page)"
    shown = ", ".join(str(n) for n in lost[:10]) + (" ..." if len(lost) > 10 else "")
    return (
        f"damaged or truncated PDF: MuPDF had to rebuild it and {len(lost)} page(s) "
        f"cannot be read (page {shown}); nothing was indexed"
    )


def _page_texts(
    doc: pymupdf.Document, progress: Progress | None = None
) -> tuple[list[str], list[int]]:
    """Normalised text per page, and the 1-based numbers of pages MuPDF failed to read.

    A page fails when MuPDF raises, or, in a file it had to rebuild (truncated, or a
    broken xref), when its page object is gone or MuPDF reports objects or content
    streams it could not load while reading it: MuPDF then shows the page blank or
    cut short, which must not pass for a healthy page.
    """
    texts: list[str] = []
    lost: list[int] = []
    for number in range(1, doc.page_count + 1):
        try:
            if doc.is_repaired:
                pymupdf.TOOLS.reset_mupdf_warnings()
            page = doc[number - 1]
            if doc.is_repaired:
                doc.xref_get_key(page.xref, "Contents")  # raises when the page object is gone
            blocks = page.get_text("dict", flags=pymupdf.TEXTFLAGS_TEXT)["blocks"]
            if doc.is_repaired and _DAMAGE.search(pymupdf.TOOLS.mupdf_warnings()):
                raise ValueError("objects of this page could not be loaded")
        except Exception:
            texts.append("")
            lost.append(number)
            continue
        texts.append(join_blocks(blocks))
        if progress is not None and (number % PROGRESS_EVERY == 0 or number == doc.page_count):
            progress("pages", number, doc.page_count)  # a 2,000-page book shows it moving
    return texts, lost


def join_blocks(blocks: list[dict]) -> str:
    """A page's normalised text from MuPDF's text blocks (born-digital or OCR'd)."""
    return normalise(_join_lines(blocks))


@dataclass
class _Line:
    """One visual line: its text, box and font size; `cells` > 1 for a table row."""

    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    size: float
    cells: int = 1


def _block_lines(block: dict) -> list[_Line]:
    """The block's lines, with cells that share a baseline merged into one row.

    MuPDF gives a table cell per line; cells of one row overlap vertically and follow
    each other left to right. Three or more of them (or two far apart) are a table
    row, kept as "a | b | c"; two close pieces (a superscript split off) are one line.
    """
    rows: list[list[_Line]] = []
    for line in block.get("lines", []):
        text = "".join(span["text"] for span in line["spans"]).strip()
        if not text:
            continue
        x0, y0, x1, y1 = line["bbox"]
        size = max(span["size"] for span in line["spans"])
        item = _Line(text, x0, y0, x1, y1, size)
        if rows:
            last = rows[-1][-1]
            overlap = min(last.y1, y1) - max(last.y0, y0)
            if overlap > 0.5 * min(last.y1 - last.y0, y1 - y0) and x0 >= last.x1 - 1.0:
                rows[-1].append(item)
                continue
        rows.append([item])
    out: list[_Line] = []
    for row in rows:
        if len(row) == 1:
            out.append(row[0])
            continue
        size = max(c.size for c in row)
        wide_gaps = any(b.x0 - a.x1 > 2.0 * size for a, b in itertools.pairwise(row))
        table = len(row) >= 3 or wide_gaps
        out.append(
            _Line(
                (" | " if table else " ").join(c.text for c in row),
                row[0].x0,
                min(c.y0 for c in row),
                row[-1].x1,
                max(c.y1 for c in row),
                size,
                len(row) if table else 1,
            )
        )
    return out


def _join_lines(blocks: list[dict]) -> str:
    """Lines re-joined into paragraphs; table rows kept one per line.

    A line was wrapped by the layout when the next line's first word would not have
    fitted in the room left before the right edge of its own column: the block's right
    edge (for a one-line block, the nearest edge of a multi-line block above or below it
    that reaches past the line), not the page's, so two-column pages join their lines
    too. A paragraph that runs on from one block to the next (the bottom of a column to
    the top of the next) stays one paragraph when its last line is full and the next one
    goes on in lower case.
    """
    grouped = [lines for block in blocks if (lines := _block_lines(block))]
    if not grouped:
        return ""
    edges = [max(line.x1 for line in lines) for lines in grouped]
    page_right = max(edges)
    multi = [
        (lines[0].x0, edge) for lines, edge in zip(grouped, edges, strict=True) if len(lines) > 1
    ]
    out: list[str] = []
    for number, lines in enumerate(grouped):
        right = edges[number]
        if len(lines) == 1:
            line = lines[0]
            under = [edge for x0, edge in multi if x0 < line.x1 and edge >= line.x1 - 1.0]
            right = min(under) if under else page_right
        following = grouped[number + 1][0] if number + 1 < len(grouped) else None
        for index, line in enumerate(lines):
            nxt = lines[index + 1] if index + 1 < len(lines) else following
            out.append(line.text)
            if nxt is None or line.cells > 1 or nxt.cells > 1:
                out.append("\n" if nxt is None or index + 1 < len(lines) else "\n\n")
                continue
            next_word = nxt.text.split(" ", 1)[0]
            size = max(line.size, 1.0)
            room = (len(next_word) + 1) * 0.6 * size + 2.0 * size
            wrapped = right - line.x1 < room
            if index + 1 == len(lines):
                # Across blocks: only a full line whose sentence goes on in lower case.
                wrapped = (
                    wrapped
                    and not line.text.endswith(_ENDS_PARAGRAPH)
                    and (nxt.text[:1].islower() or bool(_HANGUL_START.match(nxt.text)))
                )
                if not wrapped:
                    out.append("\n\n")
                    continue
            out.append(_glue(line.text, nxt.text) if wrapped else "\n")
    return "".join(out)


def _glue(text: str, nxt: str) -> str:
    """What goes between a wrapped line and the next (the text may be edited in place)."""
    if _HANGUL_START.match(text[-1]) and _HANGUL_START.match(nxt[0]):
        return " " if space_at_wrap(text, nxt) else ""
    if _CJK.match(text[-1]) and _CJK.match(nxt[0]):
        return ""  # Japanese and Chinese put no space between words
    if text.endswith("-") and text[-2:-1].isalpha() and nxt[:1].isalpha():
        # "fine-\ntuning": the hyphen rule of `normalise` decides; "Math-\nInstruct"
        # is a compound whose hyphen stays, with no space.
        return "\n" if text[-2:-1].islower() and nxt[:1].islower() else ""
    return " "


def normalise(text: str) -> str:
    """NFC, ligatures and line-end hyphens undone, arXiv's stamp dropped, spaces collapsed.

    Not NFKC: it would turn Hangul compatibility jamo (ㄱ, ㅡ) into conjoining ones.
    """
    text = unicodedata.normalize("NFC", text)
    text = _LIGATURES.sub(lambda m: unicodedata.normalize("NFKC", m.group()), text)
    text = _HYPHENATED.sub(r"\1\2", text)
    text = _ARXIV_STAMP.sub("", text)
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _MANY_NEWLINES.sub("\n\n", text).strip()


def _title(doc: pymupdf.Document, texts: list[str], path: Path) -> str:
    """The metadata's title, else the first title-like line near the top, else the file's name.

    A scan's first lines can be OCR noise or a letterhead's table of fields: the scanned
    bulletin was titled '2 더니떠[너즈자00 클쿠0으.르자2Nlaststs | 을 | |'.
    """
    from adaptsum.ingest.fetch import shown_file

    meta = (doc.metadata or {}).get("title", "").strip()
    if meta:
        return meta
    first = next((t for t in texts if t), "")
    lines = [line.strip() for line in first.split("\n") if line.strip()]
    for line in lines[:TITLE_LINES]:
        if _title_like(line):
            return line[:120]
    return Path(shown_file(path)).stem


TITLE_LINES = 5
"""Lines from the top of the first page with text that may be its title."""


def _title_like(line: str) -> bool:
    """Mostly letters, two of them at least, and not a table row ('S78 | 4242-2e2n0')."""
    if " | " in line:
        return False
    visible = [ch for ch in line if not ch.isspace()]
    letters = [ch for ch in visible if ch.isalpha()]
    return len(letters) >= 2 and len(letters) >= TITLE_LETTER_SHARE * len(visible)


TITLE_LETTER_SHARE = 0.6
"""'ISSUE & FOCUS' and '[Paper Review] Qwen Technical Report' pass; '~', '- 3 -' and
'S78-4242-2e2n0' do not."""


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
