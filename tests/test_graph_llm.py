"""The main graph with the llm engine, against a scripted stand-in for the OpenAI API."""

from __future__ import annotations

import pytest
from fakes import Script, ScriptedChatModel

from adaptsum import Context, build_graph
from adaptsum.engines.language import REFUSAL, detect_language
from adaptsum.store.index import DocumentIndex

KO_QUESTION = "한글날은 언제인가요?"


def run(index: DocumentIndex, script: Script, request: str = KO_QUESTION, **ctx_extra):
    model = ScriptedChatModel(script=script)
    ctx = Context(data_dir=index.ctx.data_dir, engine="llm", **ctx_extra)
    out = build_graph(chat_model=model).invoke(
        {"request": request, "documents": ["hangul-ko.pdf"]}, context=ctx
    )
    return out, model


def chunks_of_korean_sample(index: DocumentIndex) -> int:
    return index.resolve(["hangul-ko.pdf"])[0].chunks


def test_answer_in_askers_language_without_translation(samples_index: DocumentIndex) -> None:
    script = Script(answer=lambda evidence: "한글날은 10월 9일입니다 [p. 1].")
    out, model = run(samples_index, script)
    n = chunks_of_korean_sample(samples_index)
    assert out["route"] == "answer"
    assert detect_language(out["answer"]) == "ko"
    assert [c["page"] for c in out["citations"]] == [1]
    assert len(model.calls_of("translate")) == 0  # same language: no call
    assert len(model.calls_of("contextualize")) == 0  # first turn: nothing to resolve
    assert len(model.calls_of("grade")) == n  # one grader per retrieved chunk
    assert model.calls_of("classify") == []  # a clear question: the rules decide, no call
    assert out["usage"] == {
        "calls": n + 1,
        "input_tokens": 100 * (n + 1),
        "output_tokens": 20 * (n + 1),
        "total_tokens": 120 * (n + 1),
    }


def test_translation_when_languages_differ(samples_index: DocumentIndex) -> None:
    question = "When is Hangul Day?"
    script = Script(
        translations={question: "한글날은 언제인가?"},
        answer=lambda evidence: "Hangul Day is on 9 October [p. 1].",
    )
    out, model = run(samples_index, script, request=question)
    assert len(model.calls_of("translate")) == 1
    graded_questions = {m[-1].content.split("\n")[0] for m in model.calls_of("grade")}
    assert graded_questions == {f"Question: {question}"}
    assert out["answer"] == "Hangul Day is on 9 October [p. 1]."
    assert out["question_language"] == "en"
    # The answer prompt asks for the asker's language.
    assert "Write the answer in English." in model.calls_of("answer")[0][0].content


def test_evidence_pages_reach_the_answer_prompt(samples_index: DocumentIndex) -> None:
    script = Script(relevance=lambda passage: 9 if "10월 9일" in passage else 2)
    out, model = run(samples_index, script)
    prompt = model.calls_of("answer")[0][-1].content
    evidence_lines = [line for line in prompt.splitlines() if line.startswith("[p. ")]
    assert len(evidence_lines) == 1 and evidence_lines[0].startswith("[p. 1]")
    relevant = [g for g in out["citations"]]
    assert relevant and relevant[0]["page"] == 1


def test_nothing_relevant_is_refused_without_an_answer_call(
    samples_index: DocumentIndex,
) -> None:
    out, model = run(samples_index, Script(relevance=lambda passage: 2))
    assert out["route"] == "refuse" and out["answer"] == REFUSAL["ko"]
    assert model.calls_of("answer") == []
    assert "none of" in out["route_reason"] and "cutoff 6" in out["route_reason"]


def test_model_may_refuse_from_the_evidence(samples_index: DocumentIndex) -> None:
    out, _ = run(samples_index, Script(answer=lambda evidence: REFUSAL["ko"]))
    assert out["route"] == "refuse" and out["citations"] == []
    assert "insufficient" in out["route_reason"]


@pytest.mark.parametrize("kind", ["whole_document", "summary"])
def test_whole_document_requests_skip_retrieval(samples_index: DocumentIndex, kind: str) -> None:
    # The rules cannot tell what "explain this document" wants: the model decides.
    out, model = run(samples_index, Script(kind=kind), request="이 문서를 설명해 줘")
    assert len(model.calls_of("classify")) == 1
    assert out["route"] == "summarize"
    assert model.calls_of("grade") == [] and model.calls_of("answer") == []
    assert len(model.calls_of("stuff")) == 1  # a short document fits one call
    assert (out["summary_plan"]["focus"] != "") == (kind == "whole_document")


def test_malformed_grade_is_retried_then_recovered(samples_index: DocumentIndex) -> None:
    out, model = run(samples_index, Script(invalid_grades=1))
    n = chunks_of_korean_sample(samples_index)
    assert len(model.calls_of("grade")) == n + 1  # one retry
    assert out["route"] == "answer"
    assert all("grader failed" not in c["evidence"] for c in out["citations"])


def test_grader_falls_back_after_last_retry(samples_index: DocumentIndex) -> None:
    out, model = run(samples_index, Script(invalid_grades=10_000))
    n = chunks_of_korean_sample(samples_index)
    assert len(model.calls_of("grade")) == 3 * n  # every attempt used
    assert out["route"] in {"answer", "refuse"}  # decided by the similarity rule
    assert "similarity" in out["route_reason"]


def test_think_blocks_stripped_and_no_think_on_cheap_calls(
    samples_index: DocumentIndex,
) -> None:
    script = Script(think=True, answer=lambda evidence: "10월 9일입니다 [p. 1].")
    out, model = run(samples_index, script, no_think=True)
    assert out["answer"] == "10월 9일입니다 [p. 1]."
    for kind in ("classify", "grade"):
        assert all(m[-1].content.endswith(" /no_think") for m in model.calls_of(kind))
    assert not model.calls_of("answer")[0][-1].content.endswith("/no_think")


def test_follow_up_is_rewritten_with_the_thread(samples_index: DocumentIndex) -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    model = ScriptedChatModel(script=Script())
    ctx = Context(data_dir=samples_index.ctx.data_dir, engine="llm")
    graph = build_graph(InMemorySaver(), chat_model=model)
    config = {"configurable": {"thread_id": "t"}}
    graph.invoke(
        {"request": "한글은 누가 만들었나요?", "documents": ["hangul-ko.pdf"]}, config, context=ctx
    )
    graph.invoke(
        {"request": "그는 몇 번째 임금인가요?", "documents": ["hangul-ko.pdf"]}, config, context=ctx
    )
    calls = model.calls_of("contextualize")
    assert len(calls) == 1  # only the follow-up needs it
    assert "User: 한글은 누가 만들었나요?" in calls[0][-1].content


class TokenByToken(ScriptedChatModel):
    """Streams each reply a few characters at a time, as a server sends tokens."""

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        from langchain_core.messages import AIMessageChunk
        from langchain_core.outputs import ChatGenerationChunk

        message = self._generate(messages, stop, run_manager, **kwargs).generations[0].message
        text = str(message.content)
        pieces = [text[i : i + 3] for i in range(0, len(text), 3)]
        for i, piece in enumerate(pieces):
            usage = message.usage_metadata if i == len(pieces) - 1 else None
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece, usage_metadata=usage))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk


@pytest.mark.parametrize(
    "reply",
    [
        # SmolLM2's loop: one line again and again, then the rest.
        "한글날은 10월 9일입니다 [p. 1].\n" * 6
        + "세종이 만들었습니다.\n\n\n한글날은 10월 9일입니다 [p. 1].",
        # No citation at all: adaptsum adds the pages after a repeated last line.
        "Hangul Day is a holiday.\n\nIt is in October.\nHangul Day is a holiday.",
        # Nothing repeated: printed exactly as written.
        "한글날은 10월 9일입니다 [p. 1].\n세종이 만들었습니다.",
    ],
)
def test_streamed_answer_is_printed_line_by_line_without_repeated_lines(
    samples_index: DocumentIndex, reply: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the CLI prints of a streamed answer is the final answer, each line once."""
    from langgraph.checkpoint.memory import InMemorySaver

    from adaptsum.cli import _TokenPrinter
    from adaptsum.providers.chat import dedupe_lines

    model = TokenByToken(script=Script(answer=lambda evidence: reply))
    ctx = Context(data_dir=samples_index.ctx.data_dir, engine="llm")
    graph = build_graph(InMemorySaver(), chat_model=model)
    config = {"configurable": {"thread_id": "stream"}}
    printer = _TokenPrinter(enabled=True)
    tokens: list[str] = []
    for message, meta in graph.stream(
        {"request": KO_QUESTION, "documents": ["hangul-ko.pdf"]},
        config,
        context=ctx,
        stream_mode="messages",
    ):
        if meta.get("langgraph_node") == "answer" and type(message).__name__ == "AIMessageChunk":
            tokens.append(message.text)
            printer.feed(message.text)
    answer = graph.get_state(config).values["answer"]
    printer.finish(answer)
    printed = capsys.readouterr().out
    assert len(tokens) > 3  # it was streamed
    assert printed == answer + "\n"
    lines = [" ".join(line.split()) for line in answer.splitlines() if line.strip()]
    assert len(lines) == len(set(lines))  # no line twice
    assert "\n\n\n" not in answer
    # The stream itself carries the model's text as it came; dropping its repeated
    # lines gives the final answer (what any client that does the same shows).
    assert dedupe_lines("".join(tokens).strip()) == answer
    if "[p." not in reply:
        assert "[p. 1]" in answer  # the pages adaptsum added reached the screen too
