"""Where the real-PDF development corpus lives, and a skip that says so when it is absent."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import REPO

REAL_CORPUS = Path(os.environ.get("ADAPTSUM_CORPUS_REAL", REPO.parent / "shared" / "corpus-real"))
REAL_SET = REPO / "bench" / "data" / "real_questions"
"""Folder of the real-PDF question set: `tune.jsonl` and `test.jsonl`."""


def real_pdf(name: str) -> Path:
    """A PDF of the real corpus, or a skip naming where it was looked for."""
    path = REAL_CORPUS / name
    if not path.is_file():
        pytest.skip(
            f"real-PDF corpus not found at {REAL_CORPUS} (set ADAPTSUM_CORPUS_REAL to run this)"
        )
    return path


PACKAGES = ["tesseract-ocr", "tesseract-ocr-eng", "tesseract-ocr-kor"]


@pytest.fixture(scope="session", name="tesseract")
def tesseract_fixture() -> None:
    """Tesseract with English and Korean data, installed from Debian when missing (as root)."""
    if shutil.which("tesseract"):
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(
            f"Tesseract is not installed and cannot be (apt-get install {' '.join(PACKAGES)})"
        )
    print(f"installing {' '.join(PACKAGES)} with apt-get (once)...")
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["DEBIAN_FRONTEND"] = "noninteractive"
    done = subprocess.run(
        ["apt-get", "install", "-y", "-q", *PACKAGES], env=env, capture_output=True, text=True
    )
    if done.returncode != 0 or not shutil.which("tesseract"):
        pytest.skip(f"apt-get could not install Tesseract: {done.stderr.strip()[-200:]}")
