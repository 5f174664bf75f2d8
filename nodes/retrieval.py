"""Turn the question into retrieval queries (in the documents' language) and retrieve."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.runtime import Runtime

from adaptsum.engines.factory import engine_for, index_for, resources_for
from adaptsum.errors import AdaptsumError
from adaptsum.ingest.fetch import shown_file
from adaptsum.ingest.pages import PageRange
from adaptsum.nodes.retry import last_attempt, run_deadline
from adaptsum.state.context import Context
from adaptsum.state.graph_state import Retrieved, State, Usage, add_usage
from adaptsum.store.catalog import DocumentRecord


def translate_query(state: State, runtime: Runtime[Context], chat_model=None) -> dict[str, Any]:
    """Make the question self-contained, then translate it when the languages differ.

    Retrieval uses both the translation and the original, so a term the documents
    keep in the asker's language is still found. Nothing to do when the classifier
    already translated the question in its own call.
    """
    if state.retrieval_queries:
        return {}
    engine = engine_for(runtime.context, chat_model, run_deadline(runtime))
    usage: Usage = {}
    try:
        # The thread's history ends with this turn's question, as the engines expect; the
        # question itself joins `messages` only when the turn ends (see `turn.exchange`).
        history = [*state.messages, HumanMessage(state.request)]
        question, used = engine.contextualize(state.request, history)
        usage = add_usage(usage, used)
        queries = [question]
        if state.documents_language and state.documents_language != state.question_language:
            translated, used = engine.translate(
                question, state.question_language, state.documents_language
            )
            usage = add_usage(usage, used)
            queries = list(dict.fromkeys([translated, question]))
    except AdaptsumError:
        raise
    except Exception:
        if not last_attempt(runtime):
            raise
        queries = [state.request]  # retrieval still works: the embeddings are multilingual
    return {"retrieval_queries": queries, "usage": usage}


RRF_K = 60
"""Reciprocal rank fusion's constant (its paper's value)."""

EVIDENCE_WEIGHT = 0.1
"""Rerank bonus for a passage holding all the question's terms (share held x this).

Chosen on the tune split and the dev set (recall@1 of the rerank 0.53 -> 0.60 and
0.80 -> 0.90; 0.05 gained less, 0.2 and 0.3 no more): between two passages whose best
sentences are about as close to the question, the one that names what was asked wins.
"""


FIRST_MENTION_WEIGHT = 0.01
"""Rerank bonus for a passage at the start of its document, falling to 0 at its end.

A paper states a fact where it introduces it and restates it later (SOLAR's size on
page 1 and again in its tables on page 11; DUS spelled out on page 1 and used on page
7), and the passage that introduces it is the one a reader wants cited. Small: it
decides near-ties only. Session 19 chose 0.03 on tune, the calibration questions and
dev; 40 new questions written in session 20 (`calibration2.jsonl`) showed it had fitted
those: at 0 / 0.01 / 0.02 / 0.03, recall@1 on them 0.69 / 0.69 / 0.62 / 0.59 and
recall@5 0.97 / 0.93 / 0.90 / 0.86. Over all four tuning sets (119 answerable questions,
with the gloss at 0.25): recall@1 96 / 99 / 98 / 99, recall@5 117 / 116 / 115 / 114,
MRR 0.872 / 0.883 / 0.876 / 0.875, Korean-on-English recall@1 38 / 40 / 39 / 38 of 49.
0.01 is best on MRR and Korean on English, tied best on recall@1, one question behind 0
on recall@5.
"""


def check_pages(pages: PageRange, documents: list[DocumentRecord]) -> None:
    """A page range past the end of every document is the asker's mistake, not a refusal.

    Raises:
        AdaptsumError: no document has a page in the range.
    """
    if documents and all(d.total_pages < pages.first for d in documents):
        longest = max(documents, key=lambda d: d.total_pages)
        raise AdaptsumError(
            f"pages {pages}: past the end of the documents "
            f"('{longest.title}' has {longest.total_pages} pages, the most of them)"
            if len(documents) > 1
            else f"pages {pages}: past the end of '{longest.title}' ({longest.total_pages} pages)"
        )


def retrieve(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Top-k chunks over all queries, best score per chunk, restricted to the documents."""
    ctx = runtime.context
    index = index_for(ctx)
    pages = PageRange.parse(state.pages)
    if pages is not None:
        check_pages(pages, index.resolve(state.doc_ids) if state.doc_ids else index.documents())
    rerank = ctx.engine == "extractive" and ctx.sentence_rerank
    depth = ctx.k * ctx.rerank_depth if rerank else ctx.k
    best: dict[str, Retrieved] = {}
    texts: dict[str, str] = {}
    documents: dict[str, DocumentRecord] = {}
    fused: dict[str, float] = {}  # each query's ranking, by reciprocal rank fusion
    for query in state.retrieval_queries or [state.request]:
        hits = index.search(query, k=depth, docs=state.doc_ids or None, pages=pages)
        if rerank:  # and the passages holding the sentences closest to the question
            hits += index.search_sentences(
                query, k=depth * 2, docs=state.doc_ids or None, pages=pages
            )
        for rank, hit in enumerate(hits):
            fused[hit.chunk.chunk_id] = fused.get(hit.chunk.chunk_id, 0.0) + 1.0 / (
                RRF_K + rank + 1
            )
            texts[hit.chunk.chunk_id] = hit.chunk.text
            documents[hit.chunk.chunk_id] = hit.document
            chunk_id = hit.chunk.chunk_id
            if chunk_id not in best or best[chunk_id]["score"] < hit.score:
                best[chunk_id] = Retrieved(
                    chunk_id=chunk_id,
                    doc_id=hit.document.doc_id,
                    page_start=hit.chunk.page_start,
                    page_end=hit.chunk.page_end,
                    score=round(hit.score, 4),
                    file=shown_file(hit.document.source),
                )
    glosses: dict[str, str] = {}  # revision -> the question in that document's words
    if rerank:
        question = state.retrieval_queries[-1] if state.retrieval_queries else state.request
        # Only documents the question's own search reached: a collection of many English
        # documents does not load every glossary for one Korean question.
        reached = {d.revision: d for d in documents.values()}
        for document in reached.values():
            if document.language == state.question_language:
                continue
            if not (gloss := index.gloss(question, document.revision)):
                continue
            glosses[document.revision] = gloss
            for hit in index.search_sentences(
                gloss, k=depth * 2, docs=[document.doc_id], pages=pages
            ):
                chunk_id = hit.chunk.chunk_id
                texts[chunk_id] = hit.chunk.text
                documents[chunk_id] = hit.document
                best.setdefault(
                    chunk_id,
                    Retrieved(
                        chunk_id=chunk_id,
                        doc_id=hit.document.doc_id,
                        page_start=hit.chunk.page_start,
                        page_end=hit.chunk.page_end,
                        score=round(hit.score, 4),
                        file=shown_file(hit.document.source),
                    ),
                )
    if rerank:
        from adaptsum.engines.extractive import ExtractiveEngine, with_gloss

        engine = ExtractiveEngine(resources_for(ctx))

        from adaptsum.ingest.terms import Translations, coverage, key_terms

        # The question's terms a passage can hold: all of them in the question's own
        # language; in another, the names and numbers written in Latin letters and, with
        # the glossary, a Korean question's words as the document writes them.
        own = key_terms(question)
        terms_in: dict[str, tuple[set[str], Translations | None]] = {}

        def document_terms(document: DocumentRecord) -> tuple[set[str], Translations | None]:
            if document.language == state.question_language:
                return own, None
            if document.revision not in terms_in:
                terms_in[document.revision] = index.cross_language_terms(
                    question, document.revision
                )
            return terms_in[document.revision]

        def best_similarity(query: str, hit: Retrieved) -> float:
            cid = hit["chunk_id"]
            ranked = engine.rank_sentences(query, cid, texts[cid])
            return max((sim for _, sim in ranked), default=hit["score"])

        def sentence_score(hit: Retrieved) -> float:
            cid = hit["chunk_id"]
            document = documents[cid]
            similarity = best_similarity(question, hit)
            if gloss := glosses.get(document.revision):
                similarity = with_gloss(similarity, best_similarity(gloss, hit))
            terms, translations = document_terms(document)
            start = (hit["page_start"] - 1) / max(document.total_pages, 1)
            return (
                similarity
                + EVIDENCE_WEIGHT * coverage(terms, texts[cid], translations)
                + FIRST_MENTION_WEIGHT * (1.0 - start)
            )

        index.sentence_vectors(list(best))  # every candidate's, in one read
        by_sentence = sorted(best.values(), key=lambda r: -sentence_score(r))
        ranked = by_sentence[: ctx.k]
    else:
        # The search's own order (hybrid: fused with BM25), not the cosine: re-sorting
        # by cosine would undo the fusion.
        ranked = sorted(best.values(), key=lambda r: -fused[r["chunk_id"]])[: ctx.k]
    return {"retrieved": ranked}
