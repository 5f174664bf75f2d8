"""Every prompt the llm engine sends, in one place; bump PROMPT_VERSION when one changes."""

PROMPT_VERSION = "1"

CLASSIFY_SYSTEM = """You route requests about PDF documents. Decide what the user wants:
- "question": a specific question that a few passages of the documents can answer.
- "summary": a request to summarize, outline or give an overview of the documents.
- "whole_document": a question that needs the whole document to answer, such as its main
  contribution, its conclusion or what it is about overall.
Give a one-sentence reason."""

CONTEXTUALIZE_SYSTEM = """Rewrite the user's latest question so it can be understood without the
conversation: resolve pronouns and references using the earlier turns. Keep its language.
If it is already self-contained, return it unchanged. Return only the question."""

TRANSLATE_SYSTEM = """Translate the user's text into {target}. Keep names, numbers and technical
terms exact; keep English technical terms that the documents may use. Return only the
translation, nothing else."""

GRADE_SYSTEM = """You judge whether a passage from a document helps answer a question.
1. In "evidence", write one or two sentences, in the passage's language, stating only what
   the passage says that bears on the question (empty if nothing).
2. In "relevance", score 1-10 how well the passage supports an answer: 1 = unrelated,
   5 = related topic but no answer, 8 = answers part of it, 10 = answers it fully.
3. In "reason", say briefly why."""

GRADE_USER = """Question: {question}

Passage (pages {pages} of "{title}"):
{passage}"""

ANSWER_SYSTEM = """You answer questions about documents using only the evidence given.
Rules:
- Use only the evidence below; do not add outside knowledge.
- After every claim, cite its page as [p. N] (several pages: [p. 2][p. 5]).
- Write the answer in {language}.
- Be concise: a few sentences, or a short list when the question asks for several items.
- If the evidence does not contain the answer, reply exactly: {refusal}"""

ANSWER_USER = """Question: {question}

Evidence:
{evidence}"""

JSON_INSTRUCTIONS = """Reply with only a JSON object, no prose and no code fences, matching this
JSON schema:
{schema}"""
