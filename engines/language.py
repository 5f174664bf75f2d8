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
    "fr": "Les documents ne contiennent pas assez d'informations pour répondre à cette question.",
    "de": "Die Dokumente enthalten nicht genug Informationen, um diese Frage zu beantworten.",
    "es": "Los documentos no contienen información suficiente para responder a esta pregunta.",
    "it": "I documenti non contengono informazioni sufficienti per rispondere a questa domanda.",
    "pt": "Os documentos não contêm informações suficientes para responder a esta pergunta.",
    "ru": "В документах недостаточно информации, чтобы ответить на этот вопрос.",
    "vi": "Tài liệu không có đủ thông tin để trả lời câu hỏi này.",
}
"""The line the notebook's prompt prescribed when the context lacks the answer."""

QUOTED_INTRO = {
    "ko": "문서에서 찾은 근거입니다 (원문 인용):",
    "en": "Here is what the documents say (quoted evidence):",
    "ja": "文書から見つかった根拠です（原文引用）:",
    "zh": "以下是文档中的相关原文（引用）：",
    "fr": "Voici ce que disent les documents (citations) :",
    "de": "Das steht in den Dokumenten (wörtliche Zitate):",
    "es": "Esto es lo que dicen los documentos (citas textuales):",
    "it": "Ecco cosa dicono i documenti (citazioni testuali):",
    "pt": "Eis o que dizem os documentos (citações literais):",
    "ru": "Вот что говорится в документах (дословные цитаты):",
    "vi": "Đây là những gì tài liệu nêu (trích dẫn nguyên văn):",
}
"""The line before an extractive answer's quotes."""

QUOTED_SUMMARY_INTRO = {
    "ko": "문서의 핵심 문장을 원문 그대로 인용한 요약입니다:",
    "en": "A summary in the document's own sentences, quoted in its language:",
    "ja": "文書の要となる文を原文のまま引用した要約です:",
    "zh": "以下摘要直接引用文档原文的关键句：",
    "fr": "Un résumé fait des phrases du document, citées dans sa langue :",
    "de": "Eine Zusammenfassung aus Sätzen des Dokuments, in seiner Sprache zitiert:",
    "es": "Un resumen con frases del documento, citadas en su idioma:",
    "it": "Un riassunto fatto di frasi del documento, citate nella sua lingua:",
    "pt": "Um resumo com frases do documento, citadas no seu idioma:",
    "ru": "Краткое изложение из предложений документа, процитированных на его языке:",
    "vi": "Bản tóm tắt gồm các câu của tài liệu, trích nguyên văn bằng ngôn ngữ của nó:",
}
"""The line before an extractive summary whose quotes are not in the asker's language:
without it, a Korean asker gets English sentences with no word saying why."""

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
