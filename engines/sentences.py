"""Sentence helpers for the engines: particles, what a summary may quote."""

from __future__ import annotations

import re

from adaptsum.ingest.sentences import Sentence, split_sentences
from adaptsum.ingest.terms import has_hangul, key_terms

__all__ = ["Sentence", "key_terms", "split_sentences", "strip_particle"]

_PARTICLES = re.compile(
    r"(이란|란|에서는|에서|으로는|으로|로는|에게|까지|부터|보다|처럼|이나|이며|"
    r"은|는|이|가|을|를|의|에|로|와|과|도|만)$"
)


def strip_particle(word: str) -> str:
    """A Korean word without its trailing particle ('모델은' -> '모델'); others unchanged."""
    return _PARTICLES.sub("", word) if re.search(r"[가-힣]", word) else word


_LETTERS = re.compile(r"[^\W\d_]")
_CODE = re.compile(r"[{};<>|$=\\`]|^\s*[-#/]|\w\(|\)\s*$|--\w|\w_\w")
_DIGITS = re.compile(r"\d+")


def summary_worthy(sentences: list[Sentence]) -> list[Sentence]:
    """The sentences a reader wants in a summary: prose, said once.

    Left out: code and shell fragments (symbols such as ``{ } ; | $ =`` or calls),
    short pieces, lines that are mostly numbers (table rows), and boilerplate that
    repeats across the document with only its numbers changed ("Page 3 report.").
    When nothing is left, the sentences are returned as they were.
    """

    def key(text: str) -> str:
        return _DIGITS.sub("#", " ".join(text.lower().split()))

    counts: dict[str, int] = {}
    for s in sentences:
        counts[key(s.text)] = counts.get(key(s.text), 0) + 1
    out = []
    for s in sentences:
        text = s.text
        visible = len(text.replace(" ", "")) or 1
        prose = len(_LETTERS.findall(text)) / visible >= 0.75
        long_enough = len(text) >= 40 and (len(text.split()) >= 6 or has_hangul(text))
        code = len(_CODE.findall(text)) >= 2
        if prose and long_enough and not code and counts[key(text)] < 3:
            out.append(s)
    return out or sentences
