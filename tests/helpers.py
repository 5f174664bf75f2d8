"""Paths and small checks shared by the tests (importable: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
CORPUS = Path(os.environ.get("ADAPTSUM_CORPUS", REPO.parent / "shared" / "corpus"))
KO_SAMPLE = EXAMPLES / "hangul-ko.pdf"
EN_SAMPLE = EXAMPLES / "webb-telescope-en.pdf"


def error_lines(err: str) -> int:
    """Lines of stderr besides the `thread … (resume with --thread …)` one printed at start."""
    return sum(1 for line in err.splitlines() if not line.startswith("thread "))
