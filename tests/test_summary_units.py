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


def test_nothing_worthy_keeps_what_there_is() -> None:
    only = split_sentences("x = compute(a, b); y = other(c); return x + y;")
    assert summary_worthy(only) == only


def test_empty_summary_is_an_error_that_says_why() -> None:
    shape = Shape.from_context(Context(), "en")
    with pytest.raises(AdaptsumError, match="nothing to summarize: no whole sentence"):
        shape_text([], shape, None)
