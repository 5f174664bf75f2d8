"""Where the real-PDF development corpus lives, and a skip that says so when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import REPO

REAL_CORPUS = Path(os.environ.get("ADAPTSUM_CORPUS_REAL", REPO.parent / "shared" / "corpus-real"))
REAL_SET = REPO / "bench" / "data" / "real_questions"
"""Folder of the real-PDF question set: `tune.jsonl` and `test.jsonl`."""


def real_pdf(name: str) -> Path:
    """A PDF of the real corpus, or a skip naming where it was looked for."""
    path = REAL_CORPUS / name
    if not path.is_file():
        pytest.skip(
            f"real-PDF corpus not found at {REAL_CORPUS} (set ADAPTSUM_CORPUS_REAL to run this)"
        )
    return path
