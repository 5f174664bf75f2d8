"""Token chunks: size limits, exact offsets, and page spans across page breaks."""

from __future__ import annotations

from pathlib import Path

import pytest

from adaptsum.ingest.chunking import chunk_pages, join_pages, page_at
from adaptsum.ingest.pdf import load_pdf
from adaptsum.providers.tokens import count_tokens

from helpers import EN_SAMPLE, KO_SAMPLE


@pytest.mark.parametrize("pdf", [KO_SAMPLE, EN_SAMPLE])
def test_offsets_slice_the_document_and_pages_match(pdf: Path) -> None:
    pages = load_pdf(pdf).pages
    text, starts, numbers = join_pages(pages)
    chunks = chunk_pages(pages, chunk_size=60, chunk_overlap=20)
    assert len(chunks) > 6
    for chunk in chunks:
        assert text[chunk.char_start : chunk.char_end] == chunk.text
        # LangChain's splitter counts pieces apart, so a joined chunk may run a token or two
        # over at tiny sizes (measured: at most +2 at 60 tokens, none at 400 or 1000).
        assert chunk.tokens == count_tokens(chunk.text) <= 60 + 2
        assert chunk.page_start == page_at(chunk.char_start, starts, numbers)
        assert chunk.page_end == page_at(chunk.char_end - 1, starts, numbers)
        page_texts = [p.page_content for p in pages]
        # Every chunk's first and last words are on the pages it claims.
        assert chunk.text.split()[0] in page_texts[chunk.page_start - 1]
        assert chunk.text.split()[-1] in page_texts[chunk.page_end - 1]
    # Chunks advance through the document and overlap their neighbours.
    assert all(a.char_start < b.char_start for a, b in zip(chunks, chunks[1:], strict=False))
    assert any(a.char_end > b.char_start for a, b in zip(chunks, chunks[1:], strict=False))


def test_chunk_crossing_a_page_break_cites_both_pages() -> None:
    pages = load_pdf(KO_SAMPLE).pages
    chunks = chunk_pages(pages, chunk_size=400, chunk_overlap=50)
    crossing = [c for c in chunks if c.page_start != c.page_end]
    assert crossing, "the Korean sample is laid out so a paragraph runs onto page 2"
    chunk = crossing[0]
    assert (chunk.page_start, chunk.page_end) == (1, 2)
    # The sentence split by the page break is inside this one chunk.
    assert "북한에서는 1월" in chunk.text and "15일을 조선글날로" in chunk.text


def test_notebook_settings_are_one_setting_away() -> None:
    pages = load_pdf(EN_SAMPLE).pages
    small = chunk_pages(pages, chunk_size=400, chunk_overlap=50)
    notebook = chunk_pages(pages, chunk_size=1000, chunk_overlap=200)
    assert len(notebook) < len(small)
    assert max(c.tokens for c in notebook) <= 1000
    assert max(c.tokens for c in notebook) > 400
