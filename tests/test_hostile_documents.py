"""Documents a hostile or heavy user brings: 2,000 pages, a 1 MB page, mixed scripts, odd
names, a folder of many PDFs with some bad. Bounded time and memory, one line per bad file."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pymupdf
import pytest
from langchain_core.documents import Document

from adaptsum.cli import main
from adaptsum.ingest.chunking import chunk_pages, join_pages
from adaptsum.ingest.pdf import load_pdf
from adaptsum.state.context import Context
from adaptsum.store.index import DocumentIndex

from helpers import EN_SAMPLE, make_book

BIG_PAGES = 2000


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# Loading and chunking run in a child process, so its peak RSS is theirs alone.
_LOAD = """
import json, re, sys, time
started = time.perf_counter()
from adaptsum.ingest.chunking import chunk_pages
from adaptsum.ingest.pdf import load_pdf
calls = []
loaded = load_pdf(sys.argv[1], progress=lambda *call: calls.append(call))
chunks = chunk_pages(loaded.pages, 400, 50)
print(json.dumps({
    "seconds": time.perf_counter() - started,
    # VmHWM, not ru_maxrss: the latter survives exec, so it reports pytest's own peak.
    "peak_rss_mb": int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read())[1]) / 1024,
    "pages": loaded.total_pages, "text_pages": len(loaded.pages), "chunks": len(chunks),
    "last_page": max(c.page_end for c in chunks), "calls": calls,
}))
"""


def test_2000_page_pdf_loads_in_bounded_time_and_memory_with_progress(tmp_path: Path) -> None:
    """Reading and chunking 2,000 pages: seconds, a few hundred MB (full index: bench/load.py)."""
    book = make_book(tmp_path / "book.pdf", BIG_PAGES)
    done = subprocess.run(
        [sys.executable, "-c", _LOAD, str(book)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    print(f"\n2,000 pages: {got['seconds']:.1f} s, peak RSS {got['peak_rss_mb']:.0f} MB")
    assert got["pages"] == got["text_pages"] == BIG_PAGES
    assert got["last_page"] == BIG_PAGES and got["chunks"] >= 150
    assert got["seconds"] < 240  # ~11 s on 2 loaded cores
    assert got["peak_rss_mb"] < 800  # ~230 MB, most of it the libraries
    # Progress moves while the pages are read, not once at the end.
    pages = [done for stage, done, total in got["calls"] if stage == "pages" and total == BIG_PAGES]
    assert len(pages) >= BIG_PAGES // 50 and pages == sorted(pages) and pages[-1] == BIG_PAGES


def test_a_page_of_1_mb_unbroken_text_is_chunked_in_bounded_time() -> None:
    """The 1 MB page: chunks within their size, in bounded time (windows: test_bad_inputs)."""
    syllables = random.Random(11).choices(range(0xAC00, 0xD7A4), k=350_000)
    dense = "".join(map(chr, syllables))  # 1 MB of UTF-8, no space anywhere, never repeating
    started = time.monotonic()
    chunks = chunk_pages([Document(page_content=dense, metadata={"page": 1})], 400, 50)
    print(f"\n1 MB page: {len(chunks)} chunks in {time.monotonic() - started:.1f} s")
    assert time.monotonic() - started < 300  # ~60 s on 2 loaded cores
    assert all(c.tokens <= 400 for c in chunks)
    assert chunks[0].char_start == 0 and chunks[-1].char_end == len(dense)  # nothing lost


MIXED = [
    ("ar", "مدينة بترا محفورة في صخر وردي منذ زمن بعيد، ويزورها سياح من كل مكان."),
    ("he", "ים המלח הוא האגם המלוח ביותר בעולם והוא נמצא בנקודה הנמוכה ביותר."),
    ("zh", "长城是中国古代的军事防御工程，全长超过两万公里，修建了两千多年。"),
    ("ja", "富士山は日本で最も高い山で、標高は三千七百七十六メートルです。"),
    ("en", "The rocket ✨ reached orbit ☀ at dawn ✓ and the crew waved ☺ from the capsule."),
]


def make_mixed(path: Path) -> Path:
    """One page per script, laid out by MuPDF's HTML engine (bidi and Arabic shaping)."""
    body = "".join(
        f'<p lang="{lang}" style="page-break-after: always">{text}</p>' for lang, text in MIXED
    )
    story = pymupdf.Story(html=f"<body>{body}</body>")
    writer = pymupdf.DocumentWriter(str(path))
    more = 1
    while more:
        device = writer.begin_page(pymupdf.paper_rect("a5"))
        more, _ = story.place(pymupdf.paper_rect("a5") + (36, 36, -36, -36))
        story.draw(device)
        writer.end_page()
    writer.close()
    return path


def test_mixed_scripts_are_indexed_and_retrievable(tmp_path: Path) -> None:
    pdf = make_mixed(tmp_path / "mixed.pdf")
    index = DocumentIndex(Context(data_dir=str(tmp_path / "data"), chunk_size=24, chunk_overlap=0))
    report = index.index_file(pdf)
    assert report.status == "indexed" and report.pages == len(MIXED)
    chunks = index.catalog.document_chunks(index.collection, index.documents()[0].revision)
    text = " ".join(c.text for c in chunks)
    # Arabic comes out of the PDF as shaped presentation forms: folded to plain letters.
    assert not any("\ufb50" <= ch <= "\ufeff" for ch in text)
    for page, (lang, sentence) in enumerate(MIXED, start=1):
        words = sentence.split()[:3] if lang in ("ar", "he", "en") else [sentence[:6]]
        query = " ".join(words)
        assert query in text, (lang, query)  # logical order, the letters a reader types
        hit = index.search(query, k=1)[0]
        assert hit.chunk.page_start <= page <= hit.chunk.page_end, (lang, hit.chunk.text)
    assert "✨" in text and "☀" in text and "✓" in text  # symbols survive


ASTRAL = [
    "The rocket 🚀 reached orbit at dawn, and the crew smiled 😀 from the capsule window. "
    "Mission control cheered 🎉 when the solar panels opened.",
    "세종대왕은 1443년에 한글을 창제하였다 👍🏽 백성이 쉽게 배우도록 만든 글자였다 🇰🇷. "
    "집현전 학자들이 함께 연구하였다 📜.",
    "长城修建了两千多年 🧱 全长超过两万公里，罕见的字𠀋也在这里。游客很多 🧳。",
    "The coder 👩\u200d💻 fixed the bug 🐛 before midnight, and the tests turned green ✅ at last.",
]
"""Astral-plane characters (above U+FFFF: UTF-16 surrogate pairs in the PDF) in four scripts:
emoji, a skin-tone modifier, a flag, a ZWJ sequence, and a CJK Extension B ideograph."""


def make_astral(path: Path, pages: list[str]) -> Path:
    """A PDF whose text layer holds astral-plane characters, one page per string.

    MuPDF's own writers cannot produce one (its HTML engine keeps 16 bits of U+1F600 and
    writes U+1F60), and a clean machine has no emoji font. So this writes what an emoji
    font embedded by a browser gives a text extractor: codes of a simple font whose
    ToUnicode CMap maps each to its character in UTF-16BE, surrogate pairs included.
    """
    chars = sorted({ch for text in pages for ch in text})
    assert len(chars) < 255  # one byte code each
    code = {ch: i + 1 for i, ch in enumerate(chars)}
    entries = "\n".join(f"<{code[c]:02X}> <{c.encode('utf-16-be').hex().upper()}>" for c in chars)
    cmap = (
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n"
        "/CMapName /Astral def /CMapType 2 def\n1 begincodespacerange <00> <FF> "
        f"endcodespacerange\n{len(chars)} beginbfchar\n{entries}\nendbfchar\n"
        "endcmap CMapName currentdict /CMap defineresource pop end end"
    )
    doc = pymupdf.open()
    to_unicode = doc.get_new_xref()
    doc.update_object(to_unicode, "<<>>")
    doc.update_stream(to_unicode, cmap.encode())
    font = doc.get_new_xref()
    widths = " ".join("278" if c == " " else "600" for c in chars)
    doc.update_object(
        font,
        f"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /FirstChar 1 /LastChar "
        f"{len(chars)} /Widths [{widths}] /ToUnicode {to_unicode} 0 R >>",
    )
    for text in pages:
        page = doc.new_page()
        shown = [
            f"<{bytes(code[c] for c in line).hex()}> Tj T*" for line in textwrap.wrap(text, 85)
        ]
        contents = doc.get_new_xref()
        doc.update_object(contents, "<<>>")
        doc.update_stream(
            contents, "\n".join(["BT /FA 10 Tf 14 TL 50 780 Td", *shown, "ET"]).encode()
        )
        doc.xref_set_key(page.xref, "Resources", f"<< /Font << /FA {font} 0 R >> >>")
        doc.xref_set_key(page.xref, "Contents", f"{contents} 0 R")
    doc.save(path, garbage=3, deflate=True)
    return path


def test_astral_plane_emoji_round_trip_with_right_pages(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pdf = make_astral(tmp_path / "astral.pdf", ASTRAL)
    assert any(ord(c) > 0xFFFF for c in "".join(ASTRAL))
    data = str(tmp_path / "data")
    ctx = Context(data_dir=data, chunk_size=16, chunk_overlap=0)
    index = DocumentIndex(ctx)
    report = index.index_file(pdf)
    assert report.status == "indexed" and report.pages == len(ASTRAL) and report.chunks > 8
    # Every character comes out as it went in: page by page, and in every chunk, whose
    # offsets (Python code points, not UTF-16 units) cut the joined text exactly.
    loaded = load_pdf(pdf)
    assert [p.page_content for p in loaded.pages] == ASTRAL
    joined, _, _ = join_pages(loaded.pages)
    chunks = index.catalog.document_chunks(index.collection, index.documents()[0].revision)
    assert all(joined[c.char_start : c.char_end] == c.text for c in chunks)
    assert "".join(ASTRAL).count("👩\u200d💻") == " ".join(c.text for c in chunks).count(
        "👩\u200d💻"
    )
    for page, sentence in enumerate(ASTRAL, start=1):
        owning = [c for c in chunks if c.page_start <= page <= c.page_end]
        assert all(ch in " ".join(c.text for c in owning) for ch in sentence if ord(ch) > 0xFFFF)
    # Search finds each page by its emoji-bearing words, on the right page.
    for page, query in [
        (1, "crew smiled 😀"),
        (2, "한글을 창제하였다 👍🏽"),
        (3, "罕见的字𠀋"),
        (4, "coder 👩\u200d💻 fixed the bug 🐛"),
    ]:
        hit = index.search(query, k=1)[0]
        assert hit.chunk.page_start <= page <= hit.chunk.page_end, (query, hit.chunk.text)
    # The CLI: ask cites the right page and its JSON keeps the emoji as they are.
    args = ["--data-dir", data, "--chunk-size", "16", "--chunk-overlap", "0"]
    code, out, err = run(capsys, "ask", str(pdf), "Who fixed the bug 🐛 before midnight?", *args)
    assert code == 0 and "[p. 4]" in out and "🐛" in out, (out, err)
    code, out, err = run(capsys, "ask", str(pdf), "When did the crew smile 😀?", "--json", *args)
    got = json.loads(out)
    assert code == 0 and got["citations"][0]["page"] == 1 and "😀" in got["answer"], (out, err)
    code, out, err = run(capsys, "search", "字𠀋也在这里", "--json", *args)
    hits = json.loads(out)
    assert code == 0 and hits[0]["page_start"] == 3, (out, err)
    assert any("𠀋" in h["text"] for h in hits if h["page_start"] == 3), out


def test_odd_file_names_print_safely(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    odd = tmp_path / "a b 한글 ✓ مرحبا\nline.pdf"
    shutil.copy(EN_SAMPLE, odd)
    shown = "a b 한글 ✓ مرحبا\\nline.pdf"  # the newline escaped; every script as it is
    data = str(tmp_path / "data")
    code, out, err = run(capsys, "index", str(odd), "--data-dir", data, "--no-progress")
    assert code == 0, err
    assert out.splitlines()[0].startswith("indexed ") and shown in out.splitlines()[0]
    assert len(out.splitlines()) == 2  # the file's line and the totals: no line broken
    code, out, _ = run(capsys, "docs", "--data-dir", data)
    assert code == 0 and len(out.splitlines()) == 2 and out.splitlines()[1].endswith(shown)
    code, out, err = run(capsys, "ask", str(odd), "How large is Webb's mirror?", "--data-dir", data)
    assert code == 0, err
    assert "route: answer" in out and "[p. " in out
    code, out, _ = run(capsys, "ask", str(odd), "mirror?", "--json", "--data-dir", data)
    assert json.loads(out)["citations"][0]["source"].endswith("\nline.pdf")  # JSON keeps it
    # A bad file with such a name is still one error line.
    bad = tmp_path / "bad\nname.pdf"
    bad.write_text("not a pdf")
    code, _, err = run(capsys, "index", str(bad), "--data-dir", data)
    assert code == 1
    assert err == f"adaptsum: error: {tmp_path}/bad\\nname.pdf: not a PDF (no %PDF- header)\n"


def test_folder_of_many_pdfs_with_some_bad(
    capsys: pytest.CaptureFixture[str], bad_pdfs: dict[str, Path], tmp_path: Path
) -> None:
    folder = tmp_path / "inbox"
    (folder / "sub").mkdir(parents=True)
    good = []
    for n in range(6):  # distinct bytes, so six documents (a PDF comment appended)
        target = folder / ("sub" if n % 2 else "") / f"good-{n}.pdf"
        target.write_bytes(EN_SAMPLE.read_bytes() + f"\n% copy {n}\n".encode())
        good.append(target)
    bad = {
        "empty": "empty file (0 bytes)",
        "not_pdf": "not a PDF (no %PDF- header)",
        "corrupt": "corrupt PDF",
        "truncated": "damaged or truncated PDF",
        "encrypted": "encrypted PDF: a password is needed to read it (give it with --password)",
    }
    for kind in bad:
        shutil.copy(bad_pdfs[kind], folder / f"bad-{kind}.pdf")
    data = str(tmp_path / "data")
    code, out, err = run(capsys, "index", str(folder), "--data-dir", data, "--no-progress")
    assert code == 1  # documented: 1 when any file failed, after all the others were done
    errors = err.splitlines()
    assert len(errors) == len(bad)
    for kind, problem in bad.items():
        line = next(e for e in errors if f"bad-{kind}.pdf" in e)
        assert line.startswith(f"adaptsum: error: {folder / f'bad-{kind}.pdf'}: {problem}"), line
    assert sum(line.startswith("indexed ") for line in out.splitlines()) == len(good)
    assert out.splitlines()[-1].endswith(f"; {len(bad)} file(s) failed")
    code, out, _ = run(capsys, "docs", "--json", "--data-dir", data)
    assert sorted(Path(d["source"]).name for d in json.loads(out)) == sorted(p.name for p in good)
