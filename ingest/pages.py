"""Page ranges ('3', '2-5', '5-'): which pages a question or a summary keeps to.

Apart from the store so that the CLI can check a `--pages` flag without importing it
(the ask worker's caller loads no library; see `tests/test_startup.py`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from adaptsum.errors import AdaptsumError

if TYPE_CHECKING:
    from adaptsum.store.catalog import ChunkRecord, DocumentRecord

__all__ = ["PageRange"]

TO_THE_END = 1 << 30
"""The last page of an open range ('5-', or no range): past any document's end."""


@dataclass
class PageRange:
    """Inclusive 1-based page range for retrieval filters."""

    first: int = 1
    last: int = TO_THE_END

    @classmethod
    def parse(cls, spec: str | None) -> PageRange | None:
        """'3' or '2-5' (None or '' for no filter).

        Raises:
            AdaptsumError: the spec is not N or N-M with 1 <= N <= M.
        """
        if not spec or not spec.strip():
            return None
        first, dash, last = spec.strip().partition("-")
        try:  # "5-": from page 5 to the end
            rng = cls(int(first), int(last) if last.strip() else TO_THE_END if dash else int(first))
        except ValueError:
            raise AdaptsumError(f"pages {spec!r}: expected N, N-M or N-") from None
        if rng.first < 1 or rng.last < rng.first:
            raise AdaptsumError(f"pages {spec!r}: expected 1 <= N <= M")
        return rng

    def __str__(self) -> str:
        """'3', '2-5' or '5-' (to the end), as a user writes a range."""
        if self.last == self.first:
            return str(self.first)
        return f"{self.first}-" if self.last == TO_THE_END else f"{self.first}-{self.last}"

    def clip(self, chunk: ChunkRecord, document: DocumentRecord) -> ChunkRecord:
        """The part of `chunk` on these pages.

        Retrieval keeps a chunk that touches the range, and a chunk may run from page 6
        onto page 7: graded and quoted whole, it let '--pages 5-6' cite page 7.
        """
        if chunk.page_start >= self.first and chunk.page_end <= self.last:
            return chunk
        offsets = json.loads(document.page_offsets)
        lo = min((start for page, start in offsets if page >= self.first), default=0)
        hi = min((start for page, start in offsets if page > self.last), default=chunk.char_end)
        start, end = max(lo, chunk.char_start), max(min(hi, chunk.char_end), lo)
        return dataclasses.replace(
            chunk,
            text=chunk.text[start - chunk.char_start : max(end, start) - chunk.char_start],
            char_start=start,
            char_end=max(end, start),
            page_start=max(chunk.page_start, self.first),
            page_end=min(chunk.page_end, self.last),
        )
