"""State of the main graph: what comes in, what a turn works on, what goes out.

State carries ids, scores and short results; chunk text stays in the store and is
read by id. Records are TypedDicts so checkpoints and the server's JSON stay plain.
Per-turn fields are reset when a new turn starts on a thread, while `messages`
keeps the conversation so follow-up questions see earlier turns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

Mode = Literal["auto", "answer", "summarize"]
RequestKind = Literal["question", "summary", "whole_document"]
Route = Literal["answer", "refuse", "summarize"]
Strategy = Literal["auto", "stuff", "map_reduce", "refine"]


class Retrieved(TypedDict):
    """A retrieved chunk: ids, page span and cosine similarity to the query."""

    chunk_id: str
    doc_id: str
    page_start: int
    page_end: int
    score: float


class Grade(TypedDict):
    """How one retrieved chunk bears on the question, with the evidence it offers."""

    chunk_id: str
    doc_id: str
    page_start: int
    page_end: int
    score: float
    relevance: int
    """1-10: the grader's score (llm) or the similarity mapped onto 1-10 (extractive)."""
    relevant: bool
    evidence: str
    """Question-focused evidence: a short summary (llm) or the best sentence (extractive)."""
    evidence_page: int
    reason: str


class Citation(TypedDict):
    """A page the answer relies on, with the quoted or summarized evidence from it."""

    doc_id: str
    title: str
    source: str
    page: int
    chunk_id: str
    evidence: str


class Partial(TypedDict):
    """A summary of consecutive chunks (map) or of consecutive partials (collapse).

    Its text carries [p. N] citations; `sentences` is set by the extractive engine,
    which keeps the quoted sentences themselves rather than written text. Partials
    live in the catalogue; state holds `PartialRef`s to them.
    """

    key: str
    text: str
    pages: list[int]
    tokens: int
    sentences: list[dict]


class PartialRef(TypedDict):
    """A partial summary in state: its position, content hash, pages and size."""

    key: str
    ref: str
    pages: list[int]
    tokens: int


class MapTask(TypedDict):
    """What one parallel map call receives through `Send`."""

    chunk_id: str
    order: int
    total: int
    focus: str


class CollapseTask(TypedDict):
    """One group of consecutive partials to condense into one, at `level`."""

    partials: list[PartialRef]
    level: int
    order: int
    total: int
    focus: str
    language: str


def citation(document, page: int, chunk_id: str, evidence: str) -> Citation:
    """A citation of `page` of an indexed document (a `DocumentRecord`)."""
    return Citation(
        doc_id=document.doc_id,
        title=document.title,
        source=document.source,
        page=page,
        chunk_id=chunk_id,
        evidence=evidence,
    )


class Usage(TypedDict, total=False):
    """Model calls and tokens used in this turn."""

    calls: int
    input_tokens: int
    output_tokens: int
    total_tokens: int


def merge_grades(left: dict[str, Grade], right: dict[str, Grade]) -> dict[str, Grade]:
    """Grades from parallel graders, keyed by chunk id so re-grading replaces, not repeats."""
    return {**(left or {}), **(right or {})}


def merge_partials(
    left: dict[str, PartialRef], right: dict[str, PartialRef]
) -> dict[str, PartialRef]:
    """Map and collapse results keyed by level and position, so resumed runs never repeat."""
    return {**(left or {}), **(right or {})}


def add_usage(left: Usage, right: Usage) -> Usage:
    """Sum usage counters from nodes that ran in parallel."""
    out: dict[str, int] = dict(left or {})
    for key, value in (right or {}).items():
        out[key] = out.get(key, 0) + int(value)
    return out  # type: ignore[return-value]


@dataclass(kw_only=True)
class InputState:
    """What a caller sends: a request, the documents it is about, and an optional mode."""

    request: str = field(
        default="",
        metadata={"description": "The question or summary request, in any language."},
    )
    documents: list[str] = field(
        default_factory=list,
        metadata={
            "description": "PDF paths (indexed on demand) or indexed document ids / file "
            "names. Empty means every indexed document."
        },
    )
    pages: str = field(
        default="",
        metadata={"description": "Only use these pages, e.g. '3' or '2-5'. Empty: all."},
    )
    mode: Mode = field(
        default="auto",
        metadata={
            "description": "'auto' decides between answering and summarizing; 'answer' or "
            "'summarize' forces one."
        },
    )
    strategy: Strategy = field(
        default="auto",
        metadata={
            "description": "Summarization strategy: 'auto' (stuff when the document fits, "
            "else map_reduce; refine for narrative requests on short documents), or forced."
        },
    )
    dry_run: bool = field(
        default=False,
        metadata={
            "description": "Plan the summary (strategy, calls, token estimate) without "
            "calling any model."
        },
    )


@dataclass(kw_only=True)
class OutputState:
    """What a caller gets back."""

    answer: str = ""
    citations: list[Citation] = field(default_factory=list)
    route: str = ""
    route_reason: str = ""
    question_language: str = ""
    summary_plan: dict = field(default_factory=dict)
    usage: Annotated[Usage, add_usage] = field(default_factory=dict)  # type: ignore[arg-type]


@dataclass(kw_only=True)
class State(InputState, OutputState):
    """Everything the graph works on during a turn."""

    messages: Annotated[list[AnyMessage], add_messages] = field(default_factory=list)
    turn: int = 0
    doc_ids: list[str] = field(default_factory=list)
    documents_language: str = ""
    request_kind: str = ""
    request_reason: str = ""
    retrieval_queries: list[str] = field(default_factory=list)
    retrieved: list[Retrieved] = field(default_factory=list)
    grades: Annotated[dict[str, Grade], merge_grades] = field(default_factory=dict)
    summary_revision: str = ""
    """The summarized document's revision: its chunk ids are `revision:NNNNN`."""
    summary_chunks: int = 0
    partials: Annotated[dict[str, PartialRef], merge_partials] = field(default_factory=dict)
    refine_step: int = 0
    refine_summary: PartialRef | None = None


class GradeTask(TypedDict):
    """What one parallel grader receives through `Send`: the question and one chunk.

    A plain dict, like every record here, so pending sends checkpoint as JSON-like data.
    """

    question: str
    question_language: str
    chunk: Retrieved
