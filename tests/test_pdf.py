"""PDF loading: page documents with metadata, normalised text, titles."""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest

from adaptsum.ingest.files import file_sha256
from adaptsum.ingest.pdf import load_pdf, normalise

from helpers import EN_SAMPLE, KO_SAMPLE


def test_page_documents_carry_metadata() -> None:
    loaded = load_pdf(KO_SAMPLE)
    assert loaded.total_pages == 2 and len(loaded.pages) == 2
    for number, page in enumerate(loaded.pages, start=1):
        meta = page.metadata
        assert meta["source"] == str(KO_SAMPLE.resolve())
        assert meta["sha256"] == file_sha256(KO_SAMPLE)
        assert meta["page"] == number
        assert meta["total_pages"] == 2
        assert meta["title"] == "한글의 역사와 원리"


def test_korean_wraps_are_rejoined_and_jamo_kept() -> None:
    text = "\n".join(p.page_content for p in load_pdf(KO_SAMPLE).pages)
    # Sentences the layout wrapped mid-word come back whole.
    assert "해례본은 1997년 유네스코 세계기록유산으로 등재되었다." in text
    # Compatibility jamo stay as written (NFKC would turn them into conjoining jamo).
    assert "ㄱ, ㄴ, ㅁ, ㅅ, ㅇ" in text
    assert "사람(ㅣ)" in text


@pytest.mark.parametrize(
    ("first", "second", "joined"),
    [
        (
            "이 연구에서 확인한 바에 따르면 초기 단계에서 실패하는 경우가",
            "많았다. 그러나 후기 단계는 달랐다.",
            "실패하는 경우가 많았다.",
        ),
        (
            "국가재정법에 따른 보증채무와 그 밖의 여러 가지 우",
            "발부채를 함께 관리한다.",
            "여러 가지 우발부채를 함께",
        ),
    ],
)
def test_a_korean_line_break_is_a_space_only_between_words(
    tmp_path: Path, first: str, second: str, joined: str
) -> None:
    """A word-final syllable list once decided: "경우가" ends in none of its syllables, so
    "경우가많았다" came out as one word. Kiwi's spacing decides at the break."""
    path = tmp_path / "wrapped.pdf"
    with pymupdf.open() as doc:
        page = doc.new_page()
        page.insert_text((72, 100), first, fontname="korea", fontsize=11)
        page.insert_text((72, 115), second, fontname="korea", fontsize=11)
        doc.save(path)
    assert joined in load_pdf(path).pages[0].page_content


def test_english_paragraphs_are_single_lines() -> None:
    text = load_pdf(EN_SAMPLE).pages[0].page_content
    assert (
        "launched on 25 December 2021 on an Ariane 5 rocket from Kourou in French Guiana." in text
    )
    assert "  " not in text


def test_normalise_rejoins_hyphenation_and_collapses_space() -> None:
    assert normalise("fine-\ntuning  of\u00a0the   model") == "finetuning of the model"
    assert normalise("Qwen2.5-\n72B") == "Qwen2.5-\n72B"  # a real hyphen before a digit stays
    assert normalise("ﬁne") == "fine"
    assert normalise("a\n\n\n\nb") == "a\n\nb"
    # arXiv's margin stamp, read into the middle of a sentence of the DPR paper
    stamped = "multiple open-domain arXiv:2004.04906v3 [cs.CL] 30 Sep 2020 QA datasets"
    assert normalise(stamped) == "multiple open-domain QA datasets"


def test_title_falls_back_to_first_line(tmp_path: Path) -> None:
    path = tmp_path / "untitled.pdf"
    with pymupdf.open() as doc:
        page = doc.new_page()
        page.insert_text((72, 72), "Quarterly Report", fontsize=20)
        page.insert_text((72, 120), "Revenue grew in the third quarter.", fontsize=11)
        doc.new_page()  # blank: skipped and counted
        doc.save(path)
    loaded = load_pdf(path)
    assert loaded.title == "Quarterly Report"
    assert loaded.skipped_pages == 1
    assert [p.metadata["page"] for p in loaded.pages] == [1]


@pytest.mark.corpus
def test_corpus_pages_load(corpus: list[Path]) -> None:
    for pdf in corpus:
        loaded = load_pdf(pdf)
        assert loaded.pages, pdf
        assert loaded.title
        assert all(p.page_content.strip() for p in loaded.pages)
