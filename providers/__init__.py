"""Pluggable pieces behind stable interfaces: tokenizer, embeddings, chat models."""

from __future__ import annotations

import os

from adaptsum.errors import ConfigError

NO_KEY = "not-needed"
"""What a client library gets instead of a key for a server that must not see ours."""


def openai_api_key(own_variable: str, base_url: str, needs_key_message: str) -> str:
    """The key for an OpenAI or OpenAI-compatible endpoint, sent only where it belongs.

    `own_variable` (e.g. ADAPTSUM_CHAT_API_KEY) wins over OPENAI_API_KEY. A key from the
    environment goes only to api.openai.com (no base URL) or to the base URL the
    environment itself configures (`own_variable` with `_API_KEY` → `_BASE_URL`, e.g.
    ADAPTSUM_CHAT_BASE_URL): that is the operator's endpoint. Any other base URL (one
    a run chose) gets a dummy key, so a client can never have the operator's key sent
    to an address of theirs. Outside a server the person running the CLI is the
    operator, so their own variable also goes to a base URL they pass as a flag.
    Local servers (vLLM, Ollama, llama.cpp) accept any key; api.openai.com without
    one is a configuration error.
    """
    from adaptsum.state.context import on_server

    own = os.environ.get(own_variable)
    key = own or os.environ.get("OPENAI_API_KEY")
    operator_url = os.environ.get(own_variable.replace("_API_KEY", "_BASE_URL"), "").strip()
    if not base_url:
        if key:
            return key
        raise ConfigError(needs_key_message)
    if base_url.rstrip("/") == operator_url.rstrip("/"):
        return key or NO_KEY
    if own and not on_server():
        return own
    return NO_KEY
