"""What both engines provide to the nodes, and the shared resources they work with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from langchain_core.messages import AnyMessage

from adaptsum.state.context import Context
from adaptsum.state.graph_state import Citation, Grade, RequestKind, Retrieved, Usage
from adaptsum.store.catalog import ChunkRecord, DocumentRecord
from adaptsum.store.index import DocumentIndex


@dataclass(frozen=True)
class Classification:
    """What kind of request this is, and why."""

    kind: RequestKind
    reason: str
    usage: Usage


@dataclass(frozen=True)
class Answer:
    """An answer's text, the pages it cites, and what it cost."""

    text: str
    citations: list[Citation]
    usage: Usage
    refused: bool = False
    streamed: str = ""
    """What the model streamed. The final text is that plus `added`, with repeated lines
    dropped (`providers.chat.dedupe_lines`), which is what a line-deduping client shows."""
    added: str = ""
    """What adaptsum appended to the streamed text (pages it attached, a flag)."""
    notes: list[str] = field(default_factory=list)
    """What was checked or repaired, for the route reason."""
    message_id: str = ""
    """Id of the streamed model reply (LangGraph sends a message with a seen id only once)."""


class Engine(Protocol):
    """The steps that differ between the offline extractive engine and the llm engine."""

    name: str

    def classify(self, request: str, language: str) -> Classification:
        """Question, summary request, or a question needing the whole document."""
        ...

    def contextualize(self, question: str, history: list[AnyMessage]) -> tuple[str, Usage]:
        """The question made self-contained using earlier turns of the thread."""
        ...

    def translate(self, text: str, source: str, target: str) -> tuple[str, Usage]:
        """`text` in the `target` language, or unchanged when no call is needed."""
        ...

    def grade(
        self,
        question: str,
        language: str,
        hit: Retrieved,
        chunk: ChunkRecord,
        document: DocumentRecord,
    ) -> tuple[Grade, Usage]:
        """How the chunk bears on the question, with its evidence."""
        ...

    def answer(
        self,
        question: str,
        language: str,
        evidence: list[Grade],
        chunks: dict[str, ChunkRecord],
        documents: dict[str, DocumentRecord],
    ) -> Answer:
        """The answer in `language`, citing pages of the evidence."""
        ...


@dataclass
class Resources:
    """Per-context singletons the nodes share: the index (with embeddings) and settings."""

    ctx: Context
    index: DocumentIndex
