"""The fixed phrases answers use, in the asker's language, and language names.

Detection itself is `adaptsum.ingest.language` (re-exported here), below the store.
"""

from __future__ import annotations

from adaptsum.ingest.language import detect_language

__all__ = ["detect_language", "language_name", "phrase"]

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


def language_name(code: str) -> str:
    """English name of a language code, for prompts."""
    return LANGUAGE_NAMES.get(code, code)


def phrase(table: dict[str, str], lang: str) -> str:
    """A fixed phrase in `lang`, English when it has no translation."""
    return table.get(lang, table["en"])
