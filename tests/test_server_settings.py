"""Operator settings versus run settings, and errors that reach API clients (no server needed)."""

from __future__ import annotations

import pytest

from adaptsum.errors import AdaptsumError, ConfigError, DocumentError
from adaptsum.nodes.retry import retryable
from adaptsum.providers import NO_KEY, openai_api_key
from adaptsum.state.context import OPERATOR_SETTINGS, Context


def test_errors_keep_their_message_for_the_server_and_are_never_retried() -> None:
    # langgraph-api passes on the message of ValueErrors only (langgraph_api/serde.py).
    for error in (AdaptsumError("x"), ConfigError("x"), DocumentError("a.pdf", "not a PDF")):
        assert isinstance(error, ValueError)
        assert retryable(error) is False


def test_a_run_cannot_set_operator_settings_on_a_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADAPTSUM_SERVER", "1")
    assert {"database_url", "catalog_url", "checkpoint_url", "chroma_url"} <= set(OPERATOR_SETTINGS)
    for name in OPERATOR_SETTINGS:  # storage URLs too: else a run picks the server's database
        with pytest.raises(ConfigError, match=f"{name} is an operator setting"):
            Context(**{name: "http://attacker:9/v1"})
    monkeypatch.setenv("ADAPTSUM_CHAT_BASE_URL", "http://operator:8080/v1")
    assert Context().chat_base_url == "http://operator:8080/v1"  # the environment's is used
    monkeypatch.delenv("ADAPTSUM_SERVER")
    assert Context(data_dir="/tmp/mine").data_dir == "/tmp/mine"  # the CLI's user may


def test_the_schema_a_server_shows_marks_its_operator_settings() -> None:
    # Studio lists every context field; a remote user learns which ones are not theirs.
    from adaptsum.graph.main_graph import build_graph

    properties = build_graph().get_context_jsonschema()["properties"]
    marked = {name for name, p in properties.items() if "Operator setting" in p["description"]}
    assert marked == set(OPERATOR_SETTINGS)


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"k": "five"}, "k must be an integer, got 'five'"),
        ({"temperature": "hot"}, "temperature must be a number"),
        ({"sentence_rerank": "yes"}, "sentence_rerank must be true or false"),
        ({"engine": "gpt"}, "engine must be one of 'extractive', 'llm'"),
        ({"answer_language": "klingon"}, "answer_language must be"),
        ({"answer_language": "xx"}, "answer_language must be .* got 'xx'"),
        ({"rerank_depth": 0}, "rerank_depth must be at least 1, got 0"),
        ({"similarity_threshold": 5}, "similarity_threshold must be between 0 and 1, got 5"),
        ({"min_term_support": -1}, "min_term_support must be between 0 and 1, got -1"),
        ({"max_tokens": -5}, "max_tokens must be 0 \\(no budget\\) or more, got -5"),
        ({"evidence_sentences": 0}, "evidence_sentences must be at least 1, got 0"),
    ],
)
def test_context_values_are_checked_by_name(context: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Context(**context)


@pytest.mark.parametrize(
    ("variable", "raw", "message"),
    [
        ("ADAPTSUM_K", "abc", "ADAPTSUM_K must be an integer, got 'abc'"),
        ("ADAPTSUM_GLOSSARY", "maybe", "ADAPTSUM_GLOSSARY must be true or false"),
        ("ADAPTSUM_SENTENCE_RERANK", "ture", "ADAPTSUM_SENTENCE_RERANK must be true or false"),
    ],
)
def test_environment_values_are_checked_by_name(
    monkeypatch: pytest.MonkeyPatch, variable: str, raw: str, message: str
) -> None:
    monkeypatch.setenv(variable, raw)
    with pytest.raises(ConfigError, match=message):
        Context()


def test_a_worker_setting_that_does_not_parse_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """It was read as "on" (anything but 0/off/no/false) and started a worker."""
    from adaptsum import cli

    monkeypatch.setenv("ADAPTSUM_WORKER", "maybe")
    monkeypatch.setattr("sys.argv", ["adaptsum", "docs"])
    with pytest.raises(SystemExit) as exited:
        cli.run()
    err = capsys.readouterr().err
    assert exited.value.code == 1 and err.count("\n") == 1
    assert "ADAPTSUM_WORKER must be true or false (1/0, yes/no, on/off), got 'maybe'" in err


def test_environment_booleans_read_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    for raw, value in (("off", False), ("0", False), ("No", False), ("on", True), ("1", True)):
        monkeypatch.setenv("ADAPTSUM_GLOSSARY", raw)
        assert Context().glossary is value


def test_the_key_goes_only_to_the_operators_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-operator")
    monkeypatch.delenv("ADAPTSUM_CHAT_API_KEY", raising=False)
    monkeypatch.setenv("ADAPTSUM_CHAT_BASE_URL", "http://operator:8080/v1")
    own = "ADAPTSUM_CHAT_API_KEY"
    assert openai_api_key(own, "", "needs a key") == "sk-operator"  # api.openai.com
    assert openai_api_key(own, "http://operator:8080/v1/", "x") == "sk-operator"
    assert openai_api_key(own, "http://attacker:9/v1", "x") == NO_KEY
    monkeypatch.setenv("ADAPTSUM_SERVER", "1")
    monkeypatch.setenv(own, "sk-own")
    assert openai_api_key(own, "http://attacker:9/v1", "x") == NO_KEY


def test_a_server_user_is_not_told_to_use_settings_only_the_operator_has(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a key, the llm engine's error told a remote user to set chat_base_url (an
    operator setting the server refuses) or to pass --engine (a CLI flag)."""
    from adaptsum.providers.chat import make_chat_model
    from adaptsum.providers.embeddings import make_embeddings

    for name in ("OPENAI_API_KEY", "ADAPTSUM_CHAT_API_KEY", "ADAPTSUM_EMBEDDINGS_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ADAPTSUM_SERVER", "1")
    for make, context in (
        (make_chat_model, Context(engine="llm")),
        (make_embeddings, Context(embeddings="openai:text-embedding-3-large")),
    ):
        with pytest.raises(ConfigError) as failed:
            make(context)
        message = str(failed.value)
        assert "operator has not set" in message, message
        assert "base_url" not in message and "--" not in message, message
