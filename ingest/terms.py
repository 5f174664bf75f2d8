"""One term extractor for sentence ranking, BM25 retrieval and the refusal check.

Korean words carry particles and endings ("모델은", "모델을"), so text with Hangul is
split by Kiwi (kiwipiepy) into morphemes, keeping the content ones (nouns, foreign
words, numbers, verb and adjective stems). Text without Hangul is split into letter
runs and numbers, the way Kiwi splits Latin script, so an English question matches an
English document's terms without loading Kiwi's model (about 0.7 s) at all.
"""

from __future__ import annotations

import re
import threading

TOKENIZER_VERSION = "3"
"""Bump when tokens change: indexes built from older tokens are then rebuilt."""

_HANGUL = re.compile(r"[\uac00-\ud7a3]")
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


_SUFFIXES = ("ings", "ing", "ied", "ies", "ed", "es", "s", "e")


def stem(term: str) -> str:
    """A Latin word without its inflection ("launched", "launches" -> "launch").

    For matching a question's terms against a passage only ("When did Webb launch?"
    must find "launched"): a crude suffix cut, not a linguistic stemmer, applied to
    words of five letters or more; Korean morphemes and numbers are returned as they are.
    """
    if len(term) < 5 or not term.isascii() or not term.isalpha():
        return term
    for suffix in _SUFFIXES:
        if term.endswith(suffix) and len(term) - len(suffix) >= 4:
            if suffix == "s" and term.endswith("ss"):
                return term
            base = term[: -len(suffix)]
            return base + "y" if suffix in ("ies", "ied") else base
    return term


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


def coverage(terms: set[str], text: str) -> float:
    """Share of `terms` that `text` holds, a word's inflections counted as the word.

    Unweighted, so it ranks passages of one question against each other; the refusal
    check weighs terms by rarity instead.
    """
    if not terms:
        return 0.0
    present = stems(text)
    return sum(stem(t) in present for t in terms) / len(terms)
