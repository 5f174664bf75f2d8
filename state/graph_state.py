"""State of the main graph: what comes in, what a turn works on, what goes out.

State carries ids, scores and short results; chunk text stays in the store and is
read by id. Records are TypedDicts so checkpoints and the server's JSON stay plain.
Per-turn fields are reset when a new turn starts on a thread, while `messages`
keeps the conversation so follow-up questions see earlier turns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal, NotRequired

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from pydantic import Field
from typing_extensions import TypedDict

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
    file: NotRequired[str]
    """The document's file name, to name it if it changes under the run."""


def files_of(hits: list[Retrieved]) -> dict[str, str]:
    """File name per revision of retrieved chunks, to name a document that changed."""
    from adaptsum.store.catalog import parse_chunk_id

    return {parse_chunk_id(h["chunk_id"])[0]: h["file"] for h in hits if h.get("file")}


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

    doc_id: Annotated[str, Field(description="Id of the cited document.")]
    title: Annotated[str, Field(description="The document's title.")]
    source: Annotated[str, Field(description="Where the document came from (file or URL).")]
    page: Annotated[int, Field(description="The cited page, 1-based.")]
    chunk_id: Annotated[str, Field(description="The chunk the evidence was found in.")]
    evidence: Annotated[str, Field(description="The quoted or summarized evidence.")]


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
    file: NotRequired[str]
    """The document's file name, to name it if it changes under the run."""
    pages: NotRequired[str]
    """The pages the summary covers ('' for all): the chunk is cut to them."""


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
    from adaptsum.ingest.fetch import shown_name

    return Citation(
        doc_id=document.doc_id,
        title=document.title,
        source=shown_name(document.source),
        page=page,
        chunk_id=chunk_id,
        evidence=evidence,
    )


def not_relevant(hit: Retrieved, chunk, reason: str) -> Grade:
    """The grade of a retrieved chunk (a `ChunkRecord`) that cannot be evidence, and why."""
    return Grade(
        chunk_id=chunk.chunk_id,
        doc_id=chunk.doc_id,
        page_start=chunk.page_start,
        page_end=chunk.page_end,
        score=hit["score"],
        relevance=0,
        relevant=False,
        evidence="",
        evidence_page=chunk.page_start,
        reason=reason,
    )


class Usage(TypedDict, total=False):
    """Model calls and tokens used in this turn."""

    calls: Annotated[int, Field(description="Model calls made.")]
    input_tokens: Annotated[int, Field(description="Prompt tokens.")]
    output_tokens: Annotated[int, Field(description="Generated tokens.")]
    total_tokens: Annotated[int, Field(description="Prompt plus generated tokens.")]
    abandoned_calls: Annotated[
        int,
        Field(
            description="Calls given up before their reply arrived (timeout, run deadline, "
            "Ctrl-C, lost connection); counted in `calls`, their tokens are not in the three "
            "counts above, which are exactly what the server reported."
        ),
    ]
    abandoned_input_tokens: Annotated[
        int, Field(description="Prompt tokens sent by abandoned calls (o200k_base estimate).")
    ]
    abandoned_max_tokens: Annotated[
        int,
        Field(
            description="The `max_tokens` caps of abandoned calls: at most this many tokens "
            "were generated for them and never reported."
        ),
    ]


def merge_grades(left: dict[str, Grade], right: dict[str, Grade] | None) -> dict[str, Grade]:
    """Grades from parallel graders, keyed by chunk id so re-grading replaces, not repeats.

    `None` clears them (a new turn). Not `Overwrite({})`: that wrapper would reach
    clients of the server's `updates` stream as `{"value": {}, "type": "__overwrite__"}`.
    """
    if right is None:
        return {}
    return {**(left or {}), **right}


def merge_partials(
    left: dict[str, PartialRef], right: dict[str, PartialRef] | None
) -> dict[str, PartialRef]:
    """Map and collapse results keyed by level and position, so resumed runs never repeat.

    `None` clears them (a new plan), like `merge_grades`.
    """
    if right is None:
        return {}
    return {**(left or {}), **right}


def add_usage(left: Usage, right: Usage | None) -> Usage:
    """Sum usage counters from nodes that ran in parallel; `None` clears them (a new turn)."""
    if right is None:
        return {}
    out: dict[str, int] = dict(left or {})
    for key, value in (right or {}).items():
        out[key] = out.get(key, 0) + int(value)
    return out  # type: ignore[return-value]


class DocumentUpload(TypedDict):
    """A PDF sent with the request: its file name and its bytes in base64."""

    name: Annotated[str, Field(description="File name, e.g. 'report.pdf' (shown in citations).")]
    data: Annotated[str, Field(description="The PDF's bytes, base64-encoded.")]


DocumentRef = str | DocumentUpload
"""An http(s) URL, an uploaded PDF, an indexed document id or (CLI only) a path or name."""

_DOCUMENTS = (
    "What the request is about: http(s) URLs of PDFs (downloaded and indexed), uploads "
    "({name, data: base64}), or ids of indexed documents. Outside a server, PDF paths and "
    "file names work too. Empty: the thread's documents from earlier turns (outside a "
    "server with none: every indexed document)."
)


class InputState(TypedDict, total=False):
    """What a caller sends: a request, the documents it is about, and an optional mode.

    A `typing_extensions.TypedDict` (not a dataclass) so the server can publish its JSON
    schema with descriptions and enums; values are checked by `start_turn`.
    """

    request: Annotated[str, Field(description="The question or summary request, in any language.")]
    documents: Annotated[list[DocumentRef], Field(description=_DOCUMENTS)]
    pages: Annotated[
        str, Field(description="Only use these pages, e.g. '3' or '2-5'. Empty: all pages.")
    ]
    mode: Annotated[
        Mode,
        Field(
            description="'auto' decides between answering and summarizing; 'answer' or "
            "'summarize' forces one."
        ),
    ]
    strategy: Annotated[
        Strategy,
        Field(
            description="Summarization strategy: 'auto' (stuff when the document fits, else "
            "map_reduce; refine for narrative requests on short documents), or forced."
        ),
    ]
    dry_run: Annotated[
        bool,
        Field(
            description="Plan the summary (strategy, calls, token estimate) without calling "
            "any model."
        ),
    ]


class OutputState(TypedDict, total=False):
    """What a caller gets back."""

    answer: Annotated[
        str,
        Field(
            description="The cited answer, the refusal line, or the summary (with [p. N] "
            "citations)."
        ),
    ]
    citations: Annotated[
        list[Citation], Field(description="Pages the answer relies on, with the evidence.")
    ]
    route: Annotated[
        str, Field(description="What the turn did: 'answer', 'refuse' or 'summarize'.")
    ]
    route_reason: Annotated[str, Field(description="Why it took that route.")]
    question_language: Annotated[
        str, Field(description="ISO 639-1 code of the request's language.")
    ]
    documents: Annotated[
        list[DocumentRef],
        Field(description="Ids of the documents this turn used (follow-ups reuse them)."),
    ]
    summary_plan: Annotated[
        dict,
        Field(
            description="For summaries: strategy, reason, chunks, tokens and the estimated "
            "calls and tokens (the whole result of a dry run)."
        ),
    ]
    usage: Annotated[
        Usage, Field(description="Model calls and tokens this turn used (llm engine).")
    ]


@dataclass(kw_only=True)
class State:
    """Everything the graph works on during a turn (input and output fields included)."""

    request: str = ""
    documents: list[DocumentRef] = field(default_factory=list)
    pages: str = ""
    mode: Mode = "auto"
    strategy: Strategy = "auto"
    dry_run: bool = False
    answer: str = ""
    citations: list[Citation] = field(default_factory=list)
    route: str = ""
    route_reason: str = ""
    question_language: str = ""
    summary_plan: dict = field(default_factory=dict)
    usage: Annotated[Usage, add_usage] = field(default_factory=dict)  # type: ignore[arg-type]
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
    summary_file: str = ""
    """The summarized document's file name, to name it if it changes under the run."""
    summary_first_chunk: int = 0
    """Index of the first chunk summarized: 0, or where the asked pages start."""
    summary_chunks: int = 0
    partials: Annotated[dict[str, PartialRef], merge_partials] = field(default_factory=dict)
    refine_step: int = 0
    refine_summary: PartialRef | None = None
    token_budget: int = 0
    """The turn's token budget: `max_tokens` when the turn started, or one approved at a
    pause (resume with {'max_tokens': N}); 0: none. Kept in state so that a resumed run
    (another process, a client that does not resend its context) keeps the same budget."""


class IndexedDocument(TypedDict):
    """One document the index graph indexed (or found already indexed)."""

    doc_id: Annotated[str, Field(description="Id to pass in 'documents' of later requests.")]
    title: Annotated[str, Field(description="The PDF's title (metadata or first line).")]
    pages: Annotated[int, Field(description="Pages in the PDF.")]
    chunks: Annotated[int, Field(description="Chunks indexed for retrieval.")]
    status: Annotated[
        Literal["indexed", "unchanged", "replaced", "restored"],
        Field(
            description="'unchanged' when the same bytes were indexed before; 'restored' when "
            "they were, but their vectors were gone and were written again."
        ),
    ]


class IndexInput(TypedDict):
    """What the index graph takes: the documents to download or decode and index."""

    documents: Annotated[
        list[DocumentRef],
        Field(
            description="http(s) URLs of PDFs or uploads ({name, data: base64}); outside a "
            "server, PDF paths too."
        ),
    ]


class IndexOutput(TypedDict, total=False):
    """What the index graph returns."""

    indexed: Annotated[
        list[IndexedDocument], Field(description="Each document's id, title and status.")
    ]


class IndexState(IndexInput, IndexOutput):
    """The index graph's whole state: its input and its report."""


class GradeTask(TypedDict):
    """What one parallel grader receives through `Send`: the question and one chunk.

    A plain dict, like every record here, so pending sends checkpoint as JSON-like data.
    """

    question: str
    question_language: str
    chunk: Retrieved
    pages: NotRequired[str]
    """The turn's page filter: only the chunk's text on these pages is graded."""
