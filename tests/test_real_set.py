"""The real-PDF question set: split once, and every evidence snippet on its page."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from adaptsum.evaluate import load_questions
from adaptsum.ingest.pdf import load_pdf

from realdocs import REAL_SET, real_pdf, tesseract_fixture  # noqa: F401 (a fixture)

SPLITS = ("tune", "test")
CALIBRATION = ("calibration", "calibration2")
"""Questions written later for tuning only (cross-language retrieval and refusal; the
second set in session 20, on all six PDFs); the test split stays as it was split."""


def _all(splits: tuple[str, ...] = SPLITS):
    return {split: load_questions(REAL_SET / f"{split}.jsonl") for split in splits}


def test_split_is_fixed_by_the_question_hash() -> None:
    """A question's split follows from its text alone, so nobody moves one after tuning."""
    for split, questions in _all().items():
        for q in questions:
            even = int(hashlib.sha256(q.question.encode()).hexdigest(), 16) % 2 == 0
            assert (split == "tune") == even, q.question


def test_set_shape() -> None:
    questions = [q for qs in _all().values() for q in qs]
    assert len(questions) >= 80
    assert len({q.question for q in questions}) == len(questions)
    by_pdf = Counter(q.pdf for q in questions)
    assert len(by_pdf) == 6 and min(by_pdf.values()) >= 10
    unanswerable = Counter(q.pdf for q in questions if not q.answerable)
    assert all(unanswerable[pdf] >= 2 for pdf in by_pdf)
    assert all(q.pages == [] and q.evidence == "" for q in questions if not q.answerable)
    ko_on_en = [q for q in questions if q.lang == "ko" and q.pdf.endswith("-en.pdf")]
    en_on_ko = [q for q in questions if q.lang == "en" and q.pdf.endswith("-ko.pdf")]
    assert len(ko_on_en) >= 20 and len(en_on_ko) >= 8


def test_calibration_questions_are_new_and_cross_language() -> None:
    known = {q.question for qs in _all().values() for q in qs}
    calibration = [q for qs in _all(CALIBRATION).values() for q in qs]
    assert calibration and not known & {q.question for q in calibration}
    assert len({q.question for q in calibration}) == len(calibration)
    assert all(q.lang != ("ko" if q.pdf.endswith("-ko.pdf") else "en") for q in calibration)
    assert all(q.pages == [] and q.evidence == "" for q in calibration if not q.answerable)


@pytest.mark.parametrize("split", [*SPLITS, *CALIBRATION])
def test_evidence_is_on_the_cited_page(split: str, tesseract: None) -> None:
    questions = _all((split,))[split]
    pages_of: dict[str, dict[int, str]] = {}
    for q in questions:
        if not q.answerable:
            continue
        if q.pdf not in pages_of:
            pages_of[q.pdf] = {
                p.metadata["page"]: " ".join(p.page_content.split())
                for p in load_pdf(real_pdf(q.pdf)).pages
            }
        evidence = " ".join(q.evidence.split())
        pages = pages_of[q.pdf]
        assert any(evidence in pages.get(p, "") for p in q.pages), (q.pdf, q.question)
