"""Sentence splitting with offsets: the unit that is searched, quoted and cited.

Indexing embeds every sentence on its own (so a passage whose one sentence answers is
found), and the engines quote the same sentences with the page they stand on: both must
cut a chunk the same way, so there is one splitter, here below the store and the engines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Sentence", "split_sentences"]

# A sentence ends at ., ?, ! or 。 (not inside numbers like 2.5) or at a line break.
_BOUNDARY = re.compile(
    r"(?<![ (][A-Z]\.)(?<=[.!?。！？])(?!\d)\s+|(?<=[。！？])(?=\S)|\n+"  # not after "E."
)
_ABBREVIATION = re.compile(
    r"\b(?:et al|e\.g|i\.e|figs?|tabs?|eqs?|secs?|refs?|ch|chap|vol|pp|cf|vs|approx|resp"
    r"|dr|mr|mrs|ms|prof)\.$",
    re.IGNORECASE,
)
"""Abbreviations a sentence goes on after ("Lee et al. show", "e.g. the", "Fig. b"): a
period after them is not a boundary, or a paper's sentence is quoted in two halves."""
_COINED = re.compile(r"(?<![\w.])[A-Z][a-z]{1,5}\.$")
"""A short capitalised word and a period: an abbreviation a paper coins ("Synth. data",
"Cand. 1") when what follows starts in lower case or with a digit, as a sentence
seldom does. Before a capital it still ends the sentence: "in Seoul. The" and a name
("Bae. We") are far more common than SOLAR's "Synth. Math-Instruct"."""
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\u0e00-\u0e7f]")
"""Kana, Han and Thai letters: scripts written without spaces between words."""
_LETTER = re.compile(r"[^\W\d_]")
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
        if match and "\n" not in match.group():
            if _ABBREVIATION.search(text, pos, end):
                continue
            following = text[match.end() : match.end() + 1]
            if (following.islower() or following.isdigit()) and _COINED.search(text, pos, end):
                continue
        piece = text[pos:end].strip()
        # where words are not spaced (Japanese, Chinese), two letters count as a word
        words = max(len(piece.split()), len(_UNSPACED.findall(piece)) // 2)
        heading = words < 8 and not piece.endswith(_TERMINAL)
        # "86 CHILD_MAX ." (a book's index) or "10.7 billion.": fewer than two words; a
        # table row ("에너지바우처 | 230,556 | 685,606") is one label and its figures
        lettered = sum(1 for w in piece.split() if _LETTER.search(w)) >= 2
        lettered = lettered or " | " in piece or _UNSPACED.search(piece) is not None
        if len(piece) >= _MIN_CHARS and words >= 3 and not heading and lettered:
            start = text.index(piece, pos)
            out.append(Sentence(piece, start, start + len(piece)))
        if match:
            pos = match.end()
    return out
