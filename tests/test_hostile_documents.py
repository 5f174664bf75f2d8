"""Documents a hostile or heavy user brings: 2,000 pages, a 1 MB page, mixed scripts, odd
names, a folder of many PDFs with some bad. Bounded time and memory, one line per bad file."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pymupdf
import pytest
from langchain_core.documents import Document

from adaptsum.cli import main
from adaptsum.ingest.chunking import chunk_pages
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
