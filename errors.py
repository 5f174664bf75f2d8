"""Errors users see: one line each, naming the file or setting and what is wrong."""

from __future__ import annotations

from pathlib import Path


class AdaptsumError(ValueError):
    """Base for every error the CLI turns into a one-line message instead of a traceback.

    A `ValueError` because langgraph-api sends a client the message of only a few built-in
    exception types (ValueError among them) and replaces any other with "An internal
    error occurred"; API clients must see the same line as the CLI. Retry policies must
    still treat these as final: `nodes.retry.retryable` checks for them before anything.
    """


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


class InputError(AdaptsumError):
    """A request's input has a missing, mistyped or out-of-range field; the message names it."""
