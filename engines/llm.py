"""The llm engine: a chat model classifies, translates, grades passages and writes the answer.

Grading follows PaperQA2: for each passage the model writes a short question-focused
evidence summary and scores it 1-10; the answer is written from those summaries and
their pages. Typed results come from the server's `json_schema` response format
(OpenAI, vLLM, llama.cpp and Ollama all constrain output to a schema) or, for a server
that rejects it, from JSON asked for in the prompt. Every string field is bounded
(`maxLength`) and every call has its own `max_tokens`, so a reply cannot run out of
tokens mid-JSON; one that still does (`finish_reason: length`) counts as a failure,
never "repaired". Off an ask's critical path, failures are retried here at a higher
temperature (an identical prompt at temperature 0 would fail the same way); on it
(classify, the batch grade) a failure goes straight to the rule, so an ask stays at
≤ 3 sequential round trips. Every attempt's tokens are counted.

A weak model must not decide alone: a passage counts as relevant only when the
extractive engine's evidence check (similarity, key terms) agrees, and an answer's
numbers and names are checked against its evidence.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from langchain_core.exceptions import OutputParserException
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field, ValidationError

from adaptsum import prompts
from adaptsum.engines.base import Answer, Classification, Resources
from adaptsum.engines.language import REFUSAL, language_name, phrase
from adaptsum.providers.chat import Reply, call, dedupe_lines, length_error_reply
from adaptsum.state.graph_state import Citation, Grade, Retrieved, Usage, add_usage, citation
from adaptsum.store.catalog import ChunkRecord, DocumentRecord

if TYPE_CHECKING:
    from adaptsum.nodes.retry import Deadline

Schema = TypeVar("Schema", bound=BaseModel)
_CITATION = re.compile(r"\[p\.\s*(\d+)\]")

MAX_ATTEMPTS = 3
"""Attempts per structured call; each retry samples hotter (see `_temperature`)."""

MAX_TOKENS = {
    "classify": 96,
    "translate": 160,
    "contextualize": 160,
    "grade": 200,
    "grade_batch_per_passage": 140,
    "answer": 450,
}
"""Per-step output limits: enough for the bounded fields, never the context's size."""


def _bounded(max_length: int, description: str) -> Any:
    """A string field whose JSON schema says `maxLength` (a grammar enforces it).

    Validation does not reject a longer string (prompt-mode replies may overrun); the
    engine trims it instead.
    """
    return Field(description=description, json_schema_extra={"maxLength": max_length})


class RequestClassification(BaseModel):
    """The request's kind, why, and (when asked) the question translated for retrieval."""

    kind: Literal["question", "summary", "whole_document"]
    reason: str = _bounded(120, "One short sentence.")


class RouteAndTranslation(BaseModel):
    """Classification and translation of the question in one call (one round trip)."""

    kind: Literal["question", "summary", "whole_document"]
    reason: str = _bounded(120, "One short sentence.")
    translation: str = _bounded(300, "The request translated into the target language.")


class ChunkGrade(BaseModel):
    """Question-focused evidence from one passage and how well it supports an answer."""

    evidence: str = _bounded(300, "What the passage says that bears on the question.")
    relevance: int = Field(ge=1, le=10, description="1 unrelated ... 10 answers fully.")
    reason: str = _bounded(100, "Why, briefly.")


class PassageGrade(BaseModel):
    """One passage's grade inside a batch."""

    passage: int = Field(ge=1, description="The passage's number.")
    evidence: str = _bounded(240, "What the passage says that bears on the question.")
    relevance: int = Field(ge=1, le=10, description="1 unrelated ... 10 answers fully.")


class BatchGrades(BaseModel):
    """Grades of all passages, in one reply."""

    grades: list[PassageGrade]


class StructuredOutputFailed(Exception):
    """Every attempt's reply was unusable; carries the tokens they used and why."""

    def __init__(self, message: str, usage: Usage) -> None:
        super().__init__(message)
        self.usage = usage


_PROMPT_MODE_SERVERS: set[str] = set()
"""Base URLs that rejected `json_schema`; asked for JSON in the prompt from then on."""

_QUESTION_RULE = re.compile(
    r"[?？]\s*$|까\s*$|나요\s*$|인가요|무엇|어떻게|어떤|몇\s|몇개|언제|누가|누구|어디|왜|"
    r"^(what|which|who|whom|whose|when|where|why|how|is|are|does|do|did|can|could|should|"
    r"was|were|has|have)\b",
    re.IGNORECASE,
)


class LLMEngine:
    """Engine steps done by a LangChain chat model."""

    name = "llm"

    def __init__(
        self,
        resources: Resources,
        model: BaseChatModel,
        deadline: Deadline | None = None,
        stream_answer: bool = True,
    ) -> None:
        self.resources = resources
        self.ctx = resources.ctx
        self.model = model
        self.deadline = deadline
        self.stream_answer = stream_answer
        self.notes: list[str] = []

    # -- calls ---------------------------------------------------------------------
    def _messages(self, system: str, user: str, cheap: bool) -> list[AnyMessage]:
        suffix = " /no_think" if cheap and self.ctx.no_think else ""
        return [SystemMessage(system), HumanMessage(user + suffix)]

    def _temperature(self, attempt: int) -> float | None:
        """The configured temperature first, then hotter: a retry must not repeat itself."""
        if attempt == 0:
            return None
        return min(1.0, self.ctx.temperature + 0.3 * attempt)

    def call(
        self,
        messages: list[AnyMessage],
        step: str,
        *,
        max_tokens: int | None = None,
        stream: bool = False,
        attempt: int = 0,
        response_format: dict | None = None,
    ) -> Reply:
        """One bounded call (see `providers.chat.call`), `LengthFinishReasonError` included."""
        try:
            return call(
                self.model,
                messages,
                max_tokens=max_tokens or MAX_TOKENS[step],
                timeout=self.ctx.request_timeout,
                deadline=self.deadline,
                stream=stream,
                temperature=self._temperature(attempt),
                response_format=response_format,
            )
        except Exception as exc:
            reply = length_error_reply(exc)
            if reply is None:
                raise
            return reply

    def _text(self, system: str, user: str, step: str) -> tuple[str, Usage]:
        reply = self.call(self._messages(system, user, cheap=True), step)
        return ("" if reply.truncated else reply.text), reply.usage

    def structured(
        self,
        schema: type[Schema],
        system: str,
        user: str,
        step: str,
        max_tokens: int | None = None,
        *,
        attempts: int = MAX_ATTEMPTS,
        json_schema: dict | None = None,
    ) -> tuple[Schema, Usage]:
        """A validated `schema` instance and the tokens of every attempt.

        `attempts` bounds the calls: steps on an ask's critical path pass 1 and fall back
        to their rule at once (a retry is a whole extra round trip on a slow server).
        `json_schema` replaces the schema sent to the server (e.g. with `maxItems`).

        Raises:
            StructuredOutputFailed: no attempt gave a usable reply (its usage included).
        """
        usage: Usage = {}
        errors: list[str] = []
        attempt = 0
        while attempt < attempts:
            mode = self.structured_mode()
            if mode == "json_schema":
                response_format = {
                    "type": "json_schema",
                    "json_schema": {
                        "name": schema.__name__,
                        "schema": json_schema or schema.model_json_schema(),
                        "strict": False,
                    },
                }
                messages = self._messages(system, user, cheap=True)
            else:
                response_format = None
                messages = self._messages(
                    f"{system}\n\n{prompts.JSON_INSTRUCTIONS.format(example=example_of(schema))}",
                    user,
                    cheap=True,
                )
            try:
                reply = self.call(
                    messages,
                    step,
                    max_tokens=max_tokens,
                    attempt=attempt,
                    response_format=response_format,
                )
            except Exception as exc:
                if mode == "json_schema" and _rejects_json_schema(exc):
                    _PROMPT_MODE_SERVERS.add(self.ctx.chat_base_url)
                    continue  # asked again in prompt mode: not a failed attempt
                raise
            attempt += 1
            usage = add_usage(usage, reply.usage)
            if reply.truncated:
                errors.append("reply cut at max_tokens (finish_reason: length)")
                continue
            try:
                return parse_json(reply.text, schema), usage
            except (OutputParserException, ValidationError, ValueError) as exc:
                errors.append(f"{type(exc).__name__}: {str(exc)[:80]}")
        raise StructuredOutputFailed(
            f"{attempts} unusable {'reply' if attempts == 1 else 'replies'} "
            f"({'; '.join(errors[-2:])})",
            usage,
        )

    def structured_mode(self) -> str:
        """'json_schema' unless configured otherwise or the server rejected it."""
        if self.ctx.structured_output != "auto":
            return self.ctx.structured_output
        from langchain_openai import ChatOpenAI

        if not isinstance(self.model, ChatOpenAI):
            return "prompt"
        return "prompt" if self.ctx.chat_base_url in _PROMPT_MODE_SERVERS else "json_schema"

    # -- engine steps --------------------------------------------------------------
    def rule_classification(self, request: str, language: str) -> Classification | None:
        """The keyword rules when they are sure (no call); None when the model must decide."""
        from adaptsum.engines.extractive import ExtractiveEngine

        rule = ExtractiveEngine(self.resources).classify(request, language)
        if rule.kind != "question" or _QUESTION_RULE.search(request.strip()):
            return Classification(rule.kind, f"rule: {rule.reason}", {})
        return None

    def classify(self, request: str, language: str) -> Classification:
        """Rules first; the model only when they are unsure."""
        rule = self.rule_classification(request, language)
        if rule is not None:
            return rule
        result, usage = self.structured(
            RequestClassification, prompts.CLASSIFY_SYSTEM, request, "classify", attempts=1
        )
        return Classification(result.kind, result.reason[:200], usage)

    def classify_and_translate(
        self, request: str, language: str, target: str
    ) -> tuple[Classification, str, Usage]:
        """One call for both when the rules are unsure and the languages differ."""
        system = prompts.CLASSIFY_TRANSLATE_SYSTEM.format(target=language_name(target))
        result, usage = self.structured(
            RouteAndTranslation,
            system,
            request,
            "classify",
            max_tokens=MAX_TOKENS["translate"],
            attempts=1,
        )
        translation = result.translation if usable_translation(request, result.translation) else ""
        return Classification(result.kind, result.reason[:200], usage), translation, usage

    def contextualize(self, question: str, history: list[AnyMessage]) -> tuple[str, Usage]:
        """Rewrite a follow-up into a standalone question; no call on a thread's first turn."""
        earlier = history[:-1]
        if not any(isinstance(m, HumanMessage) for m in earlier):
            return question, {}
        transcript = "\n".join(
            f"{'User' if isinstance(m, HumanMessage) else 'Assistant'}: {m.text[:400]}"
            for m in earlier[-6:]
            if isinstance(m, HumanMessage | AIMessage)
        )
        text, usage = self._text(
            prompts.CONTEXTUALIZE_SYSTEM,
            f"Conversation:\n{transcript}\n\nLatest question: {question}",
            "contextualize",
        )
        return (text if usable_translation(question, text) else question), usage

    def translate(self, text: str, source: str, target: str) -> tuple[str, Usage]:
        """Translate for retrieval; an unusable translation ('1000.0') gives back the input."""
        system = prompts.TRANSLATE_SYSTEM.format(target=language_name(target))
        translated, usage = self._text(system, text, "translate")
        return (translated if usable_translation(text, translated) else text), usage

    def grade(
        self,
        question: str,
        language: str,
        hit: Retrieved,
        chunk: ChunkRecord,
        document: DocumentRecord,
    ) -> tuple[Grade, Usage]:
        """Evidence summary plus a 1-10 relevance score for one chunk, checked by evidence."""
        result, usage = self.structured(
            ChunkGrade,
            prompts.GRADE_SYSTEM,
            prompts.GRADE_USER.format(
                question=question,
                pages=_pages(chunk),
                title=prompts.defuse(document.title),
                passage=prompts.as_data(chunk.text),
            ),
            "grade",
        )
        grade = self._combine(
            question, language, hit, chunk, document, result.relevance, result.evidence
        )
        return grade, usage

    def grade_batch(
        self,
        question: str,
        language: str,
        hits: list[Retrieved],
        chunks: dict[str, ChunkRecord],
        documents: dict[str, DocumentRecord],
    ) -> tuple[list[Grade], Usage, str]:
        """All passages graded in one structured call; the rule grades what it leaves out.

        Returns the grades, the usage, and a note ('' when the model graded every one).
        """
        passages = "\n\n".join(
            prompts.BATCH_PASSAGE.format(
                n=i + 1,
                pages=_pages(chunks[h["chunk_id"]]),
                title=prompts.defuse(documents[h["doc_id"]].title),
                passage=prompts.as_data(chunks[h["chunk_id"]].text),
            )
            for i, h in enumerate(hits)
        )
        note = ""
        # Exactly one grade per passage: without `maxItems` a grammar lets a small model
        # go on listing grades until `max_tokens` cuts the reply.
        schema = BatchGrades.model_json_schema()
        schema["properties"]["grades"].update(minItems=len(hits), maxItems=len(hits))
        try:
            result, usage = self.structured(
                BatchGrades,
                prompts.GRADE_BATCH_SYSTEM.format(count=len(hits)),
                prompts.GRADE_BATCH_USER.format(question=question, passages=passages),
                "grade",
                max_tokens=40 + MAX_TOKENS["grade_batch_per_passage"] * len(hits),
                attempts=1,  # on the critical path: a failed batch goes to the rule at once
                json_schema=schema,
            )
            by_number = {g.passage: g for g in result.grades}
        except StructuredOutputFailed as exc:
            usage, by_number = exc.usage, {}
            note = f"grader output unusable ({exc}); similarity rule used"
        grades = []
        for i, hit in enumerate(hits):
            chunk, document = chunks[hit["chunk_id"]], documents[hit["doc_id"]]
            graded = by_number.get(i + 1)
            if graded is None:
                grades.append(self._rule_grade(question, language, hit, chunk, document, note))
                continue
            grades.append(
                self._combine(
                    question, language, hit, chunk, document, graded.relevance, graded.evidence
                )
            )
        missing = sum(1 for i in range(len(hits)) if i + 1 not in by_number)
        if missing and not note:
            note = f"the grader skipped {missing} of {len(hits)} passages; similarity rule used"
        return grades, usage, note

    def _rule_grade(
        self,
        question: str,
        language: str,
        hit: Retrieved,
        chunk: ChunkRecord,
        document: DocumentRecord,
        note: str,
    ) -> Grade:
        from adaptsum.engines.extractive import ExtractiveEngine

        grade, _ = ExtractiveEngine(self.resources).grade(question, language, hit, chunk, document)
        grade["reason"] = f"similarity rule ({note or 'not graded'}): {grade['reason']}"
        return grade

    def _combine(
        self,
        question: str,
        language: str,
        hit: Retrieved,
        chunk: ChunkRecord,
        document: DocumentRecord,
        relevance: int,
        evidence: str,
    ) -> Grade:
        """The model's grade, counted relevant only when the evidence check agrees."""
        from adaptsum.engines.extractive import ExtractiveEngine

        check, _ = ExtractiveEngine(self.resources).grade(question, language, hit, chunk, document)
        evidence = " ".join(evidence.split())[:400]
        model_says = relevance >= self.ctx.grade_cutoff and bool(evidence)
        relevant = model_says and check["relevant"]
        reason = f"model relevance {relevance} {'>=' if model_says else '<'} cutoff " + str(
            self.ctx.grade_cutoff
        )
        if model_says and not check["relevant"]:
            reason += f", but the evidence check disagrees ({check['reason']})"
        else:
            reason += f"; evidence check: {check['reason']}"
        return Grade(
            chunk_id=chunk.chunk_id,
            doc_id=chunk.doc_id,
            page_start=chunk.page_start,
            page_end=chunk.page_end,
            score=hit["score"],
            relevance=relevance,
            relevant=relevant,
            evidence=evidence or check["evidence"],
            evidence_page=_evidence_page(chunk, document, evidence)
            if evidence
            else check["evidence_page"],
            reason=reason,
        )

    def answer(
        self,
        question: str,
        language: str,
        evidence: list[Grade],
        chunks: dict[str, ChunkRecord],
        documents: dict[str, DocumentRecord],
    ) -> Answer:
        """An answer in `language` from the evidence, with valid [p. N] citations.

        The reply is checked: repeated sentences are dropped, an answer citing no
        evidence page gets the pages it was built from (and says so), and numbers or
        names found in none of the evidence are flagged, or, with `strict_grounding`,
        the answer is written once more and then refused.
        """
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
        user = prompts.ANSWER_USER.format(
            question=question, evidence=prompts.as_data("\n".join(lines))
        )
        sources = " ".join(
            [question]
            + [g["evidence"] for g in evidence]
            + [chunks[g["chunk_id"]].text for g in evidence if g["chunk_id"] in chunks]
        )
        same_language = all(documents[g["doc_id"]].language == language for g in evidence)
        usage: Usage = {}
        notes: list[str] = []
        strict = self.ctx.strict_grounding
        streamed = self.stream_answer and not strict  # a rewrite must not stream twice
        for attempt in range(2 if strict else 1):
            reply = self.call(
                self._messages(system, user, cheap=False),
                "answer",
                stream=streamed,
                attempt=attempt,
            )
            usage = add_usage(usage, reply.usage)
            # A streamed reply is shown line by line as it comes (a line repeating an
            # earlier one is not shown): the final text drops the same lines, and no more.
            raw = reply.raw.strip()
            text = dedupe_lines(raw) if streamed else dedupe_sentences(reply.text)
            if reply.truncated:
                notes.append("the answer reached its max_tokens and was cut")
            refused = _is_refusal(text, refusal)
            if refused:
                return Answer(
                    refusal,
                    [],
                    usage,
                    refused=True,
                    streamed=reply.text if streamed else "",
                    notes=notes,
                    message_id=_message_id(reply),
                )
            unsupported = ungrounded_terms(text, sources, same_language=same_language)
            if unsupported and strict and attempt == 0:
                notes.append(f"rewritten: {', '.join(unsupported[:5])} not in the evidence")
                user += "\n\n" + prompts.GROUNDING_RETRY.format(terms=", ".join(unsupported[:8]))
                continue
            if unsupported and strict:
                notes.append(f"refused: {', '.join(unsupported[:5])} still not in the evidence")
                return Answer(refusal, [], usage, refused=True, streamed="", notes=notes)
            break
        final = text
        citations = _citations(final, evidence, documents)
        if not citations:
            pages = list(dict.fromkeys(g["evidence_page"] for g in evidence))[:3]
            added = "".join(f"[p. {p}]" for p in pages)
            final = f"{final} {added}\n{phrase(prompts.PAGES_ADDED, language)}"
            citations = _citations(added, evidence, documents)
            notes.append(f"the model cited no evidence page; added {added}")
        if unsupported:
            final += "\n" + phrase(prompts.UNGROUNDED, language).format(
                terms=", ".join(unsupported[:8])
            )
            notes.append(f"not found in the evidence: {', '.join(unsupported[:8])}")
        added = final[len(text) :]
        if streamed:  # what a client that drops repeated lines of the stream shows
            final = dedupe_lines(raw + added)
        return Answer(
            final,
            citations,
            usage,
            refused=False,
            streamed=raw if streamed else "",
            added=added if streamed else "",
            notes=notes,
            message_id=_message_id(reply),
        )


def _message_id(reply: Reply) -> str:
    return str(reply.message.id or "") if reply.message is not None else ""


def _pages(chunk: ChunkRecord) -> str:
    return (
        str(chunk.page_start)
        if chunk.page_start == chunk.page_end
        else f"{chunk.page_start}-{chunk.page_end}"
    )


def _is_refusal(text: str, refusal: str) -> bool:
    return refusal in text or any(line in text for line in REFUSAL.values()) or not text.strip()


_LETTER = re.compile(r"[^\W\d_]")


def usable_translation(source: str, translated: str) -> bool:
    """A translation fit to search with: has letters, a plausible length, no schema echo."""
    text = translated.strip()
    if not text or not _LETTER.search(text):
        return False
    if text.startswith("{") or '"properties"' in text:
        return False
    ratio = len(text) / max(len(source.strip()), 1)
    return 0.2 <= ratio <= 6


def parse_json(text: str, schema: type[Schema]) -> Schema:
    """The first JSON object in `text` validated as `schema`; a schema echo is refused."""
    cleaned = re.sub(r"^```(?:json)?|```$", "", text.strip()).strip()
    start = cleaned.find("{")
    if start < 0:
        raise OutputParserException(f"no JSON object in the reply: {text[:80]!r}")
    try:
        data, _ = json.JSONDecoder().raw_decode(cleaned[start:])
    except json.JSONDecodeError as exc:
        raise OutputParserException(f"invalid JSON: {exc}") from None
    if not isinstance(data, dict) or "properties" in data or data.get("type") == "object":
        raise OutputParserException("the reply echoes the schema instead of filling it")
    return schema.model_validate(data)


def example_of(schema: type[BaseModel]) -> str:
    """A filled-in example object for prompt mode (a small model copies a raw schema)."""
    return json.dumps(_example(schema.model_json_schema()), ensure_ascii=False)


def _example(spec: dict, defs: dict | None = None) -> Any:
    defs = defs if defs is not None else spec.get("$defs", {})
    if "$ref" in spec:
        return _example(defs[spec["$ref"].rsplit("/", 1)[1]], defs)
    if "enum" in spec:
        return spec["enum"][0]
    kind = spec.get("type")
    if kind == "object":
        return {k: _example(v, defs) for k, v in spec.get("properties", {}).items()}
    if kind == "array":
        return [_example(spec.get("items", {}), defs)]
    if kind == "integer":
        return spec.get("minimum", 1)
    return "..."


def _rejects_json_schema(exc: Exception) -> bool:
    """The server does not do `json_schema` (it answered 4xx naming the response format)."""
    from adaptsum.providers.chat import ModelRequestRejected

    text = str(exc).lower()
    return isinstance(exc, ModelRequestRejected) and (
        "response_format" in text or "json_schema" in text or "grammar" in text
    )


_SENTENCE_SPLIT = re.compile(r"(?<=[.!?。])\s+|\n+")


def dedupe_sentences(text: str) -> str:
    """Drop sentences a small model repeats word for word (its answer 'twice in a row')."""
    seen: set[str] = set()
    kept: list[str] = []
    for sentence in _SENTENCE_SPLIT.split(text.strip()):
        key = " ".join(_CITATION.sub("", sentence).split()).lower()
        if key and key in seen:
            continue
        seen.add(key)
        if sentence.strip():
            kept.append(sentence.strip())
    return " ".join(kept)


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NAME = re.compile(r"\b[A-Z][A-Za-z0-9]*(?:[-.][A-Za-z0-9]+)*\b")
_COMMON = {
    "The",
    "This",
    "That",
    "These",
    "Those",
    "It",
    "In",
    "On",
    "At",
    "For",
    "And",
    "But",
    "Or",
    "A",
    "An",
    "If",
    "As",
    "By",
    "To",
    "Of",
    "With",
    "From",
    "Yes",
    "No",
    "There",
    "They",
    "We",
    "Its",
    "Their",
    "What",
    "Which",
    "When",
    "Where",
    "Who",
    "How",
    "Why",
    "I",
    "Page",
    "According",
    "Based",
    "However",
    "Also",
    "So",
    "Then",
    "Both",
    "Each",
    "All",
    "Some",
}


def ungrounded_terms(answer: str, evidence: str, same_language: bool = True) -> list[str]:
    """Numbers and names in the answer that appear nowhere in its evidence.

    Across languages a plain name is translated ('Hangul' for '한글'), so only names a
    translation keeps as written (with a digit or several capitals: Qwen3, GPT-4, MMLU)
    are checked.
    """
    body = _CITATION.sub(" ", answer)
    haystack = " ".join(evidence.split()).lower()
    digits = re.sub(r"[.,\s]", "", haystack)
    out: list[str] = []
    for number in dict.fromkeys(_NUMBER.findall(body)):
        bare = re.sub(r"[.,]", "", number)
        if number.lower() not in haystack and bare not in digits:
            out.append(number)
    for name in dict.fromkeys(_NAME.findall(body)):
        if name in _COMMON or len(name) < 3:
            continue
        technical = any(c.isdigit() for c in name) or sum(c.isupper() for c in name) > 1
        if not same_language and not technical:
            continue
        if name.lower() not in haystack:
            out.append(name)
    return out


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
