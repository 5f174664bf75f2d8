"""Real PostgreSQL and Chroma servers for the `services` tests (a pytest plugin).

`postgres_server` runs a throwaway cluster from Debian's `postgresql` package: `initdb`
in a temporary directory, a free loopback port, its unix socket in that directory, and
`pg_ctl stop` at the end. If `initdb` is missing and we are root, the package is
installed once with apt-get (proxy variables dropped, since the tests close the
network with them). PostgreSQL refuses to run as root, so as root the cluster runs as
the `postgres` user (or `nobody`). `chroma_server` runs `chroma run` from the chromadb
package. When a server cannot be installed or started, its tests skip with the reason.
No mocks: every test talks to the real server over its real protocol.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

_PROXY_VARS = {
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
}


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bindir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _install_postgresql() -> str | None:
    """apt-get install postgresql (as root, network allowed); the reason it failed, if it did."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "initdb not found and not root: install Debian's `postgresql` package"
    print("\nservices: installing Debian's postgresql package (once)...", file=sys.stderr)
    env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARS}
    env["DEBIAN_FRONTEND"] = "noninteractive"
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "postgresql"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
            return f"`{' '.join(command)}` failed: {' '.join(tail)}"
    return None


def _run_as() -> str | None:
    """The user to run PostgreSQL as: None if we are not root, else postgres or nobody."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    return None


@dataclass
class PostgresServer:
    """A running throwaway PostgreSQL cluster."""

    port: int
    socket_dir: Path

    @property
    def url(self) -> str:
        """URL of the maintenance database (trust auth over loopback TCP)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; its URL."""
        import psycopg

        name = name or f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"


def start_postgres(
    root: Path, durable: bool = False
) -> tuple[PostgresServer, subprocess.Popen | None, list[str]]:
    """initdb + pg_ctl start under `root`; returns the server and the stop command.

    Tests run without fsync (nothing to keep); `durable=True` keeps PostgreSQL's
    defaults, for benchmarks that must not flatter the server.

    Raises:
        RuntimeError: with the reason, when PostgreSQL cannot be installed or started.
    """
    bindir = _pg_bindir()
    if bindir is None:
        reason = _install_postgresql()
        bindir = _pg_bindir()
        if bindir is None:
            raise RuntimeError(reason or "initdb not found after installing postgresql")
    user = _run_as()
    prefix = ["runuser", "-u", user, "--"] if user else []
    if user:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    data = root / "data"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARS}
    env["LC_ALL"] = "C.UTF-8"
    init = subprocess.run(
        [
            *prefix,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    if init.returncode != 0:
        raise RuntimeError(f"initdb failed: {init.stderr.strip()[-300:]}")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=200"
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    start = subprocess.run(
        [
            *prefix,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(root / "postgres.log"),
            "-w",
            "-t",
            "60",
            "start",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
    )
    if start.returncode != 0:
        log = (root / "postgres.log").read_text(errors="replace")[-400:]
        raise RuntimeError(f"pg_ctl start failed: {start.stderr.strip()[-200:]} {log}")
    stop = [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
    return PostgresServer(port=port, socket_dir=root), None, stop


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL for the whole session (skips with the reason if impossible)."""
    pytest.importorskip("psycopg", reason="psycopg not installed (pip install -e '.[test]')")
    # Not under pytest's tmp dir: its 0700 parents would lock out the postgres user.
    root = Path(tempfile.mkdtemp(prefix="adaptsum-pg-"))
    try:
        server, _, stop = start_postgres(root)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as err:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"PostgreSQL could not be started: {err}")
    try:
        yield server
    finally:
        subprocess.run(stop, capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the session's PostgreSQL."""
    return postgres_server.create_database()


def start_chroma(root: Path) -> tuple[str, subprocess.Popen]:
    """`chroma run` on a free loopback port with its data under `root`; (url, process).

    Raises:
        RuntimeError: the `chroma` command is missing or the server did not come up.
    """
    exe = Path(sys.executable).with_name("chroma")
    command = [str(exe)] if exe.exists() else [shutil.which("chroma") or ""]
    if not command[0]:
        raise RuntimeError("the `chroma` command (chromadb package) is not installed")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARS}
    env["ANONYMIZED_TELEMETRY"] = "False"
    log = open(root / "chroma.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [*command, "run", "--path", str(root / "data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with opener.open(f"{url}/api/v2/heartbeat", timeout=1) as response:
                if response.status == 200:
                    return url, proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    proc.wait()
    text = (root / "chroma.log").read_text(errors="replace")[-300:]
    raise RuntimeError(f"`chroma run` did not answer on {url}: {text}")


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A `chroma run` server for the session; its URL (skips with the reason if impossible)."""
    root = tmp_path_factory.mktemp("chroma-server")
    try:
        url, proc = start_chroma(root)
    except (RuntimeError, OSError) as err:
        pytest.skip(f"Chroma server could not be started: {err}")
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def chroma_url(chroma_server: str) -> str:
    """The session's Chroma server, emptied of collections left by earlier tests."""
    import chromadb
    from chromadb.config import Settings

    host, port = chroma_server.removeprefix("http://").split(":")
    client = chromadb.HttpClient(
        host=host, port=int(port), settings=Settings(anonymized_telemetry=False)
    )
    for collection in client.list_collections():
        client.delete_collection(collection.name)
    return chroma_server


def start_langgraph_dev(
    work: Path, env: dict[str, str], *extra: str, timeout: float = 180
) -> tuple[str, subprocess.Popen]:
    """`langgraph dev` serving this repo's langgraph.json on a free port; (url, process).

    Runs in `work` (so its `.langgraph_api/` stays out of the clone), in its own session
    (stop it with `os.killpg`), logging to `work/server.log`, with the proxy variables
    dropped from `env`. `extra` goes on the command line (e.g. `--n-jobs-per-worker 8`).

    Raises:
        RuntimeError: the command is missing, exited, or did not answer /ok in time.
    """
    exe = Path(sys.executable).with_name("langgraph")
    if not exe.exists():
        raise RuntimeError("langgraph-cli[inmem] is not installed (pip install -e '.[test]')")
    port = free_port()
    env = {k: v for k, v in env.items() if k not in _PROXY_VARS}
    log = open(work / "server.log", "wb")  # noqa: SIM115 - closed with the process
    repo = Path(__file__).resolve().parents[1]
    command = [str(exe), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1"]
    proc = subprocess.Popen(
        [*command, "--port", str(port), "--config", str(repo / "langgraph.json"), *extra],
        cwd=work,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with opener.open(f"{url}/ok", timeout=2) as response:
                if response.status == 200:
                    return url, proc
        except OSError:
            time.sleep(0.5)
    if proc.poll() is None:
        os.killpg(proc.pid, 15)
        proc.wait()
    text = (work / "server.log").read_text(errors="replace")[-500:]
    raise RuntimeError(f"langgraph dev did not answer on {url}: {text}")
