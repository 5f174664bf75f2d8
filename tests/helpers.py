"""Paths and small checks shared by the tests (importable: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
CORPUS = Path(os.environ.get("ADAPTSUM_CORPUS", REPO.parent / "shared" / "corpus"))
KO_SAMPLE = EXAMPLES / "hangul-ko.pdf"
EN_SAMPLE = EXAMPLES / "webb-telescope-en.pdf"


def env_without_settings() -> dict[str, str]:
    """This process's environment without adaptsum's settings, as a user's shell has it,
    except that a CLI `ask` starts no background ask worker (tests/test_worker.py tests it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADAPTSUM_")}
    env["ADAPTSUM_WORKER"] = "0"
    return env


def error_lines(err: str) -> int:
    """Lines of stderr besides the `thread … (resume with --thread …)` one printed at start."""
    return sum(1 for line in err.splitlines() if not line.startswith("thread "))


def make_book(path: Path, pages: int) -> Path:
    """A born-digital PDF of `pages` pages (20 distinct ones, repeated), made in seconds."""
    import pymupdf

    with pymupdf.open() as block:
        for n in range(1, 21):
            page = block.new_page()
            page.insert_text(
                (72, 72),
                f"Chapter {n}. The harbour master logged ship {n * 7} arriving at dawn.\n"
                f"Cargo manifest {n}: grain, timber and {n % 13} crates of tea.",
                fontsize=11,
            )
        with pymupdf.open() as book:
            while book.page_count < pages:
                book.insert_pdf(block, to_page=min(19, pages - book.page_count - 1))
            book.save(path, garbage=1)
    return path
