"""Several `adaptsum` processes on one data directory at once: no lock errors, no lost vectors.

(Two `index` processes racing on the same and different files, with a lease check, are in
test_catalog.py; here the everyday case: asks that index on demand, beside an indexer.)
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

from adaptsum.state.context import Context
from adaptsum.store.index import DocumentIndex

from helpers import EN_SAMPLE, KO_SAMPLE, env_without_settings


def test_asks_and_an_indexer_at_once_on_a_fresh_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = env_without_settings()
    exe = str(Path(sys.executable).with_name("adaptsum"))
    commands = {
        "ask-ko-1": ["ask", str(KO_SAMPLE), "한글은 누가 만들었나요?"],
        "ask-ko-2": ["ask", str(KO_SAMPLE), "한글날은 언제인가요?"],
        "ask-en": ["ask", str(EN_SAMPLE), "How large is Webb's mirror?"],
        "index": ["index", str(EN_SAMPLE), str(KO_SAMPLE), "--no-progress"],
    }
    # All start before any has indexed anything: each finds the PDFs new, so the same
    # revisions are claimed by several processes, and every ask writes its checkpoints.
    runs = {
        name: subprocess.Popen(
            [exe, *args, "--data-dir", str(data)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, args in commands.items()
    }
    outs = {name: run.communicate(timeout=600) for name, run in runs.items()}
    for name, run in runs.items():
        out, err = outs[name]
        assert run.returncode == 0, (name, out, err)
        assert "locked" not in err and "Traceback" not in err, (name, err)
        if name.startswith("ask"):
            assert "route: answer" in out and "[p. " in out, (name, out)
    index = DocumentIndex(Context(data_dir=str(data)))
    docs = index.documents()
    # One live revision per document, with every one of its vectors, nothing pending.
    assert sorted(Path(d.source).name for d in docs) == sorted([KO_SAMPLE.name, EN_SAMPLE.name])
    got = index.vectorstore.get(include=["metadatas"])
    assert Counter(m["revision"] for m in got["metadatas"]) == {d.revision: d.vectors for d in docs}
    assert all(index.catalog.pending_holder(index.collection, d.revision) is None for d in docs)
