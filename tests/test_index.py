"""The persistent index: idempotence, replacement, filters, retrieval, crash safety."""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

import pytest

from adaptsum.errors import AdaptsumError
from adaptsum.state.context import Context
from adaptsum.store.catalog import new_owner
from adaptsum.store.index import DocumentIndex, PageRange

from helpers import EN_SAMPLE, KO_SAMPLE


def _records(index: DocumentIndex, **where: str) -> list[dict]:
    got = index.vectorstore.get(where=where or None, include=["metadatas"])
    return got["metadatas"]


def test_reindex_unchanged_adds_nothing_quickly(data_dir: Path) -> None:
    index = DocumentIndex(Context(data_dir=str(data_dir)))
    first = index.index_file(KO_SAMPLE)
    assert first.status == "indexed" and first.added_chunks == first.chunks > 0
    count = len(_records(index))
    again = DocumentIndex(Context(data_dir=str(data_dir)))  # as a new process would
    started = time.perf_counter()
    second = again.index_file(KO_SAMPLE)
    assert time.perf_counter() - started < 1.0
    assert second.status == "unchanged" and second.added_chunks == 0
    assert second.doc_id == first.doc_id
    assert len(_records(again)) == count


def test_changed_file_replaces_its_chunks(data_dir: Path, sample_copy: Path) -> None:
    index = DocumentIndex(Context(data_dir=str(data_dir)))
    old = index.index_file(sample_copy)
    shutil.copy(EN_SAMPLE, sample_copy)  # same path, new content
    new = index.index_file(sample_copy)
    assert new.status == "replaced" and new.doc_id != old.doc_id
    docs = index.documents()
    assert [d.doc_id for d in docs] == [new.doc_id]
    metas = _records(index)
    assert len(metas) == new.vectors
    assert {m["doc_id"] for m in metas} == {new.doc_id}  # no stale leftovers
    hits = index.search("한글 창제", k=3)
    assert all(h.document.doc_id == new.doc_id for h in hits)


def test_a_revision_another_writer_finished_is_not_written_again(data_dir: Path) -> None:
    """Writer B looked before writer A committed, then claims only after A is done."""
    index = DocumentIndex(Context(data_dir=str(data_dir)))
    index.index_file(EN_SAMPLE)  # writer A, finished
    (doc,) = index.documents()
    vectors = len(_records(index))
    assert index._claim(doc.revision, new_owner()) is False  # writer B: nothing to write
    assert index.catalog.begin_revision(index.collection, doc.revision, "probe") == (None, [])
    assert len(_records(index)) == vectors
    again = DocumentIndex(Context(data_dir=str(data_dir))).index_file(EN_SAMPLE)
    assert again.status == "unchanged"


def test_chunking_change_makes_a_new_revision(data_dir: Path) -> None:
    DocumentIndex(Context(data_dir=str(data_dir))).index_file(EN_SAMPLE)
    index = DocumentIndex(Context(data_dir=str(data_dir), chunk_size=120, chunk_overlap=10))
    report = index.index_file(EN_SAMPLE)
    assert report.status == "replaced" and report.chunks > 3
    assert len(index.documents()) == 1
    assert len(_records(index)) == report.vectors


def test_filters_by_document_and_pages(samples_index: DocumentIndex) -> None:
    ko = samples_index.resolve(["hangul-ko.pdf"])[0]
    hits = samples_index.search("telescope mirror", k=5, docs=[ko.doc_id])
    assert hits and all(h.document.doc_id == ko.doc_id for h in hits)
    hits = samples_index.search("James Webb", k=5, pages=PageRange(2, 2))
    assert hits and all(h.chunk.page_start <= 2 <= h.chunk.page_end for h in hits)
    by_name = samples_index.resolve(["webb-telescope-en.pdf"])
    by_path = samples_index.resolve([str(EN_SAMPLE)])
    by_prefix = samples_index.resolve([by_name[0].doc_id[:6]])
    assert by_name == by_path == by_prefix
    with pytest.raises(AdaptsumError, match="no indexed document matches"):
        samples_index.resolve(["nonexistent.pdf"])


@pytest.mark.parametrize(
    ("query", "expected_doc", "needle", "page"),
    [
        ("한글은 언제 누가 만들었나요?", "hangul-ko.pdf", "1443년에 창제", 1),
        ("유니코드에 들어 있는 현대 한글 음절은 몇 자인가?", "hangul-ko.pdf", "11,172자", 2),
        ("How large is the primary mirror?", "webb-telescope-en.pdf", "6.5 metres", 1),
        (
            "When were the first full-colour images released?",
            "webb-telescope-en.pdf",
            "12 July 2022",
            2,
        ),
    ],
)
def test_known_passages_in_top5(
    samples_index: DocumentIndex, query: str, expected_doc: str, needle: str, page: int
) -> None:
    hits = samples_index.search(query, k=5)
    match = [
        h for h in hits if Path(h.document.source).name == expected_doc and needle in h.chunk.text
    ]
    assert match, [(h.document.title, h.chunk.text[:60]) for h in hits]
    assert match[0].chunk.page_start <= page <= match[0].chunk.page_end
    assert all(-1.0 <= h.score <= 1.0 for h in hits)
    # Hybrid hits come in the fusion's order (a BM25 match may rank above a closer vector);
    # a dense search's come by similarity.
    dense = DocumentIndex(dataclasses.replace(samples_index.ctx, retrieval="dense"))
    scores = [h.score for h in dense.search(query, k=5)]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.corpus
def test_corpus_korean_and_english_queries(corpus_index: DocumentIndex) -> None:
    hits = corpus_index.search("Qwen3의 사고 예산(thinking budget)이란?", k=5)
    top = [h for h in hits if "사고 예산" in h.chunk.text]
    assert top  # both Qwen3 documents discuss it; the overview does so on page 1
    assert any(h.document.title == "Qwen3 개요" and h.chunk.page_start == 1 for h in top)
    # English questions on the Korean corpus: cross-lingual recall@5 over a small set.
    queries = {
        "How much pre-training data was Qwen3 trained on?": "36조",
        "How many tokens was Qwen3 pre-trained on?": "36조",
        "How many languages and dialects does Qwen3 support?": "119개",
        "What is the thinking budget in Qwen3?": "사고 예산",
        "Which vocabulary size does the QWEN tokenizer use?": "152K",
        "Which license are Qwen3 models released under?": "Apache 2.0",
    }
    found = {
        q: any(needle in h.chunk.text for h in corpus_index.search(q, k=5))
        for q, needle in queries.items()
    }
    assert sum(found.values()) >= 5, found


@pytest.mark.corpus
def test_corpus_reindex_second_run(corpus_index: DocumentIndex, corpus: list[Path]) -> None:
    again = DocumentIndex(Context(data_dir=corpus_index.ctx.data_dir))
    started = time.perf_counter()
    reports = [again.index_file(pdf) for pdf in corpus]
    assert time.perf_counter() - started < 1.0
    assert sum(r.added_chunks for r in reports) == 0
    assert {r.status for r in reports} == {"unchanged"}


@pytest.mark.corpus
def test_long_chunks_get_several_vectors_pointing_back(data_dir: Path, corpus: list[Path]) -> None:
    # The notebook's 1000-token chunks overflow e5's 512-token window.
    index = DocumentIndex(Context(data_dir=str(data_dir), chunk_size=1000, chunk_overlap=200))
    pdf = next(p for p in corpus if "tech-report" in p.name)
    report = index.index_file(pdf)
    assert len(_records(index)) == report.vectors
    metas = _records(index, kind="chunk")
    assert len(metas) > report.chunks
    parts: dict[str, int] = {}
    for m in metas:
        parts[m["chunk_id"]] = parts.get(m["chunk_id"], 0) + 1
    assert len(parts) == report.chunks and max(parts.values()) > 1
    hits = index.search("데이터 전처리 MinHash LSH", k=5)
    assert len({h.chunk.chunk_id for h in hits}) == len(hits)  # one hit per chunk


def test_every_sentence_has_a_vector_pointing_back_to_its_chunk(data_dir: Path) -> None:
    from adaptsum.ingest.sentences import split_sentences

    index = DocumentIndex(Context(data_dir=str(data_dir)))
    report = index.index_file(EN_SAMPLE)
    (doc,) = index.documents()
    chunks = index.catalog.document_chunks(index.collection, doc.revision)
    stored = index.sentence_vectors([c.chunk_id for c in chunks])
    for chunk in chunks:
        texts, vectors = stored[chunk.chunk_id]
        assert texts == [s.text for s in split_sentences(chunk.text)]
        assert vectors.shape == (len(texts), index.info.dim)
    some = chunks[0].chunk_id  # read from Chroma once, then kept
    assert index.sentence_vectors([some])[some] is stored[some]
    assert report.vectors == len(_records(index, kind="chunk")) + sum(
        len(texts) for texts, _ in stored.values()
    )
    # A chunk search never returns a sentence's vector, and names each chunk once.
    hits = index.search("When did Webb launch?", k=5)
    assert len({h.chunk.chunk_id for h in hits}) == len(hits) == len(chunks)
    # The sentence that answers scores above the passage averaging it with the rest.
    (best, *_) = index.search_sentences("When did Webb launch?", k=3)
    assert "launched on 25 December 2021" in best.chunk.text
    chunk_score = next(h.score for h in hits if h.chunk.chunk_id == best.chunk.chunk_id)
    assert best.score > chunk_score


def test_interrupted_index_keeps_the_old_revision(data_dir: Path, sample_copy: Path) -> None:
    index = DocumentIndex(Context(data_dir=str(data_dir)))
    old = index.index_file(sample_copy)
    shutil.copy(EN_SAMPLE, sample_copy)

    def stop_midway(stage: str, done: int, total: int) -> None:
        if stage == "embeddings" and done > 0:
            raise KeyboardInterrupt  # the user pressed Ctrl-C while vectors were written

    with pytest.raises(KeyboardInterrupt):
        index.index_file(sample_copy, progress=stop_midway)
    # The old revision is still complete and the only one searchable.
    assert [d.doc_id for d in index.documents()] == [old.doc_id]
    hits = index.search("한글 창제", k=3)
    assert hits and all(h.document.doc_id == old.doc_id for h in hits)
    # The next run finishes the job and clears the half-written vectors.
    fresh = DocumentIndex(Context(data_dir=str(data_dir)))
    new = fresh.index_file(sample_copy)
    assert new.status == "replaced"
    metas = _records(fresh)
    assert {m["doc_id"] for m in metas} == {new.doc_id}
    assert len(metas) == new.vectors


def test_embedding_models_never_mix(data_dir: Path, e5_server: str) -> None:
    local = DocumentIndex(Context(data_dir=str(data_dir)))
    local.index_file(KO_SAMPLE)
    local_vectors = len(_records(local))
    remote_ctx = Context(
        data_dir=str(data_dir), embeddings="openai:e5-passage", embeddings_base_url=e5_server
    )
    remote = DocumentIndex(remote_ctx)
    assert remote.collection != local.collection
    with pytest.raises(AdaptsumError, match="no documents are indexed with embeddings openai"):
        remote.search("한글 창제")
    # Indexed with the OpenAI-compatible server too: each model searches its own vectors.
    report = remote.index_file(KO_SAMPLE)
    assert report.status == "indexed"
    assert remote.search("한글은 언제 만들어졌나?", k=3)[0].document.doc_id == report.doc_id
    assert len(_records(local)) == local_vectors
    assert len(_records(remote)) == report.vectors
    assert {d.collection for d in local.catalog.documents()} == {
        local.collection,
        remote.collection,
    }


def test_data_dir_of_another_version_is_refused_clearly(data_dir: Path) -> None:
    import sqlite3

    from adaptsum.errors import ConfigError

    data_dir.mkdir(parents=True)
    old = sqlite3.connect(data_dir / "catalog.sqlite")
    old.execute("CREATE TABLE documents (doc_id TEXT)")  # an older layout, no version
    old.commit()
    old.close()
    with pytest.raises(ConfigError, match="made by another version of adaptsum"):
        DocumentIndex(Context(data_dir=str(data_dir)))


def test_a_model_loads_once_per_index_and_indexes_load_side_by_side() -> None:
    """Parallel graders share one index: its model must load once (3.12's cached_property
    has no lock), and one index's slow load must not hold up another's (3.11's lock is
    shared by every instance of the class, so two indexes loaded one after the other)."""
    import threading

    from adaptsum.store.memo import loaded_once

    loads: list[str] = []

    class Slow:
        def __init__(self, name: str) -> None:
            self.name = name

        @loaded_once
        def model(self) -> str:
            loads.append(self.name)
            time.sleep(0.5)
            return self.name

    first, second = Slow("first"), Slow("second")
    threads = [threading.Thread(target=lambda o=o: o.model) for o in [first] * 4 + [second] * 4]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.perf_counter() - started
    assert sorted(loads) == ["first", "second"]
    assert took < 0.9, f"the two loads took {took:.2f} s: one waited for the other"
