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


_BIBLIOGRAPHY = re.compile(
    r"^[ \t]*(?:\d+\.?[ \t]+)?(?:references|bibliography|works cited|참고[ \t]*문헌)[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_NEXT_SECTION = re.compile(
    # "A Contributions", "B.1 Large Language Models", "8 Conclusion"
    r"^(?:[A-Z](?:\.\d+)*|\d+(?:\.\d+)*)\.?[ \t]+[A-Z][^\n]{0,60}$"
    r"|^[ \t]*(?i:appendix|appendices|supplementary material|부록)\b[^\n]{0,60}$",
    re.MULTILINE,
)
_CAPTION = re.compile(r"^(?:Table|Figure|Fig\.|Tab\.|표|그림)\s*\d+\s*[:.]", re.IGNORECASE)
"""A table's or figure's caption ("Table 3: Comparison of ..."): it describes what a
summary cannot show."""
_NOTE = re.compile(r"^(?:\d{1,3}\)\s|\(단위|(?:주|자료|출처|note|notes|source)\s*:)", re.IGNORECASE)
"""A footnote ("14) 정부는 ...") or a table's unit, note or source line ("(단위: 백만원)",
"주: ...", "Source: ..."): said about something else, not the document's own line."""
_FRAGMENT = re.compile(r"^[a-z]")
"""A piece that starts in lower case is the rest of a sentence whose start the layout
put elsewhere (DPR's "We" before a table, "see that higher retriever accuracy ..." after)."""
_REFERENCE_ENTRY = re.compile(
    r"\barXiv(?::|\s+preprint)|\bIn Proceedings\b|\bProceedings of the\b|doi\.org/|\bdoi:"
)


def bibliography(text: str) -> list[tuple[int, int]]:
    """Spans of `text` that are a reference list.

    Each runs from a "References" (or "참고문헌") heading to the next section heading
    ("A Contributions", "Appendix"), or to the end: a paper's appendix stays in.
    """
    spans = []
    for heading in _BIBLIOGRAPHY.finditer(text):
        after = _NEXT_SECTION.search(text, heading.end())
        spans.append((heading.end(), after.start() if after else len(text)))
    return spans


def summary_worthy(sentences: list[Sentence], document_text: str = "") -> list[Sentence]:
    """The sentences a reader wants in a summary: prose, said once.

    Left out: code and shell fragments (symbols such as ``{ } ; | $ =`` or calls),
    short pieces, table rows (mostly numbers, or cells joined by " | "), captions,
    footnotes and tables' notes, pieces of a sentence that start in lower case,
    boilerplate that repeats across the document with only its numbers changed
    ("Page 3 report."), and the reference list (a paper's summary once ended on "Ze Liu,
    Han Hu, ... et al. 2023."): sentences inside a bibliography of `document_text` (which
    their offsets point into) or citing arXiv, proceedings or a DOI. When nothing is
    left, the sentences are returned as they were.
    """
    spans = bibliography(document_text) if document_text else []

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
        cited = any(start <= s.start < end for start, end in spans)
        cited = cited or _REFERENCE_ENTRY.search(text) is not None
        piece = any(p.match(text) for p in (_CAPTION, _NOTE, _FRAGMENT)) or " | " in text
        if prose and long_enough and not code and not cited and not piece and counts[key(text)] < 3:
            out.append(s)
    return out or sentences
