"""One term extractor, and language detection below the store."""

from __future__ import annotations

import subprocess
import sys

from adaptsum.engines import sentences
from adaptsum.engines.language import LANGUAGE_NAMES
from adaptsum.ingest import terms
from adaptsum.ingest.language import LANGUAGES, detect_language
from adaptsum.store import lexical


def test_ranking_retrieval_and_refusal_share_one_extractor() -> None:
    assert sentences.key_terms is terms.key_terms is lexical.key_terms
    assert lexical.tokenize is terms.tokenize
    assert terms.key_terms("Qwen3의 주가는 얼마인가요?") == {"qwen", "3", "주가"}
    assert terms.key_terms("How many parameters does SOLAR 10.7B have?") == {
        "parameters",
        "solar",
        "10.7",
    }


def test_latin_terms_split_like_kiwi_splits_them() -> None:
    # An English question must meet a Korean document's Latin terms as the same tokens.
    korean = terms.tokenize("GFSM2014는 우발부채를 구분한다")
    english = terms.tokenize("GFSM2014 classification")
    assert {"gfsm", "2014"} <= set(korean) and {"gfsm", "2014"} <= set(english)


def test_store_and_ingest_import_no_engine_and_english_loads_no_kiwi() -> None:
    code = (
        "import sys\n"
        "import adaptsum.store.index, adaptsum.store.lexical, adaptsum.ingest.pdf\n"
        "from adaptsum.ingest.terms import key_terms\n"
        "key_terms('What does the mirror weigh?')\n"
        "print(sorted(m for m in sys.modules if m.startswith(('adaptsum.engines', 'kiwipiepy'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_detection_languages_match_the_named_ones() -> None:
    assert sorted(LANGUAGES) == sorted(LANGUAGE_NAMES)
    assert detect_language("우발부채란 무엇인가요?") == "ko"
    assert detect_language("The telescope launched on 25 December 2021.") == "en"


def test_inflections_match_and_cross_language_terms_are_names_and_numbers() -> None:
    from adaptsum.engines.extractive import _cross_terms

    assert terms.stem("launched") == terms.stem("launches") == terms.stem("launch") == "launch"
    assert terms.stem("studies") == terms.stem("study") and terms.stem("class") == "class"
    assert terms.stem("class") != terms.stem("classic")
    assert terms.coverage({"webb", "launch"}, "It was launched in 2021.") == 0.5
    # An English question on a Korean document: only acronyms and numbers can be looked for.
    assert _cross_terms("Who is the CEO of Alibaba Cloud?") == {"ceo"}
    assert _cross_terms("What is the population of Seoul?") == set()
    assert _cross_terms("How was GFSM2014 used in 2024?") == {"gfsm", "2014", "2024"}
    # A Korean question on an English document: every Latin name and number it writes.
    assert _cross_terms("MIRI는 몇 켈빈까지 냉각되나요?") == {"miri"}


def test_irregular_forms_and_derivations_share_a_stem() -> None:
    # "Who wrote the original Bourne shell?" against "originally written by Stephen Bourne"
    passage = "It was originally written by Stephen Bourne."
    assert terms.missing({"wrote", "original", "bourne"}, passage) == set()
    assert terms.missing({"wrote", "cost", "bourne"}, passage) == {"cost"}
    assert terms.lemma_stem("bought") == terms.lemma_stem("buy") != terms.lemma_stem("built")
    assert terms.stem("모델") == "모델" and terms.stem("2021") == "2021"  # left as they are


def test_frame_words_name_the_answer_kind_not_its_content() -> None:
    assert terms.is_frame("stand") and terms.is_frame("stands") and terms.is_frame("acronym")
    assert terms.is_frame("뜻") and terms.is_frame("papers") and terms.is_frame("논문")
    assert not terms.is_frame("cost") and not terms.is_frame("주가") and not terms.is_frame("name")


def test_parallel_graders_stem_without_stepping_on_each_other() -> None:
    """Graders run in parallel threads; a Snowball stemmer keeps its word in itself."""
    import threading

    from adaptsum.ingest.terms import stem

    words = "originally generalizations relational conditional hopefulness operations".split()
    words *= 1000
    expected = [stem.__wrapped__(w) for w in words]  # one thread, no cache
    failures: list[str] = []

    def work() -> None:
        try:
            if [stem.__wrapped__(w) for w in words] != expected:
                failures.append("a wrong stem")
        except Exception as exc:  # the shared stemmer's IndexError
            failures.append(repr(exc))

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_ocr_respacing_splits_words_but_keeps_figures_and_the_pages_spaces() -> None:
    # PyMuPDF's OCR runs Korean words together; Kiwi's spacing model parts them, but on
    # its own it also split '2,100만원' into '2,100 만 원' and dropped the page's spaces.
    assert terms.respace("한글은조선의임금인세종이만들었다").count(" ") >= 3
    assert "2,100만" in terms.respace("사업비는2,100만원이며")
    assert "3.5%" in terms.respace("2024년예산은3.5%증가했다")
    assert "제3장에" in terms.respace("제3장에서는모델을설명한다")
    assert "제4대" in terms.respace("한글은조선의제4대임금인세종이만들었다")
    assert "문제 3" in terms.respace("이것은문제3번입니다")
    assert terms.respace("기간은 3 개 월") == "기간은 3 개 월"
    assert terms.respace("No Hangul here") == "No Hangul here"
