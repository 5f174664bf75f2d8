"""Offline tiktoken: the bundled BPE files are verified and used by real tiktoken."""

from __future__ import annotations

import hashlib
import inspect
from pathlib import Path

import pytest
import tiktoken
import tiktoken_ext.openai_public as published

from adaptsum.errors import ConfigError
from adaptsum.providers import tokens


def test_published_hashes_match_tiktoken_source() -> None:
    # Our constants must be the ones tiktoken itself checks downloads against.
    source = inspect.getsource(published)
    for url, sha in tokens._PUBLISHED.values():
        assert url in source
        assert sha in source


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
def test_bundled_file_verified(name: str) -> None:
    data = tokens.bundled_bpe(name)
    assert hashlib.sha256(data).hexdigest() == tokens._PUBLISHED[name][1]


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        # Reference ids from OpenAI's tokenizer for these encodings.
        ("o200k_base", "hello world", [24912, 2375]),
        ("cl100k_base", "hello world", [15339, 1917]),
    ],
)
def test_encodings_load_offline_into_a_fresh_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str, expected: list[int]
) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    tokens.get_encoding.cache_clear()
    enc = tokens.get_encoding(name)
    assert isinstance(enc, tiktoken.Encoding)
    assert enc.encode(text) == expected
    assert len(list(tmp_path.iterdir())) == 1  # seeded exactly one verified file


def test_corrupted_cache_file_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    url, sha = tokens._PUBLISHED["o200k_base"]
    cached = tmp_path / hashlib.sha1(url.encode()).hexdigest()
    cached.write_bytes(b"tampered")
    tokens.seed_tiktoken_cache("o200k_base")
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == sha


def test_disabled_cache_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")
    with pytest.raises(ConfigError, match="TIKTOKEN_CACHE_DIR"):
        tokens.seed_tiktoken_cache("o200k_base")


def test_korean_token_count() -> None:
    assert tokens.count_tokens("") == 0
    assert 0 < tokens.count_tokens("한글은 1443년에 창제되었다.") < 20
    # Special-token look-alikes in documents are counted as text, not rejected.
    assert tokens.count_tokens("<|endoftext|>") > 1
