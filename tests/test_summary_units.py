"""Extractive summaries quote prose said once, and an empty one is an error."""

from __future__ import annotations

import pytest

from adaptsum.engines.sentences import split_sentences, summary_worthy
from adaptsum.engines.summary import Shape, shape_text
from adaptsum.errors import AdaptsumError
from adaptsum.state.context import Context

PROSE = "The mirror is made of eighteen hexagonal segments of gold-coated beryllium."
KOREAN = "에너지바우처는 동절기와 하절기에 에너지 비용을 지원하는 사업으로 저소득층을 돕습니다."


def test_code_table_rows_and_repeated_boilerplate_are_left_out() -> None:
    boilerplate = [
        f"This page belongs to the quarterly operations report number {n} of the company."
        for n in range(1, 6)
    ]
    text = "\n".join(
        [
            PROSE,
            *boilerplate,
            "declare -A map; map[key]=value; echo ${map[key]} for the whole array",
            "| 74.20 | 71.08 | 88.16 | 66.21 | 64.75 | 83.58 | 71.43 |",
            'if [ -f "$file" ]; then source "$file"; fi # read the settings file',
            KOREAN,
        ]
    )
    kept = [s.text for s in summary_worthy(split_sentences(text))]
    assert kept == [PROSE, KOREAN]


def test_captions_notes_table_rows_and_sentence_pieces_are_left_out() -> None:
    text = "\n".join(
        [
            "Table 3: Comparison of different training schemes on the development set.",
            "see that higher retriever accuracy typically leads to better final results.",
            "표 2. 에너지바우처 사업의 연도별 예산과 지원 가구 수를 정리한 표입니다.",
            "14) 정부는 파생상품의 계약에 따라 발생된 권리와 의무를 공정가액으로 평가한다.",
            "주: 최소운영수입보장 및 중요한 계약사항 규모는 보고서에 명시된 것만 산정.",
            "⑨ 우발자산 | 자원의 유입가능성이 매우 높은 압수품 및 몰수품 등이 해당된다.",
            PROSE,
        ]
    )
    assert [s.text for s in summary_worthy(split_sentences(text))] == [PROSE]


def test_nothing_worthy_keeps_what_there_is() -> None:
    only = split_sentences("x = compute(a, b); y = other(c); return x + y;")
    assert summary_worthy(only) == only


def test_empty_summary_is_an_error_that_says_why() -> None:
    shape = Shape.from_context(Context(), "en")
    with pytest.raises(AdaptsumError, match="nothing to summarize: no whole sentence"):
        shape_text([], shape, None)


def test_a_sentence_said_twice_is_quoted_once() -> None:
    """SOLAR's page 5 has the same caption sentence twice; a summary quoted it twice in a row."""
    import numpy as np

    from adaptsum.engines.summary import _mmr

    caption = np.array([1.0, 0.0], dtype=np.float32)
    other = np.array([0.0, 1.0], dtype=np.float32)
    units = [
        {"text": "We name ablated models with the 'DPO' prefix.", "vector": caption, "page": 5},
        {"text": "We name ablated models  with the 'DPO' prefix.", "vector": caption, "page": 5},
        {"text": "Depth up-scaling removes 8 layers.", "vector": other, "page": 2},
    ]
    picked = _mmr(units, keep=2, focus=caption)
    assert [u["page"] for u in picked] == [5, 2]
    assert len(_mmr(units, keep=3, focus=caption)) == 2  # only two different sentences


@pytest.mark.parametrize(
    "text",
    [
        "Lee et al. show that the model keeps its accuracy on every task.",
        "We use several tricks, e.g. dropping whole layers in every block.",
        "The two models reach 71 and 74 points resp. on the two benchmarks.",
        "Prof. Kim and Dr. Park measured the same loss on both test sets.",
        "Results on Synth. data beat those of Cand. 1 by two points.",  # coined
    ],
)
def test_a_sentence_goes_on_after_an_abbreviation(text: str) -> None:
    """A paper's "et al." or "e.g." ended the sentence, so half of it was quoted."""
    follow = "It is fast enough to use on a laptop."
    assert [s.text for s in split_sentences(f"{text} {follow}")] == [text, follow]


def test_a_capitalised_word_ends_a_sentence_before_a_capital() -> None:
    text = "The tower stands in Seoul. Its top floor is open to visitors at night."
    assert len(split_sentences(text)) == 2


def test_a_papers_reference_list_is_not_summarized_but_its_appendix_is() -> None:
    """An extractive summary of SOLAR once ended on author lists and paper titles from its
    references (it now leaves out 121 of its 378 candidate sentences, DPR 90 of 378)."""
    text = (
        "We present a model that reads long documents and answers questions about them.\n"
        "Our experiments show that the model is both faster and more accurate than before.\n"
        "References\n"
        "Ze Liu, Han Hu, Yutong Lin, and many other authors wrote this paper in 2023.\n"
        "Scaling language models: methods, analysis and insights from training large models.\n"
        "A Contributions\n"
        "The first author designed the model and wrote most of the training code for it.\n"
        "Other work appeared as an arXiv preprint and was cited by many later studies.\n"
    )
    kept = [s.text for s in summary_worthy(split_sentences(text), text)]
    assert kept == [
        "We present a model that reads long documents and answers questions about them.",
        "Our experiments show that the model is both faster and more accurate than before.",
        "The first author designed the model and wrote most of the training code for it.",
    ]


def test_a_books_index_entries_are_not_sentences() -> None:
    """The Bash manual's index ("86 CHILD_MAX .") was quoted as the answer, ahead of the
    sentence on page 96 that gives the value. Text without spaces keeps its sentences."""
    text = (
        "86 CHILD_MAX .\n53 builtin .\nThe value is 10.7 billion.\n"
        "東京タワーの高さは333メートルです。\n"
        "에너지바우처 | 230,556 | 190,963 | 685,606 | 494,643 | 259.0"
    )
    assert [s.text for s in split_sentences(text)] == [
        "The value is 10.7 billion.",
        "東京タワーの高さは333メートルです。",
        "에너지바우처 | 230,556 | 190,963 | 685,606 | 494,643 | 259.0",  # a row holds answers
    ]
