"""ROUGE of the extractive summarizer against LexRank (sumy) and lead-N baselines.

Usage: python bench/rouge.py            (needs `pip install -e '.[bench]'` and ../shared/corpus)

Documents that carry their own reference: the corpus articles that end with a
conclusion section ("결론"). The body before it is summarized, the conclusion is the
reference; every system gets the same budget (the reference's sentence count). Scores
use ROUGE-1/2/L F1 with a tokenizer that keeps Hangul (rouge-score's default drops it),
and sumy gets our sentence splitter, since its English one downloads NLTK data.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
HEADING = re.compile(r"^(\d+\.\s*)?결론\s*$", re.MULTILINE)


class HangulTokenizer:
    """Words of letters and digits, lower-cased, Hangul kept, Korean particles stripped.

    Stripping particles (은/는/이/가/을/를/의 ...) plays the part the Porter stemmer plays
    for English: "모델은" and "모델을" count as the same word.
    """

    def tokenize(self, text: str) -> list[str]:
        from adaptsum.engines.sentences import strip_particle

        return [strip_particle(w) for w in re.findall(r"\w+", text.lower())]


class SumyTokenizer:
    """The same words for sumy; sentences come from adaptsum's splitter."""

    language = "korean"

    def to_words(self, sentence: str) -> list[str]:
        return re.findall(r"\w+", sentence.lower())

    def to_sentences(self, paragraph: str) -> list[str]:
        from adaptsum.engines.sentences import split_sentences

        return [s.text for s in split_sentences(paragraph)]


def body_and_reference(pdf: Path) -> tuple[str, str] | None:
    from adaptsum.ingest.chunking import join_pages
    from adaptsum.ingest.pdf import load_pdf

    text, _, _ = join_pages(load_pdf(pdf).pages)
    match = list(HEADING.finditer(text))
    if not match:
        return None
    cut = match[-1]
    return text[: cut.start()].strip(), text[cut.end() :].strip()


def render(text: str, out: Path) -> None:
    """The body as a PDF of its own, so the summarizer sees nothing of the reference."""
    import html

    import pymupdf

    body = "".join(f"<p>{html.escape(p)}</p>" for p in text.split("\n\n"))
    story = pymupdf.Story(html=f'<body lang="ko">{body}</body>', user_css="body{font-size:11pt}")
    writer = pymupdf.DocumentWriter(str(out))
    more = True
    while more:
        device = writer.begin_page(pymupdf.paper_rect("a4"))
        more, _ = story.place(pymupdf.paper_rect("a4") + (50, 50, -50, -50))
        story.draw(device)
        writer.end_page()
    writer.close()


def strip_citations(text: str) -> str:
    return re.sub(r"\s*\[p\. \d+\]", "", text)


def main() -> int:
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    try:
        from rouge_score import rouge_scorer
        from sumy.models.dom import ObjectDocumentModel, Paragraph, Sentence
        from sumy.summarizers.lex_rank import LexRankSummarizer
    except ImportError:
        print("install the bench extra first: pip install -e '.[bench]'")
        return 2
    from adaptsum import Context, build_graph
    from adaptsum.engines.sentences import split_sentences

    pdfs = sorted(CORPUS.glob("*.pdf"))
    if not pdfs:
        print(f"no corpus at {CORPUS}")
        return 2
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=HangulTokenizer())
    systems = ["adaptsum map_reduce", "adaptsum stuff", "LexRank (sumy)", "lead-N"]
    totals = {s: [0.0, 0.0, 0.0] for s in systems}
    count = 0
    with tempfile.TemporaryDirectory() as tmp:
        graph = build_graph()
        for pdf in pdfs:
            parts = body_and_reference(pdf)
            if parts is None:
                continue
            body, reference = parts
            budget = max(3, len(split_sentences(reference)))
            body_pdf = Path(tmp) / f"body-{pdf.name}"
            render(body, body_pdf)
            ctx = Context(
                data_dir=str(Path(tmp) / "data"),
                summary_paragraphs=1,
                summary_sentences=str(budget),
            )
            outputs = {}
            for strategy in ("map_reduce", "stuff"):
                out = graph.invoke(
                    {
                        "request": "요약",
                        "documents": [str(body_pdf)],
                        "mode": "summarize",
                        "strategy": strategy,
                    },
                    context=ctx,
                )
                outputs[f"adaptsum {strategy}"] = strip_citations(out["answer"])
            sentences = [s.text for s in split_sentences(body)]
            tokenizer = SumyTokenizer()
            document = ObjectDocumentModel([Paragraph([Sentence(s, tokenizer) for s in sentences])])
            lexrank = LexRankSummarizer()
            lexrank.stop_words = []
            outputs["LexRank (sumy)"] = " ".join(str(s) for s in lexrank(document, budget))
            outputs["lead-N"] = " ".join(sentences[:budget])
            count += 1
            print(f"\n{pdf.name}: body {len(body)} chars, reference {budget} sentences")
            for system in systems:
                scores = scorer.score(reference, outputs[system])
                f1 = [scores[k].fmeasure for k in ("rouge1", "rouge2", "rougeL")]
                totals[system] = [a + b for a, b in zip(totals[system], f1, strict=True)]
                print(f"  {system:22} R1 {f1[0]:.3f}  R2 {f1[1]:.3f}  RL {f1[2]:.3f}")
    print(f"\nmean over {count} documents")
    for system in systems:
        r1, r2, rl = (v / count for v in totals[system])
        print(f"  {system:22} R1 {r1:.3f}  R2 {r2:.3f}  RL {rl:.3f}")
    ours = totals["adaptsum map_reduce"][2] / count
    lexrank_rl = totals["LexRank (sumy)"][2] / count
    lead_rl = totals["lead-N"][2] / count
    print(
        f"\nROUGE-L: adaptsum map_reduce - LexRank = {ours - lexrank_rl:+.3f}; "
        f"adaptsum map_reduce - lead-N = {ours - lead_rl:+.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
