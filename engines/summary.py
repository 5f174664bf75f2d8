"""Summarization steps for both engines: map, collapse, reduce, stuff and refine.

The llm engine writes text with [p. N] citations (pages are marked in its input);
the extractive engine selects sentences (LexRank centrality within a chunk, then
maximal marginal relevance across chunks) and cites each one's own page.
"""

from __future__ import annotations

import bisect
import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from adaptsum import prompts
from adaptsum.engines.base import Resources
from adaptsum.engines.language import language_name
from adaptsum.engines.sentences import split_sentences, summary_worthy
from adaptsum.providers.tokens import count_tokens
from adaptsum.state.context import Context, parse_range
from adaptsum.state.graph_state import Citation, Partial, Usage, citation
from adaptsum.store.catalog import ChunkRecord, DocumentRecord

if TYPE_CHECKING:
    from adaptsum.nodes.retry import Deadline

_CITATION = re.compile(r"\[p\.\s*(\d+)(?:\s*[-–]\s*\d+)?\]")
TOKENS_PER_SENTENCE = 28
"""Average output tokens of one summary sentence, for estimates and budgets."""


@dataclass(frozen=True)
class Shape:
    """The requested form of a summary."""

    paragraphs: int
    sentences: tuple[int, int]
    style: str
    language: str

    @classmethod
    def from_context(cls, ctx: Context, language: str) -> Shape:
        """The shape the context asks for, in `language`."""
        return cls(
            paragraphs=ctx.summary_paragraphs,
            sentences=parse_range(ctx.summary_sentences, "summary_sentences"),
            style=ctx.summary_style,
            language=language,
        )

    def prompt_fields(self) -> dict[str, str]:
        """Values for the {paragraphs} {unit} {sentences} {language} prompt slots."""
        low, high = self.sentences
        bullets = self.style == "bullets"
        return {
            "paragraphs": str(self.paragraphs),
            "unit": "bullet points" if bullets else "paragraphs",
            "unit_singular": "bullet point" if bullets else "paragraph",
            "sentences": f"{low}-{high}" if low != high else str(low),
            "language": language_name(self.language),
        }

    def output_tokens(self) -> int:
        """Expected tokens of a summary of this shape."""
        return self.paragraphs * sum(self.sentences) // 2 * TOKENS_PER_SENTENCE


def marked_text(chunk: ChunkRecord, document: DocumentRecord) -> str:
    """The chunk's text with [p. N] at its start and at every page break inside it."""
    import json

    out = [f"[p. {chunk.page_start}] "]
    cursor = chunk.char_start
    for page, start in json.loads(document.page_offsets):
        if chunk.char_start < start < chunk.char_end:
            out.append(chunk.text[cursor - chunk.char_start : start - chunk.char_start])
            out.append(f" [p. {page}] ")
            cursor = start
    out.append(chunk.text[cursor - chunk.char_start :])
    return "".join(out)


def cited_pages(text: str) -> list[int]:
    """Pages cited as [p. N] (or [p. N-M], counted by its first page), in order, once each."""
    return list(dict.fromkeys(int(p) for p in _CITATION.findall(text)))


def paragraphs_of(text: str) -> list[str]:
    """Paragraphs (or bullets) of a summary."""
    return [p.strip() for p in re.split(r"\n\s*\n|\n(?=\s*[-•*]\s)", text) if p.strip()]


def summary_citations(
    text: str, document: DocumentRecord, chunks: list[ChunkRecord]
) -> list[Citation]:
    """One citation per cited page that exists in the document, with the text citing it."""
    out: list[Citation] = []
    for page in cited_pages(text):
        if not 1 <= page <= document.total_pages:
            continue
        chunk = next((c for c in chunks if c.page_start <= page <= c.page_end), None)
        citing = next((p for p in paragraphs_of(text) if page in cited_pages(p)), "")
        out.append(citation(document, page, chunk.chunk_id if chunk else "", citing[:300]))
    return out


class LLMSummarizer:
    """Summary steps written by a chat model."""

    def __init__(
        self, resources: Resources, model: BaseChatModel, deadline: Deadline | None = None
    ) -> None:
        self.ctx = resources.ctx
        self.model = model
        self.deadline = deadline

    def _call(
        self,
        system: str,
        user: str,
        max_tokens: int,
        attempt: int = 0,
    ) -> tuple[str, Usage]:
        """One bounded call, kept out of LangGraph's `messages` stream.

        The final summary is checked and repaired after the call, so what a client
        receives on the `messages` stream is the node's final message, sent once, not
        a draft. A reply cut at `max_tokens` keeps its complete paragraphs (the cut
        one is dropped) rather than failing the whole summary.
        """
        from adaptsum.providers.chat import call

        reply = call(
            self.model,
            [SystemMessage(system), HumanMessage(user)],
            max_tokens=max_tokens,
            timeout=self.ctx.request_timeout,
            deadline=self.deadline,
            stream=False,
            temperature=None if attempt == 0 else min(1.0, self.ctx.temperature + 0.4),
        )
        text = reply.text
        if reply.truncated and "\n\n" in text.strip():
            text = text.strip().rsplit("\n\n", 1)[0]
        return text, reply.usage

    def _limit(self, expected: int) -> int:
        """max_tokens for a reply expected to be about `expected` tokens: room, not the context."""
        return max(256, int(expected * 2))

    @staticmethod
    def _focus(focus: str) -> str:
        return prompts.FOCUS.format(question=focus) if focus else ""

    def map(
        self, chunk: ChunkRecord, document: DocumentRecord, focus: str, key: str
    ) -> tuple[Partial, Usage]:
        """Summarize one chunk in the document's language (so the result is reusable)."""
        text, usage = self._call(*self.map_request(chunk, document, focus))
        return _partial(key, text, fallback_pages=[chunk.page_start]), usage

    def map_request(
        self, chunk: ChunkRecord, document: DocumentRecord, focus: str
    ) -> tuple[str, str, int]:
        """The map call's system prompt, user text and output cap (also for budget gates)."""
        low, high = parse_range(self.ctx.map_paragraphs, "map_paragraphs")
        system = prompts.MAP_SYSTEM.format(
            paragraphs=f"{low}-{high}" if low != high else low,
            sentences=self.ctx.map_sentences,
            language=language_name(document.language),
            focus=self._focus(focus),
        )
        return (
            system,
            prompts.as_data(marked_text(chunk, document)),
            self.map_max_tokens(),
        )

    def collapse(
        self, partials: list[Partial], language: str, focus: str, key: str
    ) -> tuple[Partial, Usage]:
        """Condense consecutive partials into one, keeping their citations."""
        text, usage = self._call(*self.collapse_request(partials, language, focus))
        pages = sorted({page for p in partials for page in p["pages"]})
        return _partial(key, text, fallback_pages=pages[:1]), usage

    def collapse_request(
        self, partials: list[Partial], language: str, focus: str
    ) -> tuple[str, str, int]:
        """The collapse call's system prompt, user text and output cap (also for gates)."""
        words = max(120, sum(p["tokens"] for p in partials) // (2 * len(partials)) * 2)
        system = prompts.COLLAPSE_SYSTEM.format(
            words=words, language=language_name(language), focus=self._focus(focus)
        )
        return (
            system,
            prompts.as_data("\n\n".join(p["text"] for p in partials)),
            self._limit(words * 2),
        )

    def reduce(
        self, partials: list[Partial], shape: Shape, focus: str, attempt: int = 0
    ) -> tuple[str, Usage]:
        """The final summary in the requested shape and language."""
        system = prompts.REDUCE_SYSTEM.format(**shape.prompt_fields(), focus=self._focus(focus))
        if attempt:
            system += prompts.SUMMARY_REDO
        return self._call(
            system,
            prompts.as_data("\n\n".join(p["text"] for p in partials)),
            self._limit(shape.output_tokens()),
            attempt=attempt,
        )

    def stuff(
        self,
        chunks: list[ChunkRecord],
        document: DocumentRecord,
        shape: Shape,
        focus: str,
        on_chunk: Callable[[ChunkRecord], None] | None = None,
    ) -> tuple[str, Usage]:
        """The whole document in one call (no per-chunk progress to report)."""
        return self.stuff_attempt(chunks, document, shape, focus, 0)

    def stuff_attempt(
        self,
        chunks: list[ChunkRecord],
        document: DocumentRecord,
        shape: Shape,
        focus: str,
        attempt: int,
    ) -> tuple[str, Usage]:
        """`stuff`; a redo (`attempt` 1) is told not to copy and is not streamed again."""
        system = prompts.STUFF_SYSTEM.format(**shape.prompt_fields(), focus=self._focus(focus))
        if attempt:
            system += prompts.SUMMARY_REDO
        return self._call(
            system,
            prompts.as_data("\n\n".join(marked_text(c, document) for c in chunks)),
            self._limit(shape.output_tokens()),
            attempt=attempt,
        )

    def refine(
        self,
        summary: Partial | None,
        chunk: ChunkRecord,
        document: DocumentRecord,
        shape: Shape,
        focus: str,
        key: str,
    ) -> tuple[Partial, Usage]:
        """The first chunk summarized, or the running summary refined with the next one."""
        if summary is None:
            system = prompts.STUFF_SYSTEM.format(**shape.prompt_fields(), focus=self._focus(focus))
            text, usage = self._call(
                system,
                prompts.as_data(marked_text(chunk, document)),
                self._limit(shape.output_tokens()),
            )
        else:
            system = prompts.REFINE_SYSTEM.format(**shape.prompt_fields(), focus=self._focus(focus))
            user = (
                f"Summary so far:\n{prompts.as_data(summary['text'])}\n\n"
                f"Next passage:\n{prompts.as_data(marked_text(chunk, document))}"
            )
            text, usage = self._call(system, user, self._limit(shape.output_tokens()))
        return _partial(key, text, fallback_pages=[chunk.page_start]), usage

    # -- estimates for --dry-run and budgets ----------------------------------------
    def map_cost(self, chunk: ChunkRecord) -> int:
        """Expected tokens of one map call (prompt + passage + output)."""
        low, high = parse_range(self.ctx.map_paragraphs, "map_paragraphs")
        out = (low + high) / 2 * self.ctx.map_sentences * TOKENS_PER_SENTENCE
        return int(_map_prompt_tokens() + chunk.tokens * 1.02 + out)

    def map_max_tokens(self) -> int:
        """The output cap of one map call: `map_max_tokens`, or room for the expected output."""
        return self.ctx.map_max_tokens or self._limit(self.map_output_tokens())

    def map_output_tokens(self) -> int:
        """Expected tokens of one map result."""
        low, high = parse_range(self.ctx.map_paragraphs, "map_paragraphs")
        return int((low + high) / 2 * self.ctx.map_sentences * TOKENS_PER_SENTENCE)


@functools.cache
def _map_prompt_tokens() -> int:
    """The map prompt's own tokens, counted on first use.

    Loading the tokenizer at import time cost every `adaptsum ask` about 0.4 s for a
    figure only summaries need.
    """
    return count_tokens(prompts.MAP_SYSTEM) + 12


def _partial(key: str, text: str, fallback_pages: list[int]) -> Partial:
    pages = cited_pages(text) or fallback_pages
    if not cited_pages(text) and fallback_pages:
        text = f"{text} [p. {fallback_pages[0]}]"  # keep every partial traceable to a page
    return Partial(key=key, text=text, pages=pages, tokens=count_tokens(text), sentences=[])


class ExtractiveSummarizer:
    """Summaries made of the document's own sentences, each cited with its page."""

    def __init__(self, resources: Resources) -> None:
        from adaptsum.engines.extractive import ExtractiveEngine

        self.ctx = resources.ctx
        self.index = resources.index
        self.engine = ExtractiveEngine(resources)

    def _units(self, chunk: ChunkRecord, document: DocumentRecord) -> list[dict]:
        """Whole sentences that start in this chunk, with page, position and vector.

        Sentences are split on the document's text, not the chunk's, so a sentence cut
        by a chunk boundary is still quoted whole, and overlapping chunks share none. A
        chunk cut to a page range (`PageRange.clip`) keeps the sentences that start in it.
        """
        sentences = _sentences_by_chunk(self.index, document).get(chunk.index, [])
        if not sentences:
            return []
        vectors = self.engine.sentence_vectors(f"doc:{chunk.chunk_id}", sentences)
        return [
            {
                "text": " ".join(s.text.split()),
                "page": document.page_of(s.start),
                "pages": document.pages_of(s.start, s.end),
                "offset": s.start,
                "vector": vectors[i].tolist(),
            }
            for i, s in enumerate(sentences)
            if chunk.char_start <= s.start < chunk.char_end
        ]

    def map(
        self, chunk: ChunkRecord, document: DocumentRecord, focus: str, key: str
    ) -> tuple[Partial, Usage]:
        """The chunk's most central sentences (LexRank over e5 vectors)."""
        units = self._units(chunk, document)
        low, high = parse_range(self.ctx.map_paragraphs, "map_paragraphs")
        keep = max(1, min(len(units), math.ceil((low + high) / 2 * self.ctx.map_sentences / 2)))
        picked = _top_central(units, keep, self._focus_vector(focus))
        return _sentence_partial(key, picked), {}

    def collapse(
        self, partials: list[Partial], language: str, focus: str, key: str
    ) -> tuple[Partial, Usage]:
        """Half of the group's sentences, by maximal marginal relevance."""
        units = [u for p in partials for u in p["sentences"]]
        picked = _mmr(units, max(1, len(units) // 2), self._focus_vector(focus))
        return _sentence_partial(key, picked), {}

    def reduce(self, partials: list[Partial], shape: Shape, focus: str) -> tuple[str, Usage]:
        """Sentences across all partials by MMR, in document order, shaped into paragraphs."""
        units = _dedupe([u for p in partials for u in p["sentences"]])
        return shape_text(units, shape, self._focus_vector(focus)), {}

    def stuff(
        self,
        chunks: list[ChunkRecord],
        document: DocumentRecord,
        shape: Shape,
        focus: str,
        on_chunk: Callable[[ChunkRecord], None] | None = None,
    ) -> tuple[str, Usage]:
        """MMR over every sentence of the document; `on_chunk` reports each chunk read."""
        units: list[dict] = []
        for chunk in chunks:
            units.extend(self._units(chunk, document))
            if on_chunk is not None:
                on_chunk(chunk)
        units = _dedupe(units)
        return shape_text(units, shape, self._focus_vector(focus), whole_document=True), {}

    def refine(
        self,
        summary: Partial | None,
        chunk: ChunkRecord,
        document: DocumentRecord,
        shape: Shape,
        focus: str,
        key: str,
    ) -> tuple[Partial, Usage]:
        """The running selection re-chosen with the next chunk's sentences."""
        units = _dedupe([*(summary["sentences"] if summary else []), *self._units(chunk, document)])
        budget = shape.paragraphs * shape.sentences[1]
        picked = _mmr(units, min(budget, len(units)), self._focus_vector(focus))
        return _sentence_partial(key, sorted(picked, key=lambda u: u["offset"])), {}

    def _focus_vector(self, focus: str) -> np.ndarray | None:
        if not focus:
            return None
        return np.asarray(self.index.query_vector(focus), dtype=np.float32)


_sentence_cache: dict[tuple[str, str], dict[int, list]] = {}


def _sentences_by_chunk(index, document: DocumentRecord) -> dict[int, list]:
    """The document's sentences (offsets into its text) grouped by the chunk they start in."""
    key = (index.collection, document.revision)
    if key not in _sentence_cache:
        chunks = index.catalog.document_chunks(index.collection, document.revision)
        text = ""
        for chunk in chunks:  # chunks overlap and tile the text: rebuild it from them
            text = text[: chunk.char_start].ljust(chunk.char_start) + chunk.text
        starts = [c.char_start for c in chunks]
        grouped: dict[int, list] = {}
        for sentence in summary_worthy(split_sentences(text), text):
            position = max(bisect.bisect_right(starts, sentence.start) - 1, 0)
            grouped.setdefault(chunks[position].index, []).append(sentence)
        if len(_sentence_cache) > 64:
            _sentence_cache.clear()
        _sentence_cache[key] = grouped
    return _sentence_cache[key]


def _dedupe(units: list[dict]) -> list[dict]:
    """One unit per sentence position (overlapping chunks repeat sentences)."""
    seen: dict[int, dict] = {}
    for unit in units:
        seen.setdefault(unit["offset"], unit)
    return sorted(seen.values(), key=lambda u: u["offset"])


def _lexrank(vectors: np.ndarray, threshold: float = 0.1, damping: float = 0.85) -> np.ndarray:
    """LexRank centrality: PageRank over the cosine-similarity graph of the sentences."""
    n = len(vectors)
    if n == 1:
        return np.ones(1)
    sims = vectors @ vectors.T
    graph = np.where(sims > threshold, sims, 0.0)
    np.fill_diagonal(graph, 0.0)
    rows = graph.sum(axis=1, keepdims=True)
    rows[rows == 0] = 1.0
    transition = graph / rows
    scores = np.full(n, 1.0 / n)
    for _ in range(100):
        updated = (1 - damping) / n + damping * transition.T @ scores
        if np.abs(updated - scores).sum() < 1e-8:
            break
        scores = updated
    return scores


def _unit_scale(values: np.ndarray) -> np.ndarray:
    span = float(values.max() - values.min())
    return (values - values.min()) / span if span > 0 else np.ones_like(values)


def _top_central(units: list[dict], keep: int, focus: np.ndarray | None) -> list[dict]:
    if not units:
        return []
    vectors = np.asarray([u["vector"] for u in units], dtype=np.float32)
    scores = _lexrank(vectors)
    if focus is not None:
        scores = scores / scores.max() + vectors @ focus
    order = sorted(np.argsort(-scores)[:keep])
    return [units[i] for i in order]


def _mmr(
    units: list[dict], keep: int, focus: np.ndarray | None, diversity: float = 0.3
) -> list[dict]:
    """Maximal marginal relevance: relevant to the document (or focus), unlike those picked."""
    if not units:
        return []
    vectors = np.asarray([u["vector"] for u in units], dtype=np.float32)
    if focus is not None:
        relevance = vectors @ focus
    else:
        # Central to the document: LexRank over these sentences, plus closeness to
        # their centroid, each scaled to 0-1 so neither dominates.
        centroid = vectors.mean(axis=0)
        centroid = centroid / (np.linalg.norm(centroid) or 1.0)
        relevance = _unit_scale(_lexrank(vectors)) + _unit_scale(vectors @ centroid)
        relevance = relevance / 2
    # A sentence said twice in the document (two table captions alike) is quoted once.
    texts = [" ".join(u["text"].split()) for u in units]
    first = {text: i for i, text in reversed(list(enumerate(texts)))}
    candidates = sorted(first.values())
    picked: list[int] = []
    while len(picked) < min(keep, len(candidates)):
        if picked:
            redundancy = (vectors @ vectors[picked].T).max(axis=1)
        else:
            redundancy = np.zeros(len(units))
        scores = np.full(len(units), -np.inf)
        scores[candidates] = ((1 - diversity) * relevance - diversity * redundancy)[candidates]
        scores[picked] = -np.inf
        picked.append(int(np.argmax(scores)))
    return [units[i] for i in sorted(picked)]


def _pages(unit: dict) -> str:
    """A quoted sentence's citation; units cached before page spans carry one page only."""
    return unit.get("pages") or f"p. {unit['page']}"


def _sentence_partial(key: str, units: list[dict]) -> Partial:
    text = " ".join(f"{u['text']} [{_pages(u)}]" for u in units)
    return Partial(
        key=key,
        text=text,
        pages=sorted({u["page"] for u in units}),
        tokens=count_tokens(text),
        sentences=units,
    )


SHARE_OF_SENTENCES = 3
"""An extractive summary of a whole short document quotes at most 1/this of its sentences."""


def shape_text(
    units: list[dict], shape: Shape, focus: np.ndarray | None, whole_document: bool = False
) -> str:
    """Pick sentences by MMR and lay them out as the shape asks, each with its page.

    From `units` that are the `whole_document`'s sentences (stuff), at most a third of
    them are quoted; map-reduce and refine choose from a selection already.

    Raises:
        AdaptsumError: there is no sentence to pick, so the summary would be empty.
    """
    if not units:
        from adaptsum.errors import AdaptsumError

        raise AdaptsumError(
            "nothing to summarize: no whole sentence was found in the document's text "
            "(only headings, tables, code or pages without text)"
        )
    low, high = shape.sentences
    # A summary quotes at most a third of the document's sentences (one paragraph at
    # least): the default 5 paragraphs of 4-8 sentences once quoted a 2-page article whole.
    share = len(units) // SHARE_OF_SENTENCES if whole_document else len(units)
    available = max(min(low, len(units)), share)
    paragraphs = max(1, min(shape.paragraphs, available // max(low, 1) or 1))
    per = max(low, min(high, available // paragraphs)) if available >= low else available
    picked = sorted(_mmr(units, paragraphs * per, focus), key=lambda u: u["offset"])
    groups = [picked[i * per : (i + 1) * per] for i in range(paragraphs)]
    groups = [g for g in groups if g]
    lines = []
    for group in groups:
        body = " ".join(f"{u['text']} [{_pages(u)}]" for u in group)
        lines.append(f"- {body}" if shape.style == "bullets" else body)
    return "\n\n".join(lines)


COPY_LIMIT = 0.5
"""A summary with more than this share of its 8-word runs found verbatim in the source copies it."""


def copied_share(text: str, source: str, n: int = 8) -> float:
    """Share of the summary's n-word runs that appear word for word in the source."""
    words = _CITATION.sub(" ", text).split()
    if len(words) < n:
        return 0.0
    haystack = " ".join(_CITATION.sub(" ", source).split())
    runs = [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]
    return sum(run in haystack for run in runs) / len(runs)


def repair_citations(
    text: str, document: DocumentRecord, chunks: list[ChunkRecord]
) -> tuple[str, int]:
    """Give every paragraph without a valid [p. N] the page whose text it matches best.

    Returns the text and how many paragraphs got a citation from adaptsum.
    """
    repaired = 0
    out: list[str] = []
    for paragraph in paragraphs_of(text):
        valid = [p for p in cited_pages(paragraph) if 1 <= p <= document.total_pages]
        if not valid and chunks:
            words = set(re.findall(r"\w{2,}", paragraph.lower()))
            best = max(chunks, key=lambda c: _overlap(words, c.text))
            paragraph = f"{paragraph} [p. {best.page_start}]"
            repaired += 1
        out.append(paragraph)
    return "\n\n".join(out), repaired


def _overlap(words: set[str], text: str) -> int:
    return len(words & set(re.findall(r"\w{2,}", text.lower())))
