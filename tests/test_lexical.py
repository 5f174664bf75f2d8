"""BM25 with Korean morphemes, hybrid retrieval, and the term-support abstention signal."""

from __future__ import annotations

import shutil
from pathlib import Path

from adaptsum import Context, build_graph
from adaptsum.store.index import DocumentIndex, PageRange
from adaptsum.store.lexical import key_terms, tokenize

from helpers import EN_SAMPLE, KO_SAMPLE


def test_korean_morphemes_match_across_particles() -> None:
    assert "모델" in tokenize("모델은") and "모델" in tokenize("모델을")
    assert key_terms("Qwen3의 주가는 얼마인가요?") == {"qwen", "3", "주가"}
    assert "what" not in key_terms("What is the mirror made of?")


def test_bm25_follows_the_catalogue(data_dir: Path, sample_copy: Path) -> None:
    ctx = Context(data_dir=str(data_dir), retrieval="hybrid")
    index = DocumentIndex(ctx)
    old = index.index_file(sample_copy)
    hits = index.search("한글날", k=3)
    assert hits and hits[0].document.doc_id == old.doc_id
    assert (data_dir / "bm25" / index.collection / "adaptsum.json").exists()  # persisted
    shutil.copy(EN_SAMPLE, sample_copy)  # the document is replaced
    index.index_file(sample_copy)
    (live,) = index.documents()
    assert live.doc_id != old.doc_id
    lexical = index.lexical.search("mirror telescope", 10, {live.revision})
    assert lexical and all(cid.startswith(f"{live.revision}:") for cid, _ in lexical)
    assert index.lexical.search("한글날", 10, {live.revision}) == []  # old text is gone


def test_hybrid_search_filters_and_scores(samples_index: DocumentIndex) -> None:
    ctx = Context(data_dir=samples_index.ctx.data_dir, retrieval="hybrid")
    index = DocumentIndex(ctx)
    hits = index.search("한글날은 언제인가요?", k=3, docs=["hangul-ko.pdf"], pages=PageRange(1, 1))
    assert hits and all(h.chunk.page_start <= 1 for h in hits)
    assert all(h.document.title == "한글의 역사와 원리" for h in hits)
    assert all(0.5 < h.score <= 1.0 for h in hits)  # cosine, as in dense mode


def test_term_support_refuses_on_topic_unanswerable(samples_index: DocumentIndex) -> None:
    graph = build_graph()
    ctx = Context(data_dir=samples_index.ctx.data_dir)
    out = graph.invoke(
        {"request": "한글 창제에 참여한 학자는 누구인가요?", "documents": [str(KO_SAMPLE)]},
        context=ctx,
    )
    assert out["route"] == "refuse" and "term support" in out["route_reason"]
    out = graph.invoke(
        {"request": "한글날은 언제인가요?", "documents": [str(KO_SAMPLE)]}, context=ctx
    )
    assert out["route"] == "answer"
    off = Context(data_dir=samples_index.ctx.data_dir, min_term_support=0)
    out = graph.invoke(
        {"request": "한글 창제에 참여한 학자는 누구인가요?", "documents": [str(KO_SAMPLE)]},
        context=off,
    )
    assert out["route"] == "answer"  # without the signal, similarity alone lets it through


def test_shared_index_follows_the_runs_retrieval_setting(tmp_path: Path) -> None:
    from adaptsum.engines.factory import index_for

    dense = index_for(Context(data_dir=str(tmp_path), retrieval="dense"))
    hybrid = index_for(Context(data_dir=str(tmp_path), retrieval="hybrid"))
    assert dense.ctx.retrieval == "dense" and hybrid.ctx.retrieval == "hybrid"
    assert index_for(Context(data_dir=str(tmp_path), retrieval="hybrid")) is hybrid
    # and its glossary setting: a run without it once got the index of a run with it
    off = index_for(Context(data_dir=str(tmp_path), retrieval="hybrid", glossary=False))
    assert off is not hybrid and not off.ctx.glossary and hybrid.ctx.glossary


def test_term_support_weighs_terms_by_their_rarity_in_the_document(
    samples_index: DocumentIndex,
) -> None:
    """The Webb article names Webb everywhere: holding "webb" says little about "cost"."""
    from adaptsum.engines.base import Resources
    from adaptsum.engines.extractive import ExtractiveEngine

    (webb,) = [d for d in samples_index.documents() if Path(d.source).name == EN_SAMPLE.name]
    inside = samples_index.lexical.idf(webb.revision)
    assert inside("webb") < samples_index.lexical.idf()("webb")  # topic word of the document
    assert inside("webb") < inside("cost")  # never written there
    assert inside("telescopes") == inside("telescope")  # counted by stem, as it is found
    engine = ExtractiveEngine(Resources(ctx=samples_index.ctx, index=samples_index))
    passage = "The James Webb Space Telescope is the largest telescope in space."
    support, missing = engine.term_support(
        "How much did the Webb telescope cost?", passage, revision=webb.revision
    )
    assert missing == {"cost"} and support < samples_index.ctx.min_term_support
    # "stand for" names the kind of answer: a passage expanding the acronym need not say it
    support, missing = engine.term_support(
        "What does JWST stand for?", "JWST: James Webb Space Telescope.", revision=webb.revision
    )
    assert (support, missing) == (1.0, set())
    for question in (
        "How much did the Webb telescope cost?",
        # plurals the document does not write once weighed as rare words it holds
        "How much did the Webb telescopes' mirrors cost?",
    ):
        out = build_graph().invoke(
            {"request": question, "documents": [str(EN_SAMPLE)]}, context=samples_index.ctx
        )
        assert out["route"] == "refuse", (question, out["route_reason"])


def test_a_bm25_index_that_cannot_be_saved_still_serves(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "bm25").write_text("a file where the cache folder goes")
    index = DocumentIndex(Context(data_dir=str(data), retrieval="hybrid"))
    report = index.index_file(EN_SAMPLE)
    hits = index.lexical.search("mirror telescope", 3, {index.resolve([report.doc_id])[0].revision})
    assert hits
