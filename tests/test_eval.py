"""The evaluation harness, its development question set, and the signals it calibrates."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from adaptsum.errors import AdaptsumError
from adaptsum.evaluate import load_questions, run, summarize
from adaptsum.ingest.pdf import load_pdf
from adaptsum.state.context import Context

from helpers import CORPUS, EXAMPLES, REPO

DEV_SET = REPO / "bench" / "data" / "dev_questions.jsonl"


def test_dev_set_shape() -> None:
    questions = load_questions(DEV_SET)
    assert len(questions) >= 40
    languages = Counter(q.lang for q in questions)
    assert abs(languages["ko"] - languages["en"]) <= 2
    unanswerable = [q for q in questions if not q.answerable]
    assert len(unanswerable) >= 10 and all(q.pages == [] for q in unanswerable)
    assert all(q.pages and q.evidence for q in questions if q.answerable)


def _check_evidence(pdf_dir: Path, names: set[str]) -> int:
    checked = 0
    for q in load_questions(DEV_SET):
        if q.pdf not in names or not q.answerable:
            continue
        pages = {
            p.metadata["page"]: " ".join(p.page_content.split())
            for p in load_pdf(pdf_dir / q.pdf).pages
        }
        evidence = " ".join(q.evidence.split())
        assert any(evidence in pages[p] for p in q.pages), (q.question, q.evidence)
        checked += 1
    return checked


def test_evidence_is_verbatim_in_the_sample_pdfs() -> None:
    assert _check_evidence(EXAMPLES, {p.name for p in EXAMPLES.glob("*.pdf")}) >= 8


@pytest.mark.corpus
def test_evidence_is_verbatim_in_the_corpus(corpus: list[Path]) -> None:
    assert _check_evidence(CORPUS, {p.name for p in corpus}) >= 30


def test_metrics_from_known_rows() -> None:
    def row(lang, answerable, hits, refused, cited=(), cross=False, reason=""):
        return {
            "cited_pages": [1] * len(cited),
            "route_reason": reason,
            "lang": lang,
            "cross_lingual": cross,
            "answerable": answerable,
            "refused": refused,
            "hit_at_1": hits[0],
            "hit_at_5": any(hits),
            "reciprocal_rank": next((1 / (i + 1) for i, h in enumerate(hits) if h), 0.0),
            "citation_precision": (sum(cited) / len(cited)) if cited else None,
            "evidence_overlap": 0.5 if answerable else None,
            "seconds": 0.1,
            "tokens": 0,
        }

    rows = [
        row("ko", True, [True, False], False, cited=[1, 1]),
        row(
            "ko",
            True,
            [False, True],
            False,
            cited=[1, 0],
            reason="2 of 3 relevant; the model cited no evidence page; added [p. 1]",
        ),
        row("en", True, [False, False], True, cross=True),
        row("en", False, [False, False], True),
        row("ko", False, [False, False], False, reason="grader output unusable; rule used"),
    ]
    summary = summarize(rows)
    overall = summary["overall"]
    assert overall["recall@1"] == round(1 / 3, 3) and overall["recall@5"] == round(2 / 3, 3)
    assert overall["mrr"] == round((1 + 0.5 + 0) / 3, 3)
    assert overall["unanswerable_refused"] == 0.5 and overall["answerable_refused"] == round(
        1 / 3, 3
    )
    assert overall["citation_precision"] == 0.75
    assert summary["cross-lingual"]["questions"] == 1 and summary["ko"]["questions"] == 3
    # the llm engine's health: an answer without citations, a fallback, pages added
    assert overall["answered_uncited"] == 1 and overall["fallbacks"] == 1
    assert overall["pages_added"] == 1


def test_harness_on_the_samples(tmp_path: Path) -> None:
    subset = tmp_path / "samples.jsonl"
    lines = [
        line
        for line in DEV_SET.read_text().splitlines()
        if json.loads(line)["pdf"] in {"hangul-ko.pdf", "webb-telescope-en.pdf"}
    ]
    subset.write_text("\n".join(lines))
    questions = load_questions(subset)
    result = run(questions, [EXAMPLES], Context(data_dir=str(tmp_path / "data")))
    overall = result["summary"]["overall"]
    assert overall["questions"] == len(questions) == len(result["questions"])
    assert overall["recall@5"] == 1.0  # two short documents: every gold page is retrieved
    assert overall["answerable_refused"] <= 0.25
    assert overall["unanswerable_refused"] >= 0.5
    assert {"same-language", "cross-lingual", "ko", "en"} <= set(result["summary"])


def test_bad_question_file_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"pdf": "x.pdf", "lang": "ko"}\n')
    with pytest.raises(AdaptsumError, match="bad.jsonl:1"):
        load_questions(bad)
    missing = tmp_path / "q.jsonl"
    missing.write_text(
        '{"pdf": "nope.pdf", "lang": "en", "question": "q?", "answer": null, '
        '"pages": [], "evidence": ""}\n'
    )
    with pytest.raises(AdaptsumError, match="nope.pdf: not found"):
        run(load_questions(missing), [EXAMPLES], Context(data_dir=str(tmp_path / "d")))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(AdaptsumError, match="empty.jsonl: no questions in it"):
        load_questions(empty)
    with pytest.raises(AdaptsumError, match="not a question set \\(not UTF-8 text\\)"):
        load_questions(EXAMPLES / "webb-telescope-en.pdf")
    with pytest.raises(AdaptsumError, match="nothing.jsonl: cannot read the question set"):
        load_questions(tmp_path / "nothing.jsonl")
    with pytest.raises(AdaptsumError, match="scope must be 'document' or 'set', got 'Set'"):
        run(load_questions(missing), [EXAMPLES], Context(data_dir=str(tmp_path / "d")), scope="Set")


def test_set_scope_counts_only_the_questions_own_document(tmp_path: Path) -> None:
    """Asked of several PDFs at once, a passage from another PDF is a miss, not a hit.

    The second line names the Hangul sample for a question only the Webb sample answers:
    asked of its own PDF alone, every retrieved passage is on the Hangul sample's page 1
    or 2, so the page check alone would call it a hit; asked of both, the Webb page wins
    and must count as a miss.
    """
    webb = {
        "lang": "en",
        "question": "When did Webb launch?",
        "answer": "25 December 2021",
        "pages": [1],
        "evidence": "25 December 2021",
    }
    subset = tmp_path / "two.jsonl"
    subset.write_text(
        json.dumps({"pdf": "webb-telescope-en.pdf", **webb})
        + "\n"
        + json.dumps({"pdf": "hangul-ko.pdf", **webb, "pages": [1, 2]})
        + "\n"
    )
    questions = load_questions(subset)
    ctx = Context(data_dir=str(tmp_path / "data"))
    alone = run(questions, [EXAMPLES], ctx)["questions"]
    together = run(questions, [EXAMPLES], ctx, scope="set")["questions"]
    assert alone[1]["hit_at_5"]  # its own PDF only: any page of it is "the page"
    assert together[0]["hit_at_1"] and together[0]["cited_documents"] == []
    assert not together[1]["hit_at_1"] and together[1]["reciprocal_rank"] < 1.0


def test_eval_checks_where_its_results_go_before_it_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run of every question once ended in a traceback at the end, its results lost."""
    from adaptsum.cli import main

    data = tmp_path / "data"
    code = main(
        [
            "eval",
            str(DEV_SET),
            "--pdf-dir",
            str(EXAMPLES),
            "--out",
            str(tmp_path / "no" / "such" / "out.json"),
            "--data-dir",
            str(data),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "cannot write the results there" in err
    assert not (data / "chroma").exists()  # nothing was indexed
