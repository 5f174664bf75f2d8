"""Chat models for the llm engine: OpenAI or any OpenAI-compatible server, and their output.

Reasoning models served by vLLM, Ollama or llama.cpp (Qwen3, DeepSeek-R1) wrap their
thinking in <think>...</think>; it is stripped before any output is used or shown.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from langchain_core.messages import BaseMessage

from adaptsum.errors import ConfigError
from adaptsum.providers import openai_api_key
from adaptsum.state.graph_state import Usage

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from adaptsum.state.context import Context

_THINK_BLOCK = re.compile(r"<think>.*?(</think>|$)\s*", re.DOTALL)


def make_chat_model(ctx: Context) -> BaseChatModel:
    """The chat model `ctx.chat_model` names ('provider:model')."""
    provider, _, model = ctx.chat_model.strip().partition(":")
    if not model:
        raise ConfigError(
            f"chat_model {ctx.chat_model!r} must look like 'openai:gpt-4.1-mini' (provider:model)"
        )
    if provider == "openai":
        from langchain_openai import ChatOpenAI

        from adaptsum.providers.tokens import seed_tiktoken_cache

        base_url = ctx.chat_base_url.strip()
        key = openai_api_key(
            "ADAPTSUM_CHAT_API_KEY",
            base_url,
            f"chat model 'openai:{model}' needs OPENAI_API_KEY (or set chat_base_url "
            "to an OpenAI-compatible server, or use --engine extractive)",
        )
        # langchain-openai counts tokens with tiktoken; keep that offline.
        seed_tiktoken_cache("o200k_base")
        seed_tiktoken_cache("cl100k_base")
        return ChatOpenAI(
            model=model,
            base_url=base_url or None,
            api_key=key,
            temperature=ctx.temperature,
            timeout=ctx.request_timeout,
            max_retries=2,
            stream_usage=True,
        )
    from langchain.chat_models import init_chat_model

    try:
        return init_chat_model(
            ctx.chat_model, temperature=ctx.temperature, timeout=ctx.request_timeout
        )
    except (ImportError, ValueError) as exc:
        raise ConfigError(f"chat_model {ctx.chat_model!r}: {exc}") from None


def strip_think(text: str) -> str:
    """Text without <think> blocks (also an unclosed one, or a stray closing tag)."""
    if "</think>" in text and "<think>" not in text:
        text = text.rsplit("</think>", 1)[1]
    return _THINK_BLOCK.sub("", text).strip()


def message_text(message: BaseMessage) -> str:
    """The visible text of a model reply."""
    return strip_think(message.text)


def usage_of(message: BaseMessage | None) -> Usage:
    """One call's token usage, as reported by the server (zeros when it reports none)."""
    meta = getattr(message, "usage_metadata", None) or {}
    return Usage(
        calls=1,
        input_tokens=int(meta.get("input_tokens", 0)),
        output_tokens=int(meta.get("output_tokens", 0)),
        total_tokens=int(meta.get("total_tokens", 0)),
    )
