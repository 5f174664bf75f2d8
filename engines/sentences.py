"""Sentence splitting with offsets, for quoting evidence with the page it stands on."""

from __future__ import annotations

import re
from dataclasses import dataclass

from adaptsum.ingest.terms import key_terms

__all__ = ["Sentence", "key_terms", "split_sentences", "strip_particle", "term_coverage"]

# A sentence ends at ., ?, ! or 。 (not inside numbers like 2.5) or at a line break.
_BOUNDARY = re.compile(r"(?<![ (][A-Z]\.)(?<=[.!?。！？])(?!\d)\s+|\n+")  # not after "E."
_MIN_CHARS = 12
_TERMINAL = tuple(".!?。！？:;)\"'”’")


@dataclass(frozen=True)
class Sentence:
    """A sentence and where it starts and ends inside the text it came from."""

    text: str
    start: int
    end: int


def split_sentences(text: str) -> list[Sentence]:
    """Sentences of `text` with character offsets.

    Headings, titles and labels are left out: fragments under a quotable length, and
    short lines that end without sentence punctuation. They share a question's words
    without saying anything about them.
    """
    out: list[Sentence] = []
    pos = 0
    for match in [*_BOUNDARY.finditer(text), None]:
        end = match.start() if match else len(text)
        piece = text[pos:end].strip()
        words = len(piece.split())
        heading = words < 8 and not piece.endswith(_TERMINAL)
        if len(piece) >= _MIN_CHARS and words >= 3 and not heading:
            start = text.index(piece, pos)
            out.append(Sentence(piece, start, start + len(piece)))
        if match:
            pos = match.end()
    return out


_PARTICLES = re.compile(
    r"(이란|란|에서는|에서|으로는|으로|로는|에게|까지|부터|보다|처럼|이나|이며|"
    r"은|는|이|가|을|를|의|에|로|와|과|도|만)$"
)


def strip_particle(word: str) -> str:
    """A Korean word without its trailing particle ('모델은' -> '모델'); others unchanged."""
    return _PARTICLES.sub("", word) if re.search(r"[가-힣]", word) else word


def term_coverage(terms: set[str], text: str) -> float:
    """Share of `terms` that occur in `text` (0 when there are no terms)."""
    if not terms:
        return 0.0
    lowered = text.lower()
    return sum(term in lowered for term in terms) / len(terms)
