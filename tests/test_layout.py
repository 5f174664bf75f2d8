"""Layout on real PDFs: table rows stay rows, columns read in order, text normalised."""

from __future__ import annotations

import pytest

from adaptsum.ingest.pdf import load_pdf

from realdocs import real_pdf


def _pages(name: str) -> dict[int, str]:
    return {p.metadata["page"]: p.page_content for p in load_pdf(real_pdf(name)).pages}


@pytest.mark.corpus
def test_table_rows_keep_their_cells_on_one_line() -> None:
    """SOLAR's Table 3 (page 5): one row per line, cells in column order."""
    lines = _pages("solar-10.7b-paper-en.pdf")[5].split("\n")
    row = next(line for line in lines if line.startswith("SFT v4 |"))
    assert row == "SFT v4 | O | ✗ | O | 70.88 | 67.32 | 85.87 | 65.87 | 58.97 | 82.48 | 64.75"
    header = next(line for line in lines if line.startswith("Model | Alpaca-GPT4"))
    assert header.endswith("| TruthfulQA | Winogrande | GSM8K")
    # The caption under the table is prose again, one paragraph.
    assert any(
        line.startswith("Table 3: Ablation studies") and "shown in bold." in line for line in lines
    )


@pytest.mark.corpus
def test_korean_table_rows_and_split_words() -> None:
    """The Korean brief: a table header row, and words the layout broke across lines."""
    page = _pages("fis-contingent-liabilities-ko.pdf")[4]
    assert "구분 | 주요 기준 | 설명" in page.split("\n")
    # "우" ends one line and "발부채" starts the next: one word again, no space.
    assert "규칙」에서 우발부채 또는 우발상황 등을 정의하고" in page
    assert "관련 예규로서" in page


@pytest.mark.corpus
def test_two_column_paragraphs_read_in_order() -> None:
    """DPR page 2: lines of each column join into paragraphs, and a paragraph that runs
    from the bottom of the left column to the top of the right one stays whole, after
    the left column's earlier paragraphs."""
    page = _pages("dpr-retrieval-paper-en.pdf")[2]
    contributions = page.index("Our contributions are twofold. First, we demonstrate that")
    across = page.index(
        "a large corpus of diversified topics. More specifically, we assume the extractive "
        "QA setting, in which the answer is restricted to a span"
    )
    assert contributions < across
    # SOLAR page 5: the left column's last line and the right column's first line.
    solar = _pages("solar-10.7b-paper-en.pdf")[5]
    assert "When we add the OpenOrca dataset to train the second ablated model, ‘SFT v2’" in solar


@pytest.mark.corpus
def test_ligatures_and_line_end_hyphens_are_undone() -> None:
    page = _pages("dpr-retrieval-paper-en.pdf")[2]
    assert "the task is to find a span" in page  # "ﬁ" ligature in the text layer
    assert "\ufb01" not in page
    assert "First, we demonstrate that" in page  # "demon-" / "strate" at a line end
    # A compound broken at its hyphen keeps the hyphen and loses the line break.
    assert "Synth. Math-Instruct dataset is beneficial" in _pages("solar-10.7b-paper-en.pdf")[5]
