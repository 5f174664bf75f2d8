"""The llm engine: a chat model classifies, translates, grades each chunk and writes the answer.

Grading follows PaperQA2: for each chunk the model writes a short question-focused
evidence summary and scores it 1-10; the answer is written from those summaries and
their pages. Typed results come from OpenAI structured outputs or, for servers that
lack them, from JSON in the prompt, parsed and validated; a parse failure raises
`OutputParserException`, which the graph's retry policy retries.
"""

from __future__ import annotations

import json
import re
from typing import Literal, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers import PydanticOutputParser
from pydantic import BaseModel, Field

from adaptsum import prompts
from adaptsum.engines.base import Answer, Classification, Resources
from adaptsum.engines.language import REFUSAL, language_name, phrase
from adaptsum.providers.chat import message_text, usage_of
from adaptsum.state.graph_state import Citation, Grade, Retrieved, Usage, add_usage, citation
from adaptsum.store.catalog import ChunkRecord, DocumentRecord

Schema = TypeVar("Schema", bound=BaseModel)
_CITATION = re.compile(r"\[p\.\s*(\d+)\]")


class RequestClassification(BaseModel):
    """The request's kind and why."""

    kind: Literal["question", "summary", "whole_document"]
    reason: str = Field(description="One sentence.")


class ChunkGrade(BaseModel):
    """Question-focused evidence from one passage and how well it supports an answer."""

    evidence: str = Field(description="What the passage says that bears on the question.")
    relevance: int = Field(ge=1, le=10, description="1 unrelated ... 10 answers fully.")
    reason: str = Field(description="Why, briefly.")


class LLMEngine:
    """Engine steps done by a LangChain chat model."""

    name = "llm"

    def __init__(self, resources: Resources, model: BaseChatModel) -> None:
        self.ctx = resources.ctx
        self.model = model

    # -- calls ---------------------------------------------------------------------
    def _messages(self, system: str, user: str, cheap: bool) -> list[AnyMessage]:
        suffix = " /no_think" if cheap and self.ctx.no_think else ""
        return [SystemMessage(system), HumanMessage(user + suffix)]

    def _text(self, system: str, user: str, cheap: bool) -> tuple[str, Usage]:
        reply = self.model.invoke(self._messages(system, user, cheap))
        return message_text(reply), usage_of(reply)

    def _structured(
        self, schema: type[Schema], system: str, user: str, cheap: bool = True
    ) -> tuple[Schema, Usage]:
        """A validated `schema` instance; raises OutputParserException when unusable.

        In 'json_schema' mode the server is also asked to constrain its output to the
        schema (OpenAI structured outputs, vLLM, llama.cpp); either way the reply is
        parsed here, after <think> blocks are stripped, so reasoning models work too.
        """
        model = self.model
        if self._structured_mode() == "json_schema":
            model = model.bind(
                response_format={
                    "type": "json_schema",
                    "json_schema": {
                        "name": schema.__name__,
                        "schema": schema.model_json_schema(),
                        "strict": False,
                    },
                }
            )
        instructions = prompts.JSON_INSTRUCTIONS.format(
            schema=json.dumps(schema.model_json_schema(), ensure_ascii=False)
        )
        reply = model.invoke(self._messages(f"{system}\n\n{instructions}", user, cheap))
        parser = PydanticOutputParser(pydantic_object=schema)
        return parser.parse(message_text(reply)), usage_of(reply)

    def _structured_mode(self) -> str:
        if self.ctx.structured_output != "auto":
            return self.ctx.structured_output
        from langchain_openai import ChatOpenAI

        on_openai = isinstance(self.model, ChatOpenAI) and not self.ctx.chat_base_url
        return "json_schema" if on_openai else "prompt"

    # -- engine steps --------------------------------------------------------------
    def classify(self, request: str, language: str) -> Classification:
        """Structured classification of the request."""
        result, usage = self._structured(RequestClassification, prompts.CLASSIFY_SYSTEM, request)
        return Classification(result.kind, result.reason, usage)

    def contextualize(self, question: str, history: list[AnyMessage]) -> tuple[str, Usage]:
        """Rewrite a follow-up into a standalone question; no call on a thread's first turn."""
        earlier = history[:-1]
        if not any(isinstance(m, HumanMessage) for m in earlier):
            return question, {}
        transcript = "\n".join(
            f"{'User' if isinstance(m, HumanMessage) else 'Assistant'}: {m.text}"
            for m in earlier[-6:]
            if isinstance(m, HumanMessage | AIMessage)
        )
        text, usage = self._text(
            prompts.CONTEXTUALIZE_SYSTEM,
            f"Conversation:\n{transcript}\n\nLatest question: {question}",
            cheap=True,
        )
        return text or question, usage

    def translate(self, text: str, source: str, target: str) -> tuple[str, Usage]:
        """Translate for retrieval; the node calls this only when the languages differ."""
        system = prompts.TRANSLATE_SYSTEM.format(target=language_name(target))
        translated, usage = self._text(system, text, cheap=True)
        return translated or text, usage

    def grade(
        self,
        question: str,
        language: str,
        hit: Retrieved,
        chunk: ChunkRecord,
        document: DocumentRecord,
    ) -> tuple[Grade, Usage]:
        """Evidence summary plus a 1-10 relevance score for one chunk."""
        pages = (
            str(chunk.page_start)
            if chunk.page_start == chunk.page_end
            else f"{chunk.page_start}-{chunk.page_end}"
        )
        result, usage = self._structured(
            ChunkGrade,
            prompts.GRADE_SYSTEM,
            prompts.GRADE_USER.format(
                question=question, pages=pages, title=document.title, passage=chunk.text
            ),
        )
        relevant = result.relevance >= self.ctx.grade_cutoff and bool(result.evidence.strip())
        return (
            Grade(
                chunk_id=chunk.chunk_id,
                doc_id=chunk.doc_id,
                page_start=chunk.page_start,
                page_end=chunk.page_end,
                score=hit["score"],
                relevance=result.relevance,
                relevant=relevant,
                evidence=result.evidence.strip(),
                evidence_page=_evidence_page(chunk, document, result.evidence),
                reason=f"relevance {result.relevance} "
                f"{'>=' if relevant else '<'} cutoff {self.ctx.grade_cutoff}: {result.reason}",
            ),
            usage,
        )

    def answer(
        self,
        question: str,
        language: str,
        evidence: list[Grade],
        chunks: dict[str, ChunkRecord],
        documents: dict[str, DocumentRecord],
    ) -> Answer:
        """An answer in `language` from the evidence summaries, citing [p. N]."""
        refusal = phrase(REFUSAL, language)
        lines = []
        for grade in evidence:
            title = documents[grade["doc_id"]].title
            span = (
                f"p. {grade['page_start']}"
                if grade["page_start"] == grade["page_end"]
                else f"pp. {grade['page_start']}-{grade['page_end']}"
            )
            lines.append(f"[p. {grade['evidence_page']}] ({title}, {span}) {grade['evidence']}")
        system = prompts.ANSWER_SYSTEM.format(language=language_name(language), refusal=refusal)
        text, usage = self._text(
            system,
            prompts.ANSWER_USER.format(question=question, evidence="\n".join(lines)),
            cheap=False,
        )
        refused = refusal in text or any(line in text for line in REFUSAL.values())
        citations = [] if refused else _citations(text, evidence, documents)
        return Answer(text, citations, add_usage({}, usage), refused=refused)


def _evidence_page(chunk: ChunkRecord, document: DocumentRecord, evidence: str) -> int:
    """The page where the evidence's words sit in the chunk (its first page if unsure)."""
    if chunk.page_start == chunk.page_end:
        return chunk.page_start
    words = [w for w in re.findall(r"\w{2,}", evidence)][:12]
    best_offset, best_hits = 0, 0
    for offset in range(0, max(len(chunk.text) - 200, 1), 100):
        window = chunk.text[offset : offset + 300]
        hits = sum(w in window for w in words)
        if hits > best_hits:
            best_offset, best_hits = offset, hits
    return document.page_of(chunk.char_start + best_offset)


def _citations(
    text: str, evidence: list[Grade], documents: dict[str, DocumentRecord]
) -> list[Citation]:
    """Citations for the [p. N] markers that match a page of the evidence, in order."""
    out: list[Citation] = []
    seen: set[tuple[str, int]] = set()
    for page in (int(p) for p in _CITATION.findall(text)):
        grade = next(
            (g for g in evidence if g["evidence_page"] == page),
            next((g for g in evidence if g["page_start"] <= page <= g["page_end"]), None),
        )
        if grade is None or (grade["doc_id"], page) in seen:
            continue
        seen.add((grade["doc_id"], page))
        document = documents[grade["doc_id"]]
        out.append(citation(document, page, grade["chunk_id"], grade["evidence"]))
    return out
