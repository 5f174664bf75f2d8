"""A scripted stand-in for the OpenAI API, built on LangChain's fake chat model.

Parallel graders call the model in any order, so an order-based list of replies
cannot say which reply belongs to which chunk. This fake answers each call from the
prompt it receives, like a deterministic model would, and records every call.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field, PrivateAttr

from adaptsum.providers.tokens import count_tokens

PER_MESSAGE = 3
"""Tokens a chat template adds around each message (role markers), as servers count them."""


@dataclass
class Script:
    """How the fake model replies to each kind of call."""

    kind: str = "question"
    translations: dict[str, str] = field(default_factory=dict)
    relevance: Callable[[str], int] = lambda passage: 8
    answer: Callable[[str], str] = lambda evidence: "답변입니다 [p. 1]"
    invalid_grades: int = 0
    """How many grade calls get malformed JSON before valid replies."""
    think: bool = False
    usage: tuple[int, int] = (100, 20)
    summary: Callable[[str, str], str] = lambda kind, user: default_summary(kind, user)
    fail_on_map: Callable[[str], bool] = lambda user: False
    """Raise (once per matching passage) to stand for a crash in the middle of the map."""
    fill_cap: bool = False
    """Report the worst case: the prompt's tokens plus the call's whole `max_tokens`
    (a model that always writes up to its cap), instead of the fixed `usage`."""


_ids = itertools.count()


class ScriptedChatModel(GenericFakeChatModel):
    """Replies by call kind (classify, contextualize, translate, grade, answer)."""

    script: Any = Field(default_factory=Script)
    model_name: str = Field(default_factory=lambda: f"scripted-{next(_ids)}")
    """Unique per instance, so the map cache (keyed by model) never leaks between tests."""
    calls: list[Any] = Field(default_factory=list)
    spent: int = 0
    """Tokens reported over all calls (what an API would bill)."""
    messages: Any = Field(default_factory=lambda: iter(()))
    _lock: Any = PrivateAttr(default_factory=threading.Lock)

    def calls_of(self, kind: str) -> list[list[BaseMessage]]:
        return [msgs for k, msgs in self.calls if k == kind]

    def _generate(self, messages: list[BaseMessage], stop=None, run_manager=None, **kwargs):
        system = str(messages[0].content)
        # A model reads past the <document> delimiters; the script matches the text inside.
        user = re.sub(r"</?document>\n?", "", str(messages[-1].content))
        with self._lock:
            kind = _kind(system)
            self.calls.append((kind, list(messages)))
            grade_calls = len(self.calls_of("grade"))
        script = self.script
        if kind == "classify":
            source = user.removesuffix(" /no_think")
            reply = {"kind": script.kind, "reason": f"scripted {script.kind}"}
            if "translate" in system:
                reply["translation"] = script.translations.get(source, source)
            text = json.dumps(reply, ensure_ascii=False)
        elif kind == "contextualize":
            text = user.rsplit("Latest question: ", 1)[-1]
        elif kind == "translate":
            source = user.removesuffix(" /no_think")
            text = script.translations.get(source, source)
        elif kind == "grade":
            if grade_calls <= script.invalid_grades:
                text = '{"evidence": "unterminated'
            else:
                passage = user.split("\n", 3)[-1]
                text = json.dumps(
                    {
                        "evidence": passage.strip().split("\n")[0][:120],
                        "relevance": script.relevance(passage),
                        "reason": "scripted",
                    },
                    ensure_ascii=False,
                )
        elif kind == "grade_batch":
            if len(self.calls_of("grade_batch")) <= script.invalid_grades:
                text = '{"grades": [{"passage": 1, "evidence": "unterminated'
            else:
                passages = re.split(r"^Passage \d+ \(pages [^)]*\):\n", user, flags=re.M)[1:]
                text = json.dumps(
                    {
                        "grades": [
                            {
                                "passage": n,
                                "evidence": passage.strip().split("\n")[0][:120],
                                "relevance": script.relevance(passage),
                            }
                            for n, passage in enumerate(passages, 1)
                        ]
                    },
                    ensure_ascii=False,
                )
        elif kind == "answer":
            text = script.answer(user)
        else:
            if kind == "map" and script.fail_on_map(str(messages[-1].content)):
                raise RuntimeError("simulated crash during map")
            text = script.summary(kind, user)
        if script.think:
            text = f"<think>let me think about {kind}</think>\n{text}"
        inp, out = script.usage
        if script.fill_cap:
            inp = sum(count_tokens(str(m.content)) + PER_MESSAGE for m in messages)
            out = int(kwargs.get("max_tokens") or out)
        with self._lock:
            self.spent += inp + out
        message = AIMessage(
            content=text,
            usage_metadata={"input_tokens": inp, "output_tokens": out, "total_tokens": inp + out},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        # One chunk per reply is enough for the graph; the base class streams by words.
        result = self._generate(messages, stop, run_manager, **kwargs)
        from langchain_core.messages import AIMessageChunk
        from langchain_core.outputs import ChatGenerationChunk

        message = result.generations[0].message
        chunk = ChatGenerationChunk(
            message=AIMessageChunk(content=message.content, usage_metadata=message.usage_metadata)
        )
        if run_manager:
            run_manager.on_llm_new_token(str(message.content), chunk=chunk)
        yield chunk


def _kind(system: str) -> str:
    for kind, marker in [
        ("classify", "You route requests"),
        ("contextualize", "Rewrite the user's latest question"),
        ("translate", "Translate the user's text"),
        ("grade", "You judge whether a passage"),
        ("grade_batch", "You judge whether each of"),
        ("answer", "You answer questions about documents"),
        ("map", "You summarize one passage"),
        ("collapse", "You condense consecutive partial summaries"),
        ("reduce", "You write the final summary"),
        ("stuff", "You summarize a whole document"),
        ("refine", "You are refining a running summary"),
    ]:
        if marker in system:
            return kind
    raise AssertionError(f"unexpected prompt: {system[:80]}")


PAGE = re.compile(r"\[p\. (\d+)\]")


def default_summary(kind: str, user: str) -> str:
    """A summary citing the pages its input marks, long enough to need collapsing if many."""
    pages = list(dict.fromkeys(PAGE.findall(user))) or ["1"]
    body = " ".join(f"Point {i} of the {kind} summary." for i in range(1, 6))
    if kind in ("reduce", "stuff", "refine"):
        return "\n\n".join(f"Paragraph {n}. {body} [p. {pages[n % len(pages)]}]" for n in range(5))
    return f"{body} [p. {pages[0]}]"
