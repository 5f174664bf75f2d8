"""The offline engine: multilingual embeddings decide relevance; answers quote the documents.

No model writes anything here. Relevance is the similarity of a chunk's best sentence
to the question (multilingual-e5 matches across languages, so no translation call is
needed); an answer is the best evidence sentences, quoted in the document's language,
each with its page, introduced in the asker's language.
"""

from __future__ import annotations

import hashlib
import math
import re

import numpy as np
from langchain_core.messages import AnyMessage, HumanMessage

from adaptsum.engines.base import Answer, Classification, Resources
from adaptsum.engines.language import QUOTED_INTRO, REFUSAL, phrase
from adaptsum.engines.sentences import Sentence, key_terms, split_sentences
from adaptsum.ingest.terms import coverage
from adaptsum.state.graph_state import (
    Citation,
    Grade,
    Retrieved,
    Usage,
    citation,
    not_relevant,
)
from adaptsum.store.catalog import ChunkRecord, DocumentRecord

_SUMMARY = re.compile(
    r"요약|간추려|정리해|개요를|summar|overview|outline|tl;?dr|in a nutshell", re.IGNORECASE
)
_SUMMARIZATION_AS_TOPIC = re.compile(
    r"summari[sz](ation|er)s?|자동\s*요약|요약\s*(기능|기술|모델|시스템|도구|성능)", re.IGNORECASE
)
"""Summarization named as a subject ("how much time did automatic summarization save?"),
not asked for: such a question is about the document's content like any other."""
_WHOLE_DOCUMENT = re.compile(
    r"주요\s*기여|핵심\s*기여|결론은|결론이|결론을|주요\s*내용|핵심\s*내용|무엇에\s*관한|"
    r"무슨\s*내용|main\s+contribution|key\s+contribution|conclusion|key\s+(points|findings|"
    r"takeaways)|main\s+(points|ideas|findings)|what\s+is\s+(this|the)\s+(paper|document|"
    r"article|report)\s+about",
    re.IGNORECASE,
)
_FOLLOW_UP = re.compile(
    r"^(그|그것|그거|그게|그건|그걸|그럼|그러면|이것|이건|이거|저것|거기|그곳|그때)(?=\s|은|는|이|가|을|를|의|도|$)|"
    r"\b(it|its|they|them|their|he|she|him|his|her)\b|"
    r"^(and|so|but|what about|how about)?\s*(that|this|those|these|there|then)\b|"
    r"\b(that|this|those|these)\s*[?.!]*$",
    re.IGNORECASE,
)
"""A question that leans on the previous one: a personal pronoun anywhere ("When was it
launched?"), or a demonstrative standing alone, at the start ("Then what?", "That one
too?") or at the end ("What about this?"). A demonstrative before a noun ("this paper")
or a relative "that" ("the rocket that launched it") is the question's own."""


class ExtractiveEngine:
    """Embedding-based grading and quoted answers; makes no model calls."""

    name = "extractive"

    def __init__(self, resources: Resources) -> None:
        self.ctx = resources.ctx
        self.index = resources.index
        self.embeddings = resources.index.embeddings

    def classify(self, request: str, language: str) -> Classification:
        """Keyword rules in Korean and English; `mode` in the input overrides them."""
        if match := _SUMMARY.search(_SUMMARIZATION_AS_TOPIC.sub(" ", request)):
            return Classification("summary", f"asks for a summary ('{match.group()}')", {})
        if match := _WHOLE_DOCUMENT.search(request):
            return Classification(
                "whole_document", f"needs the whole document ('{match.group()}')", {}
            )
        return Classification("question", "a specific question: no summary keyword", {})

    def contextualize(self, question: str, history: list[AnyMessage]) -> tuple[str, Usage]:
        """Prepend the previous question when this one leans on it ('그건?', 'what about it?')."""
        earlier = [m for m in history if isinstance(m, HumanMessage)]
        if len(earlier) < 2 or not _FOLLOW_UP.search(question.strip()):
            return question, {}
        previous = str(earlier[-2].content)
        return f"{previous} {question}", {}

    def translate(self, text: str, source: str, target: str) -> tuple[str, Usage]:
        """No call: the multilingual embeddings match across languages."""
        return text, {}

    def grade(
        self,
        question: str,
        language: str,
        hit: Retrieved,
        chunk: ChunkRecord,
        document: DocumentRecord,
    ) -> tuple[Grade, Usage]:
        """Relevant when the chunk's best sentence is similar enough to the question."""
        ranked = self.rank_sentences(question, chunk.chunk_id, chunk.text)
        threshold = self.threshold(language, document)
        if not ranked:  # headings, labels or table cells only: nothing this engine can quote
            reason = "no sentence to quote (only headings, labels or short lines)"
            return not_relevant(hit, chunk, reason), {}
        best, similarity = ranked[0]
        # The similarity the rerank ranked by (`with_gloss`): across languages, with the
        # glossary, a Korean question is also compared with its gloss in the document's words.
        across = language != document.language
        if across and (gloss := self.index.gloss(question, document.revision)):
            glossed = self.rank_sentences(gloss, chunk.chunk_id, chunk.text)
            similarity = with_gloss(similarity, max(sim for _, sim in glossed))
            measure = "best sentence similarity, with the gloss,"
        else:
            measure = "best sentence similarity"
        relevant = similarity >= threshold
        reason = f"{measure} {similarity:.3f} {'>=' if relevant else '<'} threshold {threshold:.3f}"
        # Evidence, not similarity alone: the passage must hold the question's rare terms.
        # Across languages only the terms both scripts share can be checked: the Latin
        # names and numbers inside a Korean question ("GPU", "FAISS", "2,100만" aside).
        terms = None if language == document.language else _cross_terms(question)
        if terms is None and language in UNSPACED:
            terms = set()  # no word boundaries to find its terms by: similarity decides
        if relevant and terms != set() and self.ctx.min_term_support > 0:
            support, missing = self.term_support(question, chunk.text, terms, document.revision)
            if support < self.ctx.min_term_support:
                relevant = False
                reason += (
                    f", but term support {support:.2f} < {self.ctx.min_term_support:.2f} "
                    f"(missing: {', '.join(sorted(missing)[:5])})"
                )
        return (
            Grade(
                chunk_id=chunk.chunk_id,
                doc_id=chunk.doc_id,
                page_start=chunk.page_start,
                page_end=chunk.page_end,
                score=hit["score"],
                relevance=int(np.clip(round((similarity - 0.70) / 0.03) + 1, 1, 10)),
                relevant=relevant,
                evidence=best.text,
                evidence_page=document.page_of(chunk.char_start + best.start),
                reason=reason,
            ),
            {},
        )

    def answer(
        self,
        question: str,
        language: str,
        evidence: list[Grade],
        chunks: dict[str, ChunkRecord],
        documents: dict[str, DocumentRecord],
    ) -> Answer:
        """The best sentences above the threshold, quoted with their pages, best first.

        `language` is the reply's (its intro line); the threshold and the terms follow the
        question's own language, as grading's did, so fixing the reply's language does not
        change which sentences are quoted.
        """
        from adaptsum.ingest.language import detect_language
        from adaptsum.ingest.terms import neutral_terms, stem, stems

        asked = detect_language(question)
        scored: list[tuple[float, bool, str, Grade, tuple[int, str], set[str]]] = []
        for grade in evidence:
            document = documents[grade["doc_id"]]
            chunk = chunks[grade["chunk_id"]]
            threshold = self.threshold(asked, document)
            terms = key_terms(question) if asked == document.language else neutral_terms(question)
            term_stems = {stem(t) for t in terms}
            for sentence, similarity in self.rank_sentences(question, chunk.chunk_id, chunk.text):
                above = similarity >= threshold or sentence.text == grade["evidence"]
                if above or similarity >= threshold - ANSWER_MARGIN:
                    at, end = chunk.char_start + sentence.start, chunk.char_start + sentence.end
                    page = (document.page_of(at), document.pages_of(at, end))
                    held = stems(sentence.text) & term_stems
                    scored.append((similarity, above, sentence.text, grade, page, held))
        # Terms that few of these sentences hold say most about which one answers: in
        # "When did Webb launch?" on the Webb article, "launch" rather than "Webb".
        count = len(scored)
        df: dict[str, int] = {}
        for *_, held in scored:
            for t in held:
                df[t] = df.get(t, 0) + 1
        weight = {t: math.log((count + 1) / (n + 0.5)) for t, n in df.items()}
        total = sum(weight.values()) or 1.0
        # "How many layers…?" is answered by the sentence with the figure ("the 32-layer
        # Llama 2 architecture"), which e5 ranks no closer than one about layers in general.
        asks_for_a_figure = bool(_ASKS_FOR_A_NUMBER.search(question))
        given = _figures(question)  # "2024년 예산은 얼마?": not the answer
        candidates: list[tuple[float, str, Grade, tuple[int, str]]] = []
        for similarity, above, text, grade, page, held in scored:
            cover = sum(weight[t] for t in held) / total
            if above or cover > 0:
                score = similarity + ANSWER_TERM_WEIGHT * cover
                if asks_for_a_figure and _figures(text) - given:
                    score += NUMBER_WEIGHT
                candidates.append((score, text, grade, page))
        if not asks_for_a_figure and not _MEASURE.search(question):
            # "DPR | 78.4 | 79.4 | ..." holds the name asked about, and says nothing of it
            candidates = [c for c in candidates if not _numeric_row(c[1])] or candidates
        # "이 문서는 한글이 만들어진 배경과 ... 정리한 자료이다." names the question's terms
        # while saying only what the document is about
        candidates = [c for c in candidates if not _ABOUT_THE_DOCUMENT.match(c[1])] or candidates
        candidates.sort(key=lambda c: -c[0])
        seen: set[str] = set()
        picked: list[tuple[float, str, Grade, tuple[int, str]]] = []
        for candidate in candidates:
            key = " ".join(candidate[1].split())
            if key not in seen:
                seen.add(key)
                picked.append(candidate)
            if len(picked) == self.ctx.evidence_sentences:
                break
        if not picked:  # relevant passages whose sentences all fell below the margin
            return Answer(
                phrase(REFUSAL, language),
                [],
                {},
                refused=True,
                notes=["no sentence of the relevant passages is close enough to quote"],
            )
        several_documents = len({c[2]["doc_id"] for c in picked}) > 1
        lines = [phrase(QUOTED_INTRO, language), ""]
        citations: list[Citation] = []
        for number, (_, text, grade, (page, pages)) in enumerate(picked, start=1):
            document = documents[grade["doc_id"]]
            where = f"{document.title}, {pages}" if several_documents else pages
            quoted = " ".join(text.split())
            lines.append(f'{number}. "{quoted}" [{where}]')
            citations.append(citation(document, page, grade["chunk_id"], quoted))
        return Answer("\n".join(lines), citations, {})

    def term_support(
        self,
        question: str,
        text: str,
        terms: set[str] | None = None,
        revision: str | None = None,
    ) -> tuple[float, set[str]]:
        """Rarity-weighted share of the question's content terms found in `text`.

        An answerable question's rare words (names, the thing asked about) are in the
        passage that answers it; an unanswerable one on the same topic lacks them
        ("Qwen3의 주가": the passage has "Qwen3" but no "주가").
        """
        from adaptsum.ingest.terms import is_frame, missing

        terms = key_terms(question) if terms is None else terms
        terms = {t for t in terms if not is_frame(t)}
        if not terms:
            return 1.0, set()
        idf = self.index.lexical.idf(revision)
        total = sum(idf(t) for t in terms)
        absent = missing(terms, text)
        found = total - sum(idf(t) for t in absent)
        return (found / total if total > 0 else 1.0), absent

    def threshold(self, language: str, document: DocumentRecord) -> float:
        """The similarity a sentence needs: lower across languages, where e5 scores lower."""
        if language == document.language:
            return self.ctx.similarity_threshold
        return self.ctx.cross_lingual_threshold

    def rank_sentences(
        self, question: str, chunk_id: str, text: str
    ) -> list[tuple[Sentence, float]]:
        """The chunk's sentences with their cosine similarity, best first.

        Ordered by similarity plus a small bonus for holding the question's key terms in
        any inflected form (the `coverage` the passage rerank uses): it breaks near-ties in
        favour of sentences that name what was asked about, where e5 alone may prefer a
        short title line sharing one entity with the question.
        """
        sentences = split_sentences(text)
        if not sentences:
            return []
        question_vector = np.asarray(self.index.query_vector(question), dtype=np.float32)
        sims = self.chunk_sentence_vectors(chunk_id, sentences) @ question_vector
        terms = key_terms(question)
        ranking = [
            sims[i] + LEXICAL_WEIGHT * coverage(terms, s.text) for i, s in enumerate(sentences)
        ]
        return [(sentences[i], float(sims[i])) for i in np.argsort(-np.asarray(ranking))]

    def chunk_sentence_vectors(self, chunk_id: str, sentences: list[Sentence]) -> np.ndarray:
        """The vectors indexing wrote for the chunk's sentences.

        A chunk indexed before sentences had vectors of their own has none: its
        sentences are embedded now, once (see `sentence_vectors`).
        """
        stored = self.index.sentence_vectors([chunk_id]).get(chunk_id)
        if stored is not None and stored[0] == [s.text for s in sentences]:
            return stored[1]
        return self.sentence_vectors(chunk_id, sentences)

    def sentence_vectors(self, chunk_id: str, sentences: list[Sentence]) -> np.ndarray:
        """Sentence vectors from the catalogue's cache, embedded once per chunk and model."""
        collection = self.index.collection
        texts = [s.text for s in sentences]
        digest = hashlib.sha1("\x1f".join(texts).encode()).hexdigest()
        cached = self.index.catalog.sentence_vectors(collection, chunk_id, digest)
        if cached is not None:
            return np.frombuffer(cached, dtype=np.float32).reshape(len(sentences), -1)
        vectors = np.asarray(self.embeddings.embed_documents(texts), dtype=np.float32)
        self.index.catalog.put_sentence_vectors(collection, chunk_id, digest, vectors.tobytes())
        return vectors


GLOSS_WEIGHT = 0.25
"""Weight of the question's gloss against the question itself in a sentence's similarity.

The gloss is a Korean question rewritten in the words an English document uses for
its terms (`DocumentIndex.gloss`): "10.7 solar publicly public revealed license" for
"SOLAR 10.7B는 어떤 라이선스로 공개되었나요?". e5 compares it within one language,
where its similarities are higher and sharper than across two. A sentence's similarity
is the weighted mean of its similarity to the question and to the gloss, so passages
of documents with and without a gloss stay on one scale.

Chosen on tune, the calibration questions and dev, with FIRST_MENTION_WEIGHT 0.02:
calibration recall@1 0.75 at weight 0, 0.81 at 0.1, 0.88 from 0.2 to 0.4, 0.81 at 0.5
and 1; tune 0.88 up to 0.3, 0.85 from 0.4; dev 0.90 throughout. With one translation
per word instead of up to three, the calibration questions lost one more.
"""


def with_gloss(similarity: float, gloss_similarity: float) -> float:
    """A sentence's similarity to a question averaged with its similarity to the gloss.

    One measure for the rerank that orders passages and the grade that keeps them, so a
    passage ranked first is not refused on another scale.
    """
    return (similarity + GLOSS_WEIGHT * gloss_similarity) / (1 + GLOSS_WEIGHT)


def _cross_terms(question: str) -> set[str]:
    """Terms of a question that a document in another language can be checked for.

    A question in a non-Latin script (Korean) writes its names and numbers in Latin
    letters and digits, as the English document does: all of those. An English question
    on a Korean document shares only its acronyms and numbers ("CEO", "GPU", "GFSM2014",
    "2024"): its other words, even capitalised ones ("English", "Seoul"), are written in
    Hangul there, so they cannot be looked for.
    """
    from adaptsum.ingest.terms import has_hangul, key_terms, neutral_terms, tokenize

    if has_hangul(question):
        return set(neutral_terms(question))
    names = {t for word in _NAME_LIKE.findall(question) for t in tokenize(word)}
    return names & key_terms(question)


_NAME_LIKE = re.compile(r"\b(?:[A-Z][A-Z0-9]+|\w*\d\w*)\b")
"""Acronyms and words with digits: the Latin terms a document in Hangul keeps as they are."""


UNSPACED = frozenset({"ja", "zh", "th"})
"""Languages written without spaces between words: the term check cannot cut their words
("東京タワーの高さは何メートルですか" is one run of letters), so it is left out for them."""

ANSWER_MARGIN = 0.03
"""How far under the threshold a sentence of a relevant passage may be quoted, if it
holds one of the question's terms (the launch date beside the sentence naming Webb)."""

ANSWER_TERM_WEIGHT = 0.1
"""Quote-order bonus for a sentence holding the question's terms, weighted by how few
of the candidate sentences hold each one."""

NUMBER_WEIGHT = 0.03
"""Quote-order bonus for a sentence with a digit when the question asks for a number, a
quantity or a date."""

_ASKS_FOR_A_NUMBER = re.compile(
    r"\bhow\s+(many|much|long|old|large|big|high|far|often|fast)\b|^\W*when\b|"
    r"\bwhen\s+(did|does|do|was|were|is|are|will|would|has|have|had|can|could)\b|"
    r"\b(what|which)\s+(year|date|day|month|percentage|number|size|score|version)\b|"
    r"(?<!몇)몇(?!몇)|얼마|언제(?![나든])|연도|날짜|비율|점수|규모|크기",
    re.IGNORECASE,
)
"""A question answered by a figure. "When" only as the question's own ("When did…",
"…, and when was it…"), not a clause's ("What happens when the cache is full?"); not
"몇몇" (some) nor "언제나" / "언제든" (always, anytime)."""
_MEASURE = re.compile(
    r"\b(accuracy|scores?|rates?|ratio|percent|share|proportion|performance|results?|f1|"
    r"bleu|rouge|perplexity|budget|cost|price|amount)\b|"
    r"성능|정확도|점수|수치|결과|비율|비중|예산|비용|가격|금액|단가",
    re.IGNORECASE,
)
"""A question about a measure ("the top-20 accuracy of DPR", "성능이 좋아지나요?"), which a
table row may answer even when it asks for no figure outright."""
_NUMBER = re.compile(r"(?<![A-Za-z\d.,])(\d[\d,.]*\d|\d)([A-Za-z]?)")


def _figures(text: str) -> set[str]:
    """Numbers standing on their own: "32-layer", "m = 8", "1443년", "19 psi".

    Not those inside a name ("SOLAR 10.7B", "GSM8K"): a sentence may name the model
    without giving any figure.
    """
    return {m.group(1) for m in _NUMBER.finditer(text) if not m.group(2)}


_ABOUT_THE_DOCUMENT = re.compile(
    r"(this|the present)\s+(document|article|paper|report|brief|study|chapter|manual)\s+"
    r"(describes|presents|introduces|summari[sz]es|explains|covers|discusses|reviews|is)\b|"
    r"(이|본)\s*(문서|글|논문|보고서|자료|장)(는|은|에서는)\s|본고(는|에서는)\s",
    re.IGNORECASE,
)
"""A sentence about the document itself ("This document describes ...", "이 문서는 ...")."""


def _numeric_row(text: str) -> bool:
    """A table row whose cells are mostly figures ("DPR | 78.4 | 79.4 | 73.2", "- | 94.6")."""
    cells = text.split(" | ")
    if len(cells) < 3:
        return False
    return sum(1 for c in cells if not any(ch.isalpha() for ch in c)) * 2 >= len(cells)


LEXICAL_WEIGHT = 0.05
"""Ranking bonus for a sentence holding all the question's key terms (names, numbers)."""
