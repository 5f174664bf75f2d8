"""One term extractor for sentence ranking, BM25 retrieval and the refusal check.

Korean words carry particles and endings ("모델은", "모델을"), so text with Hangul is
split by Kiwi (kiwipiepy) into morphemes, keeping the content ones (nouns, foreign
words, numbers, verb and adjective stems). Text without Hangul is split into letter
runs and numbers, the way Kiwi splits Latin script, so an English question matches an
English document's terms without loading Kiwi's model (about 0.7 s) at all.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable

TOKENIZER_VERSION = "3"
"""Bump when tokens change: indexes built from older tokens are then rebuilt."""

_HANGUL = re.compile(r"[\uac00-\ud7a3]")


def has_hangul(text: str) -> bool:
    """Whether `text` holds a Hangul syllable: Korean, for Kiwi and the glossary."""
    return _HANGUL.search(text) is not None


_LATIN = re.compile(r"[^\W\d_]+|\d+(?:\.\d+)?")
_CONTENT_TAGS = ("NN", "NR", "SL", "SN", "SH", "VV", "VA", "XR")
STOPWORDS = frozenset(
    # question and function words that say nothing about the topic (Korean forms are
    # Kiwi morphemes, so endings are already gone)
    "무엇 언제 누구 어디 얼마 얼마나 몇 어떻 어떤 왜 무슨 것 수 있 하 되 이 그 저 등 때 "
    # counters and generic nouns a follow-up uses for what it refers to ("그 사람")
    "번 째 개 명 분 가지 사람 경우 정도 때문 "
    "what when who whom whose which where why how much many is are was were be been do does "
    "did the a an of to in on for and or by with about from as at it its this that these "
    "those can could will would should may might has have had not no "
    # request verbs: what is asked for, not what it is about
    "summarize summarise summary explain describe tell show give list 요약 설명 정리 알려주".split()
)

_kiwi_lock = threading.Lock()
_kiwi_model = None


def _kiwi():
    """The process's Kiwi model, loaded once even when parallel graders ask at once."""
    global _kiwi_model
    with _kiwi_lock:
        if _kiwi_model is None:
            from kiwipiepy import Kiwi

            # Without the multi-word dictionary (proper nouns of several words, which a
            # BM25 term and the refusal check never need whole) Kiwi loads in about a
            # third of the time: it was most of a whole `adaptsum ask`.
            model = Kiwi(load_multi_dict=False)
            model.tokenize("준비")  # Kiwi finishes loading on its first call
            _kiwi_model = model
        return _kiwi_model


def warm_up(text: str = "한") -> None:
    """Load Kiwi in the background when `text` will need it, so the first call is quick."""
    if _kiwi_model is None and _HANGUL.search(text):
        threading.Thread(target=_kiwi, daemon=True, name="kiwi-warm-up").start()


def space_at_wrap(left: str, right: str) -> bool:
    """Whether Korean text wrapped from `left` to `right` had a space at the line break.

    A PDF does not say: "경우가" + "많았다" is two words, "우" + "발부채" one. Kiwi's
    spacing model reads the two words around the break; only its choice at the break
    counts (it may space elsewhere too: "우발 부채").
    """
    before = left.rsplit(" ", 1)[-1]
    spaced = _kiwi().space(before + right.split(" ", 1)[0])
    seen = 0
    for char in spaced:
        if seen == len(before):
            return char == " "
        seen += char != " "
    return False


def respace(text: str) -> str:
    """Korean text with the spaces that OCR ran together put back, by Kiwi's spacing model.

    PyMuPDF's OCR joins the words of a Hangul line ('한글은조선의제4대임금인'): each
    syllable's box touches the next. On the Korean sample scanned, 14 of its 229 words
    came through; with Kiwi's spaces, 180. Spaces already there are kept, and lines
    without Hangul are left as they are.
    """
    if not _HANGUL.search(text):
        return text
    model = _kiwi()
    return "\n".join(
        _keep_figures_whole(line, model.space(line, reset_whitespace=False))
        if _HANGUL.search(line)
        else line
        for line in text.split("\n")
    )


def _keep_figures_whole(line: str, spaced: str) -> str:
    """Kiwi's `spaced` line with the page's own spaces, and figures left whole.

    Kiwi's model splits a number from its unit ('2,100 만 원', '3.5 %'), which is not
    how Korean writes figures nor what the page shows, and it can drop a space the page
    has ('3 개 월' -> '3개 월') even with `reset_whitespace=False`. Walking both strings
    tells the spaces it inserted from the page's: the page's are all kept, and an
    inserted one between a digit and the Hangul or '%' after it (a unit or counter:
    '3 장', '5 개') or after the ordinal prefix '제' ('제 4대') is left out.
    """
    kept: list[str] = []
    at = 0
    for position, char in enumerate(spaced):
        while at < len(line) and line[at].isspace() and not char.isspace():
            kept.append(line[at])  # a space of the page's that Kiwi dropped
            at += 1
        if at < len(line) and char == line[at]:
            at += 1
        elif char == " " and kept:
            following = spaced[position + 1 : position + 2]
            if kept[-1].isdigit() and (following == "%" or _HANGUL.match(following)):
                continue  # a figure and its unit or counter: '2,100만원', '3장', '5개'
            ordinal = kept[-1] == "제" and (len(kept) < 2 or not kept[-2].isalnum())
            if ordinal and following.isdigit():
                continue  # '제4대', '제3조': the prefix of an ordinal
        kept.append(char)
    if line[at:].strip():  # Kiwi changed a character: the walk lost its place
        return spaced
    return "".join(kept) + line[at:]


def tokenize(text: str) -> list[str]:
    """Content terms, lower-cased: Kiwi morphemes for Hangul text, else words and numbers."""
    if not _HANGUL.search(text):
        return _LATIN.findall(text.lower())
    return [
        token.form.lower()
        for token in _kiwi().tokenize(text)
        if token.tag.startswith(_CONTENT_TAGS) and token.form.strip()
    ]


def key_terms(text: str) -> set[str]:
    """The content terms of a question: its terms without question and function words."""
    return {
        t
        for t in tokenize(text)
        if t not in STOPWORDS and (len(t) > 1 or t.isdigit() or _HANGUL.match(t))
    }


def korean_words(text: str) -> set[str]:
    """The Korean content words of `text` whole, as a dictionary would list them.

    Kiwi's morphemes are finer than words: it splits loanwords and compounds ("레이어"
    into 레이 + 어, "위키백과" into 위키 + 백과), which no dictionary knows. Adjacent
    Hangul nouns of one word are joined back, with their noun suffixes ("가중치",
    "초기화"); particles, endings and verbs stay off.
    """
    if not _HANGUL.search(text):
        return set()
    words: set[str] = set()
    start = end = -1
    position = -1

    def close() -> None:
        if start >= 0 and (word := text[start:end]) not in STOPWORDS:
            words.add(word)

    for token in _kiwi().tokenize(text):
        joined = token.word_position == position and token.start == end
        noun = token.tag.startswith(_KOREAN_CONTENT) and bool(_HANGUL.match(token.form))
        if noun or (joined and start >= 0 and token.tag == "XSN"):
            if not joined:
                close()
                start = token.start
            end, position = token.start + token.len, token.word_position
        else:
            close()
            start = end = -1
    close()
    return words


_KOREAN_CONTENT = ("NNG", "NNP", "XR")
"""Nouns and roots only: a verb stem without its ending ("걸리", "찾") and bound nouns
("데", "수") are not words the encoder can translate, and matched nonsense."""

_stemmers = threading.local()


def _snowball() -> Callable[[str], str]:
    """This thread's Snowball English stemmer (pure Python, imported in about 15 ms).

    One per thread: a stemmer keeps the word it works on in itself, so the graders
    running in parallel would otherwise stem into each other's words (an IndexError,
    or worse, a wrong stem).
    """
    stem_word = getattr(_stemmers, "english", None)
    if stem_word is None:
        import snowballstemmer

        stem_word = _stemmers.english = snowballstemmer.stemmer("english").stemWord
    return stem_word


@functools.lru_cache(maxsize=1)
def _lemmatize() -> Callable[[str], str]:
    """The English dictionary lemmatizer (simplemma), for irregular forms a stemmer misses.

    Its bundled dictionary takes about 0.2 s to read on the first call, so it is used
    only for the question terms the stems did not find (see `missing`): an answered
    English question usually never loads it. Nothing downloads: the data is in the wheel.
    """
    import simplemma

    return functools.partial(simplemma.lemmatize, lang="en")


@functools.lru_cache(maxsize=65536)
def stem(term: str) -> str:
    """A Latin word's Snowball stem, shared by its regular inflections and derivations.

    For matching a question's terms against a passage ("When did Webb launch?" must
    find "launched", "original" must find "originally"): a matching key, not always a
    word. Korean morphemes (Kiwi already removed their endings) and numbers are
    returned as they are.
    """
    if not term.isascii() or not term.isalpha():
        return term
    return _snowball()(term.lower())


@functools.lru_cache(maxsize=65536)
def lemma_stem(term: str) -> str:
    """The stem of a Latin word's dictionary lemma: irregular forms joined too.

    A suffix rule cannot tell that "wrote" and "written" are "write"; the dictionary can.
    """
    if not term.isascii() or not term.isalpha():
        return term
    return _snowball()(_lemmatize()(term.lower()).lower())


def missing(terms: set[str], text: str) -> set[str]:
    """The `terms` that `text` does not hold in any inflected form.

    By stem first; the few terms left are looked up again by dictionary lemma, so
    "Who wrote the original Bourne shell?" finds "originally written by Stephen Bourne".
    """
    words = tokenize(text)
    present = {stem(w) for w in words}
    absent = {t for t in terms if stem(t) not in present}
    if any(t.isascii() and t.isalpha() for t in absent):
        lemmas = {lemma_stem(w) for w in words if w.isascii() and w.isalpha()}
        absent = {t for t in absent if lemma_stem(t) not in lemmas}
    return absent


FRAME_WORDS = frozenset(
    # what kind of answer is wanted about a word (its meaning, its expansion), not
    # something a passage that answers must repeat: "What does DUS stand for?" is
    # answered by "depth up-scaling (DUS)"
    "acronym abbreviation abbreviate stand mean meaning 뜻 의미 약자 약어 줄임말 "
    # the document itself, named in the question ("in the SOLAR paper", "이 논문에서")
    "paper document article report brief book 논문 문서 보고서 자료 책".split()
)
"""Question words the refusal check does not require a passage to hold."""


def is_frame(term: str) -> bool:
    """Whether `term` (any inflection) names the answer's kind or the document itself."""
    return stem(term) in _frame_stems()


@functools.lru_cache(maxsize=1)
def _frame_stems() -> frozenset[str]:
    return frozenset(stem(w) for w in FRAME_WORDS)


_NEUTRAL = re.compile(r"[a-z0-9][a-z0-9.]*")


def neutral_terms(text: str) -> list[str]:
    """The key terms written in Latin letters or digits, which other languages share.

    A Korean question about an English paper names "SOLAR", "GSM8K" or "2023" as the
    paper does; these are the only words BM25 can match across the two languages.
    """
    return sorted(t for t in key_terms(text) if _NEUTRAL.fullmatch(t))


def stems(text: str) -> set[str]:
    """The stems of `text`'s words: what a question's term is looked up in."""
    return {stem(t) for t in tokenize(text)}


Translations = dict[str, list[str]]
"""A question term's words in a document of another language (see `store.glossary`)."""


def coverage(terms: set[str], text: str, translations: Translations | None = None) -> float:
    """Share of `terms` that `text` holds, a word's inflections counted as the word.

    A term with `translations` counts when any of them is held. Unweighted, so it ranks
    passages of one question against each other; the refusal check weighs terms by
    rarity instead.
    """
    if not terms:
        return 0.0
    present = stems(text)
    translations = translations or {}
    return sum(
        stem(t) in present or any(stem(w) in present for w in translations.get(t, ()))
        for t in terms
    ) / len(terms)
