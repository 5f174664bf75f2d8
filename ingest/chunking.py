"""Token chunks with page spans and character offsets into the whole document's text.

Pages are joined into one text so a chunk can run across a page break; each chunk
then knows the first and last page it covers, and a citation can name both.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from langchain_core.documents import Document
from langchain_text_splitters import RecursiveCharacterTextSplitter

from adaptsum.providers.tokens import ENCODING, count_tokens, get_encoding

PAGE_SEPARATOR = "\n\n"
_ENDS_SENTENCE = tuple(".!?。！？:;)]»\"'")


@dataclass(frozen=True)
class Chunk:
    """A piece of a document: its text, where it sits and which pages it covers."""

    index: int
    text: str
    char_start: int
    char_end: int
    page_start: int
    page_end: int
    tokens: int


def join_pages(pages: list[Document]) -> tuple[str, list[int], list[int]]:
    """The document text, each page's start offset, and its page numbers (1-based).

    Pages are separated by a paragraph break, or by a space when a sentence runs on
    from one page to the next, so it stays one sentence.
    """
    starts: list[int] = []
    numbers: list[int] = []
    text = ""
    for page in pages:
        if text:
            text += PAGE_SEPARATOR if text.endswith(_ENDS_SENTENCE) else " "
        starts.append(len(text))
        numbers.append(int(page.metadata["page"]))
        text += page.page_content
    return text, starts, numbers


def page_at(offset: int, starts: list[int], numbers: list[int]) -> int:
    """The page holding character `offset` of the joined text."""
    return numbers[max(bisect.bisect_right(starts, offset) - 1, 0)]


def chunk_pages(pages: list[Document], chunk_size: int, chunk_overlap: int) -> list[Chunk]:
    """Split pages into chunks of at most `chunk_size` o200k_base tokens.

    Uses LangChain's recursive splitter with a tiktoken length function, as the
    original notebook did, on the joined text so chunks may cross page breaks.
    """
    text, starts, numbers = join_pages(pages)
    get_encoding(ENCODING)  # make sure the BPE file is in place before the splitter asks
    splitter = RecursiveCharacterTextSplitter.from_tiktoken_encoder(
        encoding_name=ENCODING,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
    )
    chunks: list[Chunk] = []
    start = -1
    for piece in splitter.split_text(text):
        # Find each piece after the previous one's start. (The splitter's own
        # add_start_index subtracts the token overlap as if it were characters.)
        start = text.find(piece, start + 1)
        if start < 0:
            raise AssertionError("splitter returned a chunk that is not a slice of the text")
        end = start + len(piece)
        chunks.append(
            Chunk(
                index=len(chunks),
                text=piece,
                char_start=start,
                char_end=end,
                page_start=page_at(start, starts, numbers),
                page_end=page_at(end - 1, starts, numbers),
                tokens=count_tokens(piece),
            )
        )
    return chunks
