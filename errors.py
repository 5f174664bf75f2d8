"""Errors users see: one line each, naming the file or setting and what is wrong."""

from __future__ import annotations

from pathlib import Path


class AdaptsumError(Exception):
    """Base for every error the CLI turns into a one-line message instead of a traceback."""


class DocumentError(AdaptsumError):
    """A document cannot be indexed; the message names the file and the problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class EmbeddingsMismatchError(AdaptsumError):
    """The store holds vectors from another embedding model than the one configured."""


class ConfigError(AdaptsumError):
    """A setting is missing or has an unusable value."""
