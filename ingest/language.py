"""Language detection: which language a text is written in, without loading engines.

py3langid (a bundled model, numpy only) names the language; Hangul, kana and Han
script shares decide first, because short Korean questions often contain English
terms that pull a statistical classifier off. It lives below the store, which records
each document's language, and the engines, which answer in the asker's language.
"""

from __future__ import annotations

import functools
import re

_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HAN = re.compile(r"[\u4e00-\u9fff]")
_LETTER = re.compile(r"[^\W\d_]")

ISO_639_1 = frozenset(
    "aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs "
    "cu cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he "
    "hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr "
    "ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng "
    "nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk "
    "sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz "
    "ve vi vo wa wo xh yi yo za zh zu".split()
)
"""Every two-letter language code, so a reply language of 'xx' is a clear error, not an
answer in English to a model told to write 'xx'."""

LANGUAGES = "ar de en es fr hi id it ja ko nl pl pt ru th tr vi zh".split()
"""Languages the statistical classifier may answer with."""


@functools.cache
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE)
    ident.set_languages(list(LANGUAGES))
    return ident


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
