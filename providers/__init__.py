"""Pluggable pieces behind stable interfaces: tokenizer, embeddings, chat models."""

from __future__ import annotations

import os

from adaptsum.errors import ConfigError


def openai_api_key(own_variable: str, base_url: str, needs_key_message: str) -> str:
    """The key for an OpenAI or OpenAI-compatible endpoint.

    `own_variable` (e.g. ADAPTSUM_CHAT_API_KEY) wins over OPENAI_API_KEY. Local servers
    (vLLM, Ollama, llama.cpp) accept any key, so a base URL without one gets a dummy;
    api.openai.com without one is a configuration error.
    """
    key = os.environ.get(own_variable) or os.environ.get("OPENAI_API_KEY")
    if key:
        return key
    if base_url:
        return "not-needed"
    raise ConfigError(needs_key_message)
