"""A document's own words as its bilingual dictionary: Korean question terms looked up in
an English document, for BM25 and the rerank."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from adaptsum import Context, build_graph
from adaptsum.ingest.terms import coverage, korean_words
from adaptsum.store.glossary import GLOSSARY_VERSION, Glossary
from adaptsum.store.index import DocumentIndex

from helpers import EN_SAMPLE, KO_SAMPLE


def test_korean_words_are_whole_nouns() -> None:
    # Kiwi splits the loanword into 레이 + 어 and the compound into 위키 + 백과.
    words = korean_words("깊이 확장(depthwise scaling)에서 제거되는 레이어 수 m은 얼마인가요?")
    assert {"확장", "제거", "레이어"} <= words and not {"레이", "어", "수", "얼마"} & words
    assert korean_words("DPR 실험에 사용한 위키백과 덤프는 언제 날짜의 것인가요?") == {
        "실험",
        "사용",
        "위키백과",
        "덤프",
        "날짜",
    }
    assert korean_words("How many layers?") == set()


def _webb(index: DocumentIndex) -> str:
    (webb,) = [d for d in index.documents() if d.title.startswith("The James Webb")]
    return webb.revision


def test_translations_are_the_documents_own_words(samples_index: DocumentIndex) -> None:
    found = samples_index.glossary.translations(
        {"발사", "거울", "적외선", "주가"}, _webb(samples_index)
    )
    assert "launch" in found["발사"] or "launched" in found["발사"]
    assert "mirror" in found["거울"]
    assert "infrared" in found["적외선"]
    assert found["주가"] == []  # a stock price: the article has no word for it
    # only words of the other script: never a Korean word of the question itself
    assert all(w.isascii() for words in found.values() for w in words)


def test_translated_terms_feed_bm25(samples_index: DocumentIndex) -> None:
    words = samples_index.translated_terms(
        "웹 망원경의 거울은 무엇으로 만들었나요?", _webb(samples_index)
    )
    assert "mirror" in words
    hits = samples_index.lexical.search(" ".join(words), 3, {_webb(samples_index)})
    assert hits  # BM25 on the English article now has words to match


def _saved(index: DocumentIndex, revision: str) -> Path:
    return index.glossary.dir / f"{revision}.v{GLOSSARY_VERSION}.npz"


def test_indexing_builds_the_glossary_of_a_document_not_in_korean(
    samples_index: DocumentIndex,
) -> None:
    by_language = {d.language: d.revision for d in samples_index.documents()}
    assert _saved(samples_index, by_language["en"]).stat().st_size > 10_000
    assert not _saved(samples_index, by_language["ko"]).exists()


def test_a_damaged_glossary_is_rebuilt(tmp_path: Path) -> None:
    index = DocumentIndex(Context(data_dir=str(tmp_path / "data")))
    index.index_file(EN_SAMPLE)
    revision = _webb(index)
    saved = _saved(index, revision)
    saved.write_bytes(b"not a numpy archive")
    fresh = Glossary(index.root, index.collection, index.catalog)
    assert "mirror" in fresh.translations({"거울"}, revision)["거울"]
    assert saved.stat().st_size > 10_000  # rebuilt, not trusted


def test_a_glossary_that_cannot_be_saved_still_serves(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "glossary").write_text("a file where the cache folder goes")
    index = DocumentIndex(Context(data_dir=str(data)))
    assert index.index_file(EN_SAMPLE).status == "indexed"  # the cache is not the index
    assert "mirror" in index.glossary.translations({"거울"}, _webb(index))["거울"]


def test_terms_count_through_their_translations() -> None:
    text = "The primary mirror is made of 18 hexagonal segments."
    assert coverage({"거울", "주가"}, text, {"거울": ["mirror"], "주가": []}) == 0.5
    assert coverage({"거울", "주가"}, text) == 0.0  # without the glossary nothing matches


def test_glossary_setting_off_keeps_the_shared_terms_only(samples_index: DocumentIndex) -> None:
    off = DocumentIndex(Context(data_dir=samples_index.ctx.data_dir, glossary=False))
    question = "웹 망원경의 JWST 거울은 무엇으로 만들었나요?"
    assert off.translated_terms(question, _webb(samples_index)) == ["jwst"]
    assert "mirror" in samples_index.translated_terms(question, _webb(samples_index))


def test_a_replaced_documents_glossary_is_deleted(tmp_path: Path) -> None:
    pdf = tmp_path / "doc.pdf"
    shutil.copy(EN_SAMPLE, pdf)
    index = DocumentIndex(Context(data_dir=str(tmp_path / "data")))
    index.index_file(pdf)
    old = _saved(index, _webb(index))
    assert old.exists()
    shutil.copy(KO_SAMPLE, pdf)  # the file now holds a Korean document: no glossary
    index.index_file(pdf)
    assert not old.exists() and not list(index.glossary.dir.glob("*.npz"))


def test_gloss_is_a_korean_question_in_the_documents_words(
    samples_index: DocumentIndex,
) -> None:
    webb = _webb(samples_index)
    gloss = samples_index.gloss("웹 망원경은 언제 발사되었나요?", webb)
    assert gloss is not None
    words = set(gloss.split())
    assert "telescope" in words and {"launch", "launched"} & words
    assert all(w.isascii() for w in words)
    assert samples_index.gloss("When did Webb launch?", webb) is None  # nothing to translate
    off = DocumentIndex(Context(data_dir=samples_index.ctx.data_dir, glossary=False))
    assert off.gloss("웹 망원경은 언제 발사되었나요?", webb) is None


@pytest.fixture(scope="module")
def solar(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The real SOLAR paper and a data directory it is indexed in (once for the module)."""
    from realdocs import real_pdf

    pdf = real_pdf("solar-10.7b-paper-en.pdf")
    data = tmp_path_factory.mktemp("solar")
    DocumentIndex(Context(data_dir=str(data))).index_file(pdf)
    return pdf, data


def _first_retrieved(solar: tuple[Path, Path], question: str, **settings: object) -> dict:
    """The passage the graph ranks first for `question` on the SOLAR paper."""
    from langgraph.checkpoint.memory import InMemorySaver

    pdf, data = solar
    graph = build_graph(InMemorySaver())
    config = {"configurable": {"thread_id": "first"}}
    ctx = Context(data_dir=str(data), **settings)
    graph.invoke({"request": question, "documents": [str(pdf)]}, config, context=ctx)
    return graph.get_state(config).values["retrieved"][0]


def test_korean_question_on_a_real_english_paper_finds_its_page(
    solar: tuple[Path, Path],
) -> None:
    """A calibration question that only the glossary ranks right: its passage says
    "initialize ... with pretrained weights from Mistral 7B", in no word the question shares."""
    question = "SOLAR의 기반 모델은 어떤 모델의 사전학습 가중치로 초기화했나요?"
    first = _first_retrieved(solar, question)
    assert first["page_start"] <= 2 <= first["page_end"]


def test_the_gloss_ranks_the_passage_that_answers(solar: tuple[Path, Path]) -> None:
    """A calibration question whose page 6 ("we chose 'Merge v1' as our SOLAR
    10.7B-Instruct model") ranks first only with the gloss averaged in."""
    question = "여러 병합 모델 가운데 최종 SOLAR 10.7B-Instruct로 선택된 것은 무엇인가요?"
    first = _first_retrieved(solar, question)
    assert first["page_start"] <= 6 <= first["page_end"]


@pytest.mark.parametrize(
    ("question", "asks"),
    [
        ("When did Webb launch?", True),
        ("Who built it, and when was it launched?", True),
        ("How many layers does the model have?", True),
        ("한글은 언제 만들어졌나요?", True),
        ("레이어는 몇 개인가요?", True),
        ("What happens when the cache is full?", False),
        ("Why does the shell fork when it runs a command?", False),
        ("몇몇 모델은 무엇을 사용하나요?", False),
        ("언제나 켜져 있어야 하는 기능은?", False),
    ],
)
def test_a_question_asks_for_a_figure_only_with_its_own_when_or_how_many(
    question: str, asks: bool
) -> None:
    from adaptsum.engines.extractive import _ASKS_FOR_A_NUMBER

    assert bool(_ASKS_FOR_A_NUMBER.search(question)) is asks


def test_a_question_for_a_number_is_answered_first_by_the_sentence_with_it(
    solar: tuple[Path, Path],
) -> None:
    """'How many layers…?' was answered first with sentences about layers in general, the
    one with the figure ("the 32-layer Llama 2 architecture") third or not at all; a
    model's size in its name ("SOLAR 10.7B") is no figure."""
    pdf, data = solar
    question = "How many layers does the SOLAR base model have?"
    out = build_graph().invoke(
        {"request": question, "documents": [str(pdf)]}, context=Context(data_dir=str(data))
    )
    assert out["route"] == "answer", out["route_reason"]
    assert "32-layer" in out["citations"][0]["evidence"], out["answer"]
