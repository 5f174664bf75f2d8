"""A file is read once: hashed and parsed from the same bytes; damaged pages are refused."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from adaptsum.errors import DocumentError
from adaptsum.ingest.pdf import load_pdf
from adaptsum.state.context import Context
from adaptsum.store.index import DocumentIndex

from helpers import EN_SAMPLE, KO_SAMPLE
from realdocs import real_pdf


def test_file_overwritten_mid_index_is_stored_as_the_version_parsed(tmp_path: Path) -> None:
    target = tmp_path / "doc.pdf"
    shutil.copy(KO_SAMPLE, target)
    original = hashlib.sha256(KO_SAMPLE.read_bytes()).hexdigest()
    index = DocumentIndex(Context(data_dir=str(tmp_path / "data")))

    def overwrite(stage: str, done: int, total: int) -> None:
        if stage == "pages":  # after the bytes were read, before anything is stored
            shutil.copy(EN_SAMPLE, target)

    report = index.index_file(target, progress=overwrite)
    assert report.status == "indexed"
    record = index.resolve([report.doc_id])[0]
    assert record.sha256 == original  # the hash of the bytes that were parsed ...
    chunks = index.catalog.document_chunks(index.collection, record.revision)
    text = " ".join(c.text for c in chunks)
    assert "훈민정음" in text and "Webb" not in text  # ... and the text of those bytes
    # The new content on disk is not mistaken for the indexed one.
    again = index.index_file(target)
    assert again.status == "replaced"
    assert (
        index.resolve([again.doc_id])[0].sha256
        == hashlib.sha256(EN_SAMPLE.read_bytes()).hexdigest()
    )


def test_pdf_truncated_to_95_percent_is_refused_naming_the_page(tmp_path: Path) -> None:
    data = EN_SAMPLE.read_bytes()
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(data[: len(data) * 95 // 100])
    with pytest.raises(DocumentError, match=r"damaged or truncated PDF.*page 2"):
        load_pdf(cut)
    index = DocumentIndex(Context(data_dir=str(tmp_path / "data")))
    index.index_file(KO_SAMPLE)
    before = [(d.doc_id, d.revision, d.vectors) for d in index.documents()]
    with pytest.raises(DocumentError, match="cut.pdf"):
        index.index_file(cut)
    assert [(d.doc_id, d.revision, d.vectors) for d in index.documents()] == before


def test_real_paper_truncated_to_95_percent_is_refused(tmp_path: Path) -> None:
    data = real_pdf("solar-10.7b-paper-en.pdf").read_bytes()
    cut = tmp_path / "solar-cut.pdf"
    cut.write_bytes(data[: len(data) * 95 // 100])
    # MuPDF rebuilds the file and still shows page 1, cut short: it must not pass as healthy.
    with pytest.raises(DocumentError, match=r"cannot be read \(page 1\)"):
        load_pdf(cut)


def test_intact_file_hash_matches_its_bytes() -> None:
    loaded = load_pdf(EN_SAMPLE, data=EN_SAMPLE.read_bytes())
    assert loaded.sha256 == hashlib.sha256(EN_SAMPLE.read_bytes()).hexdigest()
    assert loaded.skipped_pages == 0
