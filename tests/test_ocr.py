"""OCR of pages without a text layer: offline, cached, cited at the right page."""

from __future__ import annotations

import time
from pathlib import Path

import pymupdf
import pytest

from adaptsum.errors import DocumentError
from adaptsum.ingest.pdf import load_pdf
from adaptsum.state.context import Context
from adaptsum.store.index import DocumentIndex

from helpers import EN_SAMPLE, KO_SAMPLE
from realdocs import real_pdf, tesseract_fixture  # noqa: F401 (a fixture)


@pytest.fixture
def ocr_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "ocr-cache"
    monkeypatch.setenv("ADAPTSUM_OCR_CACHE", str(cache))
    monkeypatch.setenv("ADAPTSUM_OCR_LANGUAGES", "eng")  # the page is English; twice as fast
    return cache


def _with_a_scan(sample: Path, target: Path, scanned: int, dpi: int, keep: int = 0) -> Path:
    """The first `keep` pages of `sample`, then page `scanned` (0-based) as a picture.

    A picture only, the way a scanner hands a page over.
    """
    with pymupdf.open(sample) as src, pymupdf.open() as doc:
        if keep:
            doc.insert_pdf(src, from_page=0, to_page=keep - 1)
        page = src[scanned]
        new = doc.new_page(width=page.rect.width, height=page.rect.height)
        new.insert_image(new.rect, pixmap=page.get_pixmap(dpi=dpi))
        doc.save(target)
    return target


def _mixed_pdf(target: Path) -> Path:
    """Page 1 keeps its text layer; page 2 becomes a picture of itself (a scan)."""
    return _with_a_scan(EN_SAMPLE, target, scanned=1, dpi=150, keep=1)


def test_image_only_page_of_a_mixed_pdf_is_read_by_ocr_at_its_page(
    tesseract: None, ocr_cache: Path, tmp_path: Path
) -> None:
    pdf = _mixed_pdf(tmp_path / "mixed.pdf")
    seen: list[tuple[str, int, int]] = []
    loaded = load_pdf(pdf, progress=lambda *event: seen.append(event))
    assert loaded.ocr_pages == [2] and loaded.skipped_pages == 0
    assert [event for event in seen if event[0] == "ocr pages"] == [("ocr pages", 1, 1)]
    with pymupdf.open(EN_SAMPLE) as src:
        original = src[1].get_text().split()
    ocr_text = loaded.pages[1].page_content
    assert loaded.pages[1].metadata["page"] == 2
    words = set(ocr_text.split())
    assert len(words & set(original)) >= 0.8 * len(set(original))  # OCR read the page
    # The second time the text comes from the cache: no OCR, even with Tesseract gone.
    started = time.perf_counter()
    again = load_pdf(pdf)
    assert time.perf_counter() - started < 2.0
    assert again.pages[1].page_content == ocr_text


def test_cached_ocr_needs_no_tesseract(
    tesseract: None, ocr_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pdf = _mixed_pdf(tmp_path / "mixed.pdf")
    first = load_pdf(pdf)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path / "no-tessdata"))
    assert load_pdf(pdf).pages[1].page_content == first.pages[1].page_content


def test_missing_ocr_language_is_one_clear_error(
    tesseract: None, ocr_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pdf = _mixed_pdf(tmp_path / "mixed.pdf")
    monkeypatch.setenv("ADAPTSUM_OCR_LANGUAGES", "eng+xyz")
    with pytest.raises(
        DocumentError,
        match=r"mixed\.pdf: OCR language data missing for xyz.*"
        r"apt-get install tesseract-ocr-xyz",
    ):
        load_pdf(pdf)


def test_scanned_bulletin_is_indexed_and_found_at_its_page(tesseract: None, tmp_path: Path) -> None:
    pdf = real_pdf("grumman-service-bulletin-scan-en.pdf")
    # The shared OCR cache (~/.cache/adaptsum/ocr) makes this fast after the first run.
    # Plain dense retrieval: this is about the OCR'd text and its page. (Hybrid fusion
    # alone ranks the chunk 4th of 4 here; the graph's rerank puts it first, below.)
    index = DocumentIndex(Context(data_dir=str(tmp_path / "data"), retrieval="dense"))
    report = index.index_file(pdf)
    assert report.ocr_pages == 2 and report.skipped_pages == 0
    hits = index.search("To what pressure should the main gear tires be inflated?", k=3)
    # The answer stands on page 2 of the scan, and the chunk holding it says so.
    assert any(
        h.chunk.page_start <= 2 <= h.chunk.page_end and "19 psi" in h.chunk.text for h in hits
    )
    # The whole graph with its defaults (hybrid + evidence-weighted rerank) quotes it first.
    from adaptsum.graph.main_graph import build_graph

    question = "To what pressure should the main gear tires be inflated?"
    ctx = Context(data_dir=str(tmp_path / "data"))
    out = build_graph().invoke({"request": question, "documents": [str(pdf)]}, context=ctx)
    assert out["route"] == "answer", out["route_reason"]
    assert out["citations"][0]["page"] == 2 and "19" in out["citations"][0]["evidence"]


def test_each_scanned_page_is_read_with_the_languages_of_its_script(
    tesseract: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tesseract's script detection picks English alone for a Latin page (the Korean model
    put Hangul letters into an English scan's noise, and took three times as long) and
    Korean with English for a Hangul page; either page's words come through."""
    from adaptsum.ingest.ocr import page_languages, tessdata

    monkeypatch.setenv("ADAPTSUM_OCR_CACHE", str(tmp_path / "ocr-cache"))
    monkeypatch.delenv("ADAPTSUM_OCR_LANGUAGES", raising=False)
    for sample, expected in ((EN_SAMPLE, "eng"), (KO_SAMPLE, "kor+eng")):
        pdf = _with_a_scan(sample, tmp_path / f"scan-{sample.name}", scanned=0, dpi=200)
        with pymupdf.open(pdf) as doc:
            assert page_languages(doc[0], tessdata(pdf)) == expected
        loaded = load_pdf(pdf)
        assert loaded.ocr_pages == [1]
        with pymupdf.open(sample) as src:
            original = set(src[0].get_text().split())
        read = set(loaded.pages[0].page_content.split())
        assert len(read & original) >= 0.6 * len(original), (expected, read)
        hangul = sum("가" <= ch <= "힣" for ch in loaded.pages[0].page_content)
        assert (hangul > 50) == (sample == KO_SAMPLE)


def test_a_title_is_a_title_like_line_or_the_file_name(tmp_path: Path) -> None:
    """A letterhead's row of fields or OCR noise on the first lines is no title: the
    first line that reads like one is, else the file's name."""

    def pdf(name: str, lines: list[str]) -> Path:
        with pymupdf.open() as doc:
            page = doc.new_page()
            for number, line in enumerate(lines):
                page.insert_text((72, 72 + 18 * number), line)
            doc.save(tmp_path / name)
        return tmp_path / name

    fields = ["S78 | 4242-2e2n0 | TELE NC 960-235", "~", "- 3 -"]
    body = "The tires are inflated to 19 psi before the aircraft is returned to service."
    titled = pdf("bulletin.pdf", [*fields, "Oversize Tire Accessory Kit", body])
    assert load_pdf(titled).title == "Oversize Tire Accessory Kit"
    untitled = pdf("service-bulletin-ak-120.pdf", [*fields, "| 2 |", "4414", "@ 12", body])
    assert load_pdf(untitled).title == "service-bulletin-ak-120"


def test_a_korean_table_page_taken_for_latin_keeps_its_hangul(
    tesseract: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mostly figures, the budget form's page 2 scanned is called 'Latin' by Tesseract's
    script detection (confidence 1.3-3.1): read with English alone, its Hangul was lost."""
    from adaptsum.ingest.ocr import page_languages, tessdata

    monkeypatch.setenv("ADAPTSUM_OCR_CACHE", str(tmp_path / "ocr-cache"))
    monkeypatch.delenv("ADAPTSUM_OCR_LANGUAGES", raising=False)
    source = real_pdf("energy-voucher-budget-ko.pdf")
    pdf = _with_a_scan(source, tmp_path / "budget-scan.pdf", scanned=1, dpi=200)
    with pymupdf.open(pdf) as doc:
        assert page_languages(doc[0], tessdata(pdf)) == "kor+eng"
    text = load_pdf(pdf).pages[0].page_content
    assert "바우처" in text.replace(" ", "") and "230,556" in text
