"""Language detection and the fixed phrases answers use, in the asker's language.

py3langid (a bundled model, numpy only) names the language; Hangul, kana and Han
script shares decide first, because short Korean questions often contain English
terms that pull a statistical classifier off.
"""

from __future__ import annotations

import functools
import re

_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HAN = re.compile(r"[\u4e00-\u9fff]")
_LETTER = re.compile(r"[^\W\d_]")

REFUSAL = {
    "ko": "정보가 부족하여 답변할 수 없습니다.",
    "en": "There is not enough information in the documents to answer this question.",
    "ja": "情報が不足しているため回答できません。",
    "zh": "信息不足，无法回答。",
}
"""The line the notebook's prompt prescribed when the context lacks the answer."""

QUOTED_INTRO = {
    "ko": "문서에서 찾은 근거입니다 (원문 인용):",
    "en": "Here is what the documents say (quoted evidence):",
    "ja": "文書から見つかった根拠です（原文引用）:",
    "zh": "以下是文档中的相关原文（引用）：",
}

NOT_YET = {
    "ko": (
        "이 요청은 문서 전체를 요약해야 답할 수 있습니다. 요약 기능은 아직 준비 중입니다. "
        "구체적인 질문으로 다시 물어봐 주세요."
    ),
    "en": (
        "This request needs the whole document summarized, and summarization is not "
        "available yet. Please ask a specific question instead."
    ),
}

LANGUAGE_NAMES = {
    "ko": "Korean",
    "en": "English",
    "ja": "Japanese",
    "zh": "Chinese",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
    "ru": "Russian",
    "vi": "Vietnamese",
    "th": "Thai",
    "id": "Indonesian",
    "ar": "Arabic",
    "hi": "Hindi",
    "nl": "Dutch",
    "pl": "Polish",
    "tr": "Turkish",
}


@functools.cache
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE)
    ident.set_languages(sorted(LANGUAGE_NAMES))
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


def language_name(code: str) -> str:
    """English name of a language code, for prompts."""
    return LANGUAGE_NAMES.get(code, code)


def phrase(table: dict[str, str], lang: str) -> str:
    """A fixed phrase in `lang`, English when it has no translation."""
    return table.get(lang, table["en"])
