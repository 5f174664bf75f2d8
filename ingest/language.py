"""Language detection: which language a text is written in, without loading engines.

py3langid (a bundled model, numpy only) names the language; Hangul, kana and Han
script shares decide first, because short Korean questions often contain English
terms that pull a statistical classifier off. It lives below the store, which records
each document's language, and the engines, which answer in the asker's language.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from pathlib import Path

_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HAN = re.compile(r"[\u4e00-\u9fff]")
_LETTER = re.compile(r"[^\W\d_]")

LANGUAGES = "ar de en es fr hi id it ja ko nl pl pt ru th tr vi zh".split()
"""Languages the statistical classifier may answer with."""


@functools.cache
def _identifier():
    """py3langid's classifier restricted to LANGUAGES, from a decompressed cache.

    The bundled model is LZMA-compressed: decompressing it took about a sixth of a
    whole `adaptsum ask`. The restricted model is saved once, uncompressed, under
    ~/.cache/adaptsum/langid (outside the data directory: it only depends on the
    installed py3langid) and read from there; an unreadable copy is rebuilt.
    """
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    source = Path(MODEL_DIR) / MODEL_FILE
    cached = _cached_identifier(source, LanguageIdentifier)
    if cached is not None:
        return cached
    ident = LanguageIdentifier.from_model_file(MODEL_FILE)
    ident.set_languages(list(LANGUAGES))
    _save_identifier(ident, source)
    return ident


def _cache_path(source: Path) -> Path:
    stat = source.stat()
    key = f"{source}:{stat.st_size}:{stat.st_mtime_ns}:{' '.join(LANGUAGES)}"
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "adaptsum" / "langid" / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz"


def _cached_identifier(source: Path, cls):
    import numpy as np
    from py3langid.modelio import _to_array

    try:
        with np.load(_cache_path(source), allow_pickle=False) as data:
            return cls(
                data["ptc"],
                data["pc"],
                data["classes"].tolist(),
                _to_array(data["nextmove"]),
                data["out_feat"].tolist(),
                tk_row=_to_array(data["nextmove_row"]),
            )
    except Exception:  # missing, half-written or from another py3langid: rebuild
        return None


def _save_identifier(ident, source: Path) -> None:
    import numpy as np

    try:
        path = _cache_path(source)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(
            staging,
            ptc=np.asarray(ident.nb_ptc),
            pc=np.asarray(ident.nb_pc),
            classes=np.array(ident.nb_classes),
            nextmove=np.asarray(ident.tk_nextmove),
            nextmove_row=np.asarray(ident.tk_row),
            out_feat=np.asarray(ident.tk_output, dtype=np.int32),
        )
        os.replace(staging, path)  # readers never see half a file
    except OSError:  # a read-only home: detection still works, just slower
        pass


def detect_language(text: str) -> str:
    """ISO 639-1 code of `text`'s language ('en' when there is nothing to go on)."""
    letters = len(_LETTER.findall(text)) or 1
    if len(_HANGUL.findall(text)) / letters >= 0.2:
        return "ko"
    if len(_KANA.findall(text)) / letters >= 0.1:
        return "ja"
    if len(_HAN.findall(text)) / letters >= 0.3:
        return "zh"
    if letters < 8:
        return "en"  # too little text for a statistical guess
    return str(_identifier().classify(text)[0])
