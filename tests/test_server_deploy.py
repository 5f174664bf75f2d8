"""The deployment files: the Dockerfile `langgraph build` would use, and `.dockerignore`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[1]


def test_generated_dockerfile_runs_as_a_server_with_a_data_volume(tmp_path: Path) -> None:
    langgraph = Path(sys.executable).parent / "langgraph"
    if not langgraph.exists():
        pytest.skip("langgraph-cli[inmem] is not installed (pip install -e '.[test]')")
    target = tmp_path / "Dockerfile"
    subprocess.run(
        [str(langgraph), "dockerfile", "-c", str(ROOT / "langgraph.json"), str(target)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    text = target.read_text()
    assert "ADD . /deps/" in text  # the package is installed from the build context
    assert "ENV ADAPTSUM_SERVER=1" in text  # operator-only settings are enforced
    assert "ENV ADAPTSUM_DATA_DIR=/data" in text and "VOLUME /data" in text
    assert "adaptsum.graph.main_graph:graph" in text
    assert "adaptsum.graph.index_graph:graph" in text
    assert "adaptsum.auth:auth" in text


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".langgraph_api", "data"} <= ignored
