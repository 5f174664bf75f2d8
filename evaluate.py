"""Evaluation harness: run a question set through the graph and measure what it claims.

Question sets are JSON Lines: {"pdf", "lang", "question", "answer" | null, "pages",
"evidence"}; `answer: null` with `pages: []` marks a question the PDF cannot answer.
Reported per language, for cross-lingual questions, and overall: page-level retrieval
recall@1/@5 and MRR, refusal accuracy, citation precision, evidence overlap, latency
and tokens.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adaptsum.engines.language import REFUSAL
from adaptsum.errors import AdaptsumError
from adaptsum.state.context import Context


@dataclass(frozen=True)
class Question:
    """One line of a question set."""

    pdf: str
    lang: str
    question: str
    answer: str | None
    pages: list[int]
    evidence: str

    @property
    def answerable(self) -> bool:
        """False for questions the document cannot answer."""
        return self.answer is not None


def load_questions(path: Path) -> list[Question]:
    """Read and check a question set.

    Raises:
        AdaptsumError: the file cannot be read or holds no question, or a line is not
            valid JSON or lacks a field.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise AdaptsumError(f"{path}: not a question set (not UTF-8 text)") from None
    except OSError as exc:
        raise AdaptsumError(f"{path}: cannot read the question set ({exc.strerror})") from None
    out: list[Question] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            out.append(
                Question(
                    pdf=raw["pdf"],
                    lang=raw["lang"],
                    question=raw["question"],
                    answer=raw["answer"],
                    pages=[int(p) for p in raw["pages"]],
                    evidence=raw.get("evidence", ""),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise AdaptsumError(f"{path}:{number}: not a question line ({exc})") from None
    if not out:
        raise AdaptsumError(f"{path}: no questions in it")
    return out


def resolve_pdf(name: str, pdf_dirs: Sequence[Path]) -> Path:
    """The question's PDF in the first directory that has it."""
    for directory in pdf_dirs:
        if (directory / name).is_file():
            return directory / name
    raise AdaptsumError(f"{name}: not found in {', '.join(str(d) for d in pdf_dirs)}")


def _words(text: str) -> set[str]:
    from adaptsum.engines.sentences import strip_particle

    return {strip_particle(w) for w in re.findall(r"\w+", text.lower())}


def run(
    questions: list[Question],
    pdf_dirs: Sequence[Path],
    ctx: Context,
    progress: Callable[[int, int], None] | None = None,
    scope: str = "document",
) -> dict[str, Any]:
    """Index the PDFs (cached), ask every question, and score the answers.

    `scope="document"` asks each question of its own PDF. `scope="set"` asks it of every
    PDF in the set at once, as a user who hands over several documents does: a passage
    or a citation counts only from the question's own document, so a Korean question
    drawn to a Korean document's passage instead of an English one's counts as a miss.
    """
    from langgraph.checkpoint.memory import InMemorySaver

    from adaptsum.engines.factory import index_for
    from adaptsum.graph.main_graph import build_graph

    if scope not in ("document", "set"):
        raise AdaptsumError(f"scope must be 'document' or 'set', got {scope!r}")
    index = index_for(ctx)
    paths = {q.pdf: resolve_pdf(q.pdf, pdf_dirs) for q in questions}
    languages: dict[str, str] = {}
    doc_ids: dict[str, str] = {}
    for name, path in paths.items():
        report = index.index_file(path)
        doc_ids[name] = report.doc_id
        languages[name] = index.resolve([report.doc_id])[0].language
    everything = [str(p) for p in sorted(set(paths.values()))]
    graph = build_graph(InMemorySaver())
    rows: list[dict[str, Any]] = []
    refusals = set(REFUSAL.values())
    for number, q in enumerate(questions, start=1):
        config = {"configurable": {"thread_id": f"eval-{number}"}}
        started = time.perf_counter()
        documents = everything if scope == "set" else [str(paths[q.pdf])]
        out = graph.invoke({"request": q.question, "documents": documents}, config, context=ctx)
        seconds = time.perf_counter() - started
        state = graph.get_state(config).values
        own = doc_ids[q.pdf]
        hits = [
            r["doc_id"] == own and any(r["page_start"] <= p <= r["page_end"] for p in q.pages)
            for r in state.get("retrieved", [])
        ]
        refused = out["route"] == "refuse" or out["answer"].strip() in refusals
        citations = out.get("citations", [])
        cited = [c["page"] for c in citations]
        right = [c["doc_id"] == own and c["page"] in q.pages for c in citations]
        rows.append(
            {
                "question": q.question,
                "lang": q.lang,
                "cross_lingual": q.lang != languages[q.pdf],
                "answerable": q.answerable,
                "route": out["route"],
                "route_reason": out.get("route_reason", ""),
                "request_reason": state.get("request_reason", ""),
                "answer": out["answer"],
                "refused": refused,
                "hit_at_1": bool(hits[:1] and hits[0]),
                "hit_at_5": any(hits[:5]),
                "reciprocal_rank": next((1 / (i + 1) for i, h in enumerate(hits) if h), 0.0),
                "cited_pages": cited,
                "cited_documents": sorted({c["doc_id"] for c in citations} - {own}),
                "citation_precision": (sum(right) / len(right) if right and q.answerable else None),
                "evidence_overlap": (
                    len(_words(q.evidence) & _words(out["answer"])) / len(_words(q.evidence))
                    if q.answerable and q.evidence
                    else None
                ),
                "seconds": seconds,
                "tokens": out.get("usage", {}).get("total_tokens", 0),
                "calls": out.get("usage", {}).get("calls", 0),
            }
        )
        if progress is not None:
            progress(number, len(questions))
    settings = {**_settings(ctx), "scope": scope}
    return {"settings": settings, "summary": summarize(rows), "questions": rows}


def _settings(ctx: Context) -> dict[str, Any]:
    """The settings that decide the figures, recorded with them."""
    keys = (
        "engine",
        "embeddings",
        "k",
        "retrieval",
        "sentence_rerank",
        "glossary",
        "similarity_threshold",
        "cross_lingual_threshold",
        "min_term_support",
        "chunk_size",
        "chunk_overlap",
    )
    return {k: getattr(ctx, k) for k in keys}


def summarize(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The metrics for each group of questions: by language, cross-lingual, overall.

    'ko-on-other' is Korean questions on documents in another language, the hardest
    case for an engine without a translator.
    """
    groups = {
        "ko": [r for r in rows if r["lang"] == "ko"],
        "en": [r for r in rows if r["lang"] == "en"],
        "same-language": [r for r in rows if not r["cross_lingual"]],
        "cross-lingual": [r for r in rows if r["cross_lingual"]],
        "ko-on-other": [r for r in rows if r["cross_lingual"] and r["lang"] == "ko"],
        "overall": rows,
    }
    return {name: _metrics(group) for name, group in groups.items() if group}


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 3) if values else None


def _metrics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    seconds = sorted(r["seconds"] for r in rows)
    return {
        "questions": len(rows),
        "answerable": len(answerable),
        "recall@1": _mean([float(r["hit_at_1"]) for r in answerable]),
        "recall@5": _mean([float(r["hit_at_5"]) for r in answerable]),
        "mrr": _mean([r["reciprocal_rank"] for r in answerable]),
        "unanswerable_refused": _mean([float(r["refused"]) for r in unanswerable]),
        "answerable_refused": _mean([float(r["refused"]) for r in answerable]),
        "citation_precision": _mean(
            [r["citation_precision"] for r in answerable if r["citation_precision"] is not None]
        ),
        "evidence_overlap": _mean(
            [r["evidence_overlap"] for r in answerable if r["evidence_overlap"] is not None]
        ),
        "latency_p50_s": round(seconds[len(seconds) // 2], 3),
        "latency_p95_s": round(seconds[min(len(seconds) - 1, int(len(seconds) * 0.95))], 3),
        "tokens": sum(r["tokens"] for r in rows),
        # What a weak model's run needs to show (all zero with the extractive engine):
        "answered_uncited": sum(1 for r in rows if not r["refused"] and not r.get("cited_pages")),
        "fallbacks": sum(1 for r in rows if _fell_back(r)),
        "pages_added": sum(
            1 for r in rows if "cited no evidence page" in r.get("route_reason", "")
        ),
    }


_FALLBACK_MARKS = ("unusable", "rule used", "keyword rule", "was cut")
"""Notes the llm engine leaves when it replaced or cut a model reply (classify, grade, answer)."""


def _fell_back(row: dict[str, Any]) -> bool:
    reasons = f"{row.get('request_reason', '')} {row.get('route_reason', '')}"
    return any(mark in reasons for mark in _FALLBACK_MARKS)


def format_table(result: dict[str, Any]) -> str:
    """The summary as a fixed-width table."""
    columns = [
        ("questions", "n"),
        ("recall@1", "R@1"),
        ("recall@5", "R@5"),
        ("mrr", "MRR"),
        ("unanswerable_refused", "refused|unans"),
        ("answerable_refused", "refused|ans"),
        ("citation_precision", "cite prec"),
        ("evidence_overlap", "evid overlap"),
        ("latency_p50_s", "p50 s"),
        ("latency_p95_s", "p95 s"),
        ("tokens", "tokens"),
        ("answered_uncited", "uncited"),
        ("fallbacks", "fallbacks"),
    ]
    lines = ["group".ljust(14) + "".join(label.rjust(14) for _, label in columns)]
    for group, metrics in result["summary"].items():
        cells = []
        for key, _ in columns:
            value = metrics[key]
            cells.append(("-" if value is None else f"{value}").rjust(14))
        lines.append(group.ljust(14) + "".join(cells))
    return "\n".join(lines)
