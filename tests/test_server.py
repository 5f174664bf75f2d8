"""The LangGraph server as a remote user meets it: `langgraph dev` driven through langgraph-sdk.

One dev server (from `langgraph-cli[inmem]`) is started for the module on a free port,
with auth tokens for two users, a throw-away data directory and an operator key; the
tests then use only HTTP. PDFs reach the server as uploads and as URLs of a local
`http.server` (the operator setting ADAPTSUM_ALLOW_PRIVATE_URLS is on for that).
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from helpers import EN_SAMPLE, KO_SAMPLE

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[1]
OPERATOR_KEY = "sk-operator-secret-for-tests"
TOKENS = {"alice": "token-alice", "bob": "token-bob"}
START_TIMEOUT = 180


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Files(http.server.SimpleHTTPRequestHandler):
    """Serves the examples folder; `/redirect` bounces to a sample; counts key-bearing requests."""

    key_hits = 0

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if OPERATOR_KEY in (self.headers.get("Authorization") or ""):
            type(self).key_hits += 1
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/" + EN_SAMPLE.name)
            self.end_headers()
            return
        if self.path == "/page.html":
            body = b"<html>not a pdf</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    do_POST = do_GET  # noqa: N815 - a chat client would POST to /v1/chat/completions

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def files() -> Iterator[str]:
    handler = lambda *a, **kw: _Files(*a, directory=str(EN_SAMPLE.parent), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def chat_stub() -> Iterator[tuple[str, list[dict]]]:
    """The operator's OpenAI-compatible chat server (a scripted stub; the model is outside)."""
    from fakes import Script
    from openai_stub import openai_stub

    script = Script(answer=lambda evidence: "세종대왕이 1443년에 한글을 만들었습니다 [p. 1]")
    with openai_stub(script) as (url, _, requests):
        yield url, requests


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, chat_stub) -> Iterator[dict]:
    langgraph = Path(sys.executable).parent / "langgraph"
    if not langgraph.exists():
        pytest.skip("langgraph-cli[inmem] is not installed (pip install -e '.[test]')")
    work = tmp_path_factory.mktemp("server")
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k.upper() not in {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"}
    }
    env.update(
        ADAPTSUM_DATA_DIR=str(work / "data"),
        ADAPTSUM_ALLOW_PRIVATE_URLS="1",
        ADAPTSUM_API_TOKENS=",".join(f"{u}:{t}" for u, t in TOKENS.items()),
        OPENAI_API_KEY=OPERATOR_KEY,
        ADAPTSUM_CHAT_BASE_URL=chat_stub[0],
        LANGSMITH_TRACING="false",
        LANGCHAIN_TRACING_V2="false",
        PYTHONUNBUFFERED="1",
    )
    env.pop("ADAPTSUM_AUTH", None)
    log_path = work / "server.log"
    log = log_path.open("w")
    # cwd is a temporary folder so the dev server's .langgraph_api/ stays out of the clone
    proc = subprocess.Popen(
        [
            str(langgraph),
            "dev",
            "--no-browser",
            "--no-reload",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--config",
            str(ROOT / "langgraph.json"),
        ],
        cwd=work,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"langgraph dev exited with {proc.returncode}:\n{log_path.read_text()}")
            try:
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() - started > START_TIMEOUT:
                pytest.fail(
                    f"langgraph dev not ready in {START_TIMEOUT} s:\n{log_path.read_text()}"
                )
            time.sleep(0.5)
        print(f"langgraph dev ready in {time.monotonic() - started:.1f} s")
        yield {"url": url, "log": log_path}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(work / ".langgraph_api", ignore_errors=True)


def _client(server: dict, user: str = "alice"):
    from langgraph_sdk import get_sync_client

    return get_sync_client(
        url=server["url"], headers={"Authorization": f"Bearer {TOKENS[user]}"}, timeout=300
    )


def _run(client, graph: str, **kwargs):
    """A run on a new thread (with owner-scoped auth, every run belongs to a thread)."""
    thread = client.threads.create()
    return client.runs.wait(thread["thread_id"], graph, raise_error=False, **kwargs)


def _upload(path: Path) -> dict:
    return {"name": path.name, "data": base64.b64encode(path.read_bytes()).decode()}


def _error(result) -> str:
    """The one-line message of a failed `runs.wait`, or '' when the run succeeded."""
    if isinstance(result, dict) and "__error__" in result:
        return result["__error__"]["message"]
    return ""


@pytest.fixture(scope="module")
def doc_ids(server: dict, files: str) -> dict[str, str]:
    """Index the Korean sample by upload and the English one by URL through the index graph."""
    client = _client(server)
    by_upload = _run(client, "adaptsum-index", input={"documents": [_upload(KO_SAMPLE)]})
    by_url = _run(client, "adaptsum-index", input={"documents": [f"{files}/{EN_SAMPLE.name}"]})
    assert not _error(by_upload) and not _error(by_url), (by_upload, by_url)
    return {"ko": by_upload["indexed"][0]["doc_id"], "en": by_url["indexed"][0]["doc_id"]}


def test_requests_without_a_valid_token_are_refused(server: dict) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "token-alice"}):
        response = httpx.post(f"{server['url']}/assistants/search", json={}, headers=headers)
        assert response.status_code == 401, (headers, response.text)
    ok = httpx.post(
        f"{server['url']}/assistants/search",
        json={},
        headers={"Authorization": f"Bearer {TOKENS['alice']}"},
    )
    assert ok.status_code == 200


def _described(schema: dict, where: str) -> None:
    """Every property of the schema and of its definitions carries a description."""
    objects = [(where, schema), *((f"{where}.{n}", d) for n, d in schema.get("$defs", {}).items())]
    for name, obj in objects:
        for field, spec in obj.get("properties", {}).items():
            assert spec.get("description"), f"{name}.{field} has no description"


def test_two_assistants_with_complete_schemas(server: dict) -> None:
    client = _client(server)
    assistants = {a["graph_id"]: a for a in client.assistants.search()}
    assert set(assistants) == {"adaptsum", "adaptsum-index"}
    for graph_id, assistant in assistants.items():
        schemas = client.assistants.get_schemas(assistant["assistant_id"])
        for kind in ("input_schema", "output_schema", "context_schema"):
            assert schemas[kind], f"{graph_id} {kind} is {schemas[kind]!r}"
            _described(schemas[kind], f"{graph_id}.{kind}")
    main = client.assistants.get_schemas(assistants["adaptsum"]["assistant_id"])
    props = main["input_schema"]["properties"]
    assert props["mode"]["enum"] == ["auto", "answer", "summarize"]
    assert set(props["strategy"]["enum"]) == {"auto", "stuff", "map_reduce", "refine"}
    context = main["context_schema"]["properties"]
    assert context["engine"]["enum"] == ["extractive", "llm"]
    for name in ("retrieval", "summary_style", "structured_output"):
        assert context[name].get("enum"), f"context.{name} is not an enum"


def test_studio_graphs_show_the_budget_gates(server: dict) -> None:
    """What Studio draws: both assistants' graphs (xray) answer; the gates are nodes."""
    client = _client(server)
    for assistant in client.assistants.search():
        graph = client.assistants.get_graph(assistant["assistant_id"], xray=True)
        nodes = {n["id"] for n in graph["nodes"]}
        assert graph["edges"] and "__start__" in nodes, assistant["graph_id"]
        if assistant["graph_id"] == "adaptsum":
            assert {"collapse_gate", "map_chunk", "reduce_summary", "refine_chunk"} <= nodes
            gate = {e["target"] for e in graph["edges"] if e["source"] == "collapse_gate"}
            assert {"map_chunk", "collapse_group", "reduce_summary", "__end__"} <= gate
            plan = {e["target"] for e in graph["edges"] if e["source"] == "plan_summary"}
            assert "map_chunk" not in plan  # every wave of maps passes the gate


def test_index_by_upload_and_by_url(server: dict, files: str, doc_ids: dict) -> None:
    client = _client(server)
    again = _run(client, "adaptsum-index", input={"documents": [f"{files}/redirect"]})
    assert again["indexed"][0] == {**again["indexed"][0], "doc_id": doc_ids["en"]}
    assert again["indexed"][0]["status"] == "unchanged"  # same bytes, through a redirect


def test_ask_follow_up_stream_and_history(server: dict, doc_ids: dict) -> None:
    client = _client(server)
    thread = client.threads.create()
    started = time.perf_counter()
    first = client.runs.wait(
        thread["thread_id"],
        "adaptsum",
        input={"request": "한글은 누가 만들었나요?", "documents": [doc_ids["ko"]]},
    )
    assert not _error(first), first
    print(f"\nan extractive question through the dev server: {time.perf_counter() - started:.2f} s")
    assert first["route"] == "answer" and "세종" in first["answer"]
    assert first["citations"] and first["citations"][0]["doc_id"] == doc_ids["ko"]
    assert {c["source"] for c in first["citations"]} == {KO_SAMPLE.name}  # not the stored path

    # The follow-up names no documents: the thread's are used. Stream its tokens.
    streamed, finals, updates = [], [], []
    for part in client.runs.stream(
        thread["thread_id"],
        "adaptsum",
        input={"request": "그 사람은 몇 번째 임금이었나요?"},
        stream_mode=["messages-tuple", "values", "updates"],
    ):
        if part.event == "messages":
            message, meta = part.data
            if message.get("type", "").lower().startswith("ai"):
                streamed.append(message["content"])
        elif part.event == "values":
            finals.append(part.data)
        elif part.event == "updates":
            updates.append(part.data)
    final = finals[-1]
    assert final["route"] == "answer", final.get("route_reason")
    assert "".join(streamed) == final["answer"]
    assert "__overwrite__" not in json.dumps(updates)
    history = client.threads.get_history(thread["thread_id"])
    assert len(history) >= 4
    messages = history[0]["values"]["messages"]
    assert [m["type"] for m in messages] == ["human", "ai", "human", "ai"]


def test_messages_stream_carries_only_the_answer(
    server: dict, doc_ids: dict, chat_stub: tuple[str, list[dict]]
) -> None:
    """llm engine (the operator's stub server): no classify/grade JSON in the token stream."""
    requests = chat_stub[1]
    before = len(requests)
    client = _client(server)
    thread = client.threads.create()["thread_id"]
    pieces, nodes, final = [], [], {}
    for part in client.runs.stream(
        thread,
        "adaptsum",
        input={"request": "한글은 누가 만들었나요?", "documents": [doc_ids["ko"]]},
        context={"engine": "llm"},
        stream_mode=["messages-tuple", "values"],
    ):
        if part.event == "messages":
            message, meta = part.data
            if message.get("type", "").lower().startswith("ai"):
                pieces.append(message["content"])
                nodes.append(meta.get("langgraph_node"))
        elif part.event == "values":
            final = part.data
    assert final.get("route") == "answer", final
    assert len(requests) > before  # the llm engine really called the operator's server
    assert set(nodes) == {"answer"}, nodes
    assert "".join(pieces) == final["answer"]


def test_summary_streams_progress(server: dict, doc_ids: dict) -> None:
    client = _client(server)
    thread = client.threads.create()
    events = []
    for part in client.runs.stream(
        thread["thread_id"],
        "adaptsum",
        input={"request": "요약해 주세요", "documents": [doc_ids["ko"]], "mode": "summarize"},
        context={"stuff_budget": 100},  # force map-reduce: one progress event per chunk
        stream_mode=["custom", "values", "updates"],
    ):
        if part.event == "custom":
            events.append(part.data)
        elif part.event == "values":
            final = part.data
        elif part.event == "updates":
            assert "__overwrite__" not in json.dumps(part.data)
    stages = [e["stage"] for e in events if e.get("kind") == "summary"]
    assert stages[0] == "plan" and "map" in stages
    maps = [e for e in events if e.get("stage") == "map"]
    assert maps[-1]["done"] == maps[-1]["total"]
    assert final["route"] == "summarize" and "[p. " in final["answer"]


def test_a_summary_of_one_page_through_the_sdk(server: dict, doc_ids: dict) -> None:
    """`pages` in a summary request keeps map-reduce's input and citations to that page."""
    client = _client(server)
    thread = client.threads.create()
    done = client.runs.wait(
        thread["thread_id"],
        "adaptsum",
        input={
            "request": "Summarize this document",
            "documents": [doc_ids["en"]],
            "mode": "summarize",
            "strategy": "map_reduce",
            "pages": "2",
        },
    )
    assert not _error(done), done
    assert done["route"] == "summarize" and "pages 2 only" in done["route_reason"]
    assert done["citations"] and {c["page"] for c in done["citations"]} == {2}


def test_plan_approval_interrupt_is_resumed(server: dict, doc_ids: dict) -> None:
    client = _client(server)
    thread = client.threads.create()["thread_id"]
    ask = {"request": "요약해 주세요", "documents": [doc_ids["ko"]], "mode": "summarize"}
    client.runs.wait(thread, "adaptsum", input=ask, context={"approve_plan": True})
    state = client.threads.get_state(thread)
    (pause,) = state["interrupts"]
    assert pause["value"]["kind"] == "approve_plan" and pause["value"]["spent"] == 0
    assert state["next"] == ["plan_summary"]
    done = client.runs.wait(
        thread, "adaptsum", command={"resume": True}, context={"approve_plan": True}
    )
    assert done["route"] == "summarize" and "[p. " in done["answer"]
    # A paused-then-stopped turn ends with the plan and no summary.
    client.runs.wait(thread, "adaptsum", input=ask, context={"approve_plan": True})
    stopped = client.runs.wait(
        thread, "adaptsum", command={"resume": False}, context={"approve_plan": True}
    )
    assert stopped["answer"].startswith("stopped before summarizing")


def test_budget_interrupt_is_resumed_with_a_new_budget(server: dict, doc_ids: dict) -> None:
    client = _client(server)
    thread = client.threads.create()["thread_id"]
    tight = {"engine": "llm", "max_tokens": 200, "stuff_budget": 100}
    ask = {"request": "요약해 주세요", "documents": [doc_ids["ko"]], "mode": "summarize"}
    client.runs.wait(thread, "adaptsum", input=ask, context=tight)
    (pause,) = client.threads.get_state(thread)["interrupts"]
    value = pause["value"]
    assert value["kind"] == "budget" and value["max_tokens"] == 200
    assert value["estimated_tokens"] > 200 and value["spent"] == 0
    done = client.runs.wait(
        thread, "adaptsum", command={"resume": {"max_tokens": 10**6}}, context=tight
    )
    assert done["route"] == "summarize" and done["summary_plan"]["approved_max_tokens"] == 10**6
    assert done["usage"]["total_tokens"] > 200 and "[p. " in done["answer"]


def test_mid_run_budget_interrupt_is_resumed_through_the_sdk(
    server: dict, doc_ids: dict, chat_stub
) -> None:
    client = _client(server)
    thread = client.threads.create()["thread_id"]
    requests = chat_stub[1]
    maps = lambda: sum("You summarize one passage" in str(r["messages"]) for r in requests)  # noqa: E731
    before = maps()
    # no map cache: every map is a real call (earlier tests mapped the same chunks)
    tight = {"engine": "llm", "max_tokens": 900, "stuff_budget": 100, "map_cache": False}
    ask = {"request": "요약해 주세요", "documents": [doc_ids["ko"]], "mode": "summarize"}
    client.runs.wait(thread, "adaptsum", input=ask, context=tight)
    for _ in range(3):  # the plan's pause (estimate over budget) is answered with true
        state = client.threads.get_state(thread)
        (pause,) = state["interrupts"]
        if "step" in pause["value"]:
            break
        client.runs.wait(thread, "adaptsum", command={"resume": True}, context=tight)
    value = pause["value"]
    assert value["kind"] == "budget" and value["max_tokens"] == 900, value
    assert value["spent"] <= 900 and value["next_step_tokens"] > value["left"]
    assert value["suggested_max_tokens"] == value["spent"] + value["estimated_tokens"]
    mapped = maps() - before
    done = client.runs.wait(
        thread, "adaptsum", command={"resume": {"max_tokens": 10**6}}, context=tight
    )
    assert done["route"] == "summarize" and "[p. " in done["answer"], done
    assert maps() - before == done["summary_plan"]["chunks"] >= mapped  # none mapped twice
    # stopped instead: the turn ends, says so, and shows no summary
    client.runs.wait(thread, "adaptsum", input=ask, context=tight)
    for _ in range(3):
        (pause,) = client.threads.get_state(thread)["interrupts"]
        if "step" in pause["value"]:
            break
        client.runs.wait(thread, "adaptsum", command={"resume": True}, context=tight)
    stopped = client.runs.wait(thread, "adaptsum", command={"resume": False}, context=tight)
    assert stopped["route"] == "stopped" and stopped["answer"].startswith("stopped at the token")
    assert stopped["citations"] == []


def test_a_failed_turn_leaves_the_thread_as_it_was(server: dict, doc_ids: dict) -> None:
    client = _client(server)
    thread = client.threads.create()["thread_id"]
    client.runs.wait(
        thread,
        "adaptsum",
        input={"request": "한글은 누가 만들었나요?", "documents": [doc_ids["ko"]]},
    )
    failed = client.runs.wait(
        thread,
        "adaptsum",
        input={"request": "그건 언제?", "documents": ["https://nonexistent.invalid/x.pdf"]},
        raise_error=False,
    )
    assert "cannot resolve host" in _error(failed), failed
    messages = client.threads.get_state(thread)["values"]["messages"]
    assert [m["type"] for m in messages] == ["human", "ai"]


def test_two_threads_at_once_do_not_cross(server: dict, doc_ids: dict) -> None:
    client = _client(server)
    asks = [
        ("ko", "한글은 누가 만들었나요?", "세종"),
        ("en", "What is the James Webb Space Telescope?", "infrared"),
    ]

    def ask(item):
        key, question, _ = item
        thread = client.threads.create()
        return client.runs.wait(
            thread["thread_id"],
            "adaptsum",
            input={"request": question, "documents": [doc_ids[key]]},
        )

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(ask, asks))
    for (key, _, expected), result in zip(asks, results, strict=True):
        assert expected in result["answer"], result
        assert {c["doc_id"] for c in result["citations"]} == {doc_ids[key]}


def test_users_see_only_their_own_threads_and_documents(server: dict, doc_ids: dict) -> None:
    alice, bob = _client(server), _client(server, "bob")
    thread = alice.threads.create()
    from langgraph_sdk.errors import NotFoundError

    with pytest.raises(NotFoundError):
        bob.threads.get(thread["thread_id"])
    result = _run(
        bob, "adaptsum", input={"request": "한글은 누가 만들었나요?", "documents": [doc_ids["ko"]]}
    )
    assert "no indexed document" in _error(result) or "matches no" in _error(result), result


BAD_INPUTS = [
    ({"request": "x", "mode": "bogus"}, {}, "mode must be one of"),
    ({"request": "x", "documents": ["/etc/passwd"]}, {}, "not an http(s) URL, an upload"),
    ({"request": "x", "documents": []}, {}, "documents is empty"),
    ({"request": "  "}, {}, "request is empty"),
    ({"request": ["a"]}, {}, "request must be a string"),
    ({"request": "x", "documents": [{"path": "/etc/passwd"}]}, {}, "an upload is {'name'"),
    ({"request": "x", "documents": [{"name": "e.pdf", "data": ""}]}, {}, "e.pdf: empty file"),
    (
        {"request": "x", "documents": [{"name": "cut.pdf", "data": "{cut}"}]},
        {},
        "upload cut.pdf: ",
    ),
    ({"request": "x", "documents": [{"name": "a.pdf", "data": "@@@"}]}, {}, "not valid base64"),
    (
        {"request": "x", "documents": [{"name": "a.pdf", "data": "aGVsbG8="}]},
        {},
        "not a PDF",
    ),
    ({"request": "x", "documents": ["{files}/page.html"]}, {}, "not a PDF (served as text/html)"),
    ({"request": "x", "documents": ["{files}/missing.pdf"]}, {}, "HTTP 404"),
    ({"request": "x", "documents": ["ftp://example.org/x.pdf"]}, {}, "not an http(s) URL"),
    ({"request": "x", "documents": ["{ko}"]}, {"k": "five"}, "k must be an integer, got 'five'"),
    ({"request": "x", "documents": ["{ko}"]}, {"engine": "gpt"}, "engine must be one of"),
    ({"request": "x", "documents": ["{ko}"]}, {"data_dir": "/tmp/x"}, "data_dir is an operator"),
    ({"request": "x", "documents": ["{ko}"]}, {"chunk_size": 16}, "chunk_size is an operator"),
]


@pytest.mark.parametrize(("payload", "context", "message"), BAD_INPUTS)
def test_bad_input_gets_its_one_line_message(
    server: dict, files: str, doc_ids: dict, payload: dict, context: dict, message: str
) -> None:
    payload = json.loads(
        json.dumps(payload)
        .replace("{files}", files)
        .replace("{ko}", doc_ids["ko"])
        .replace("{cut}", _upload(EN_SAMPLE)["data"][:4000])
    )
    result = _run(_client(server), "adaptsum", input=payload, context=context)
    error = _error(result)
    assert message in error, result
    assert "\n" not in error and "Traceback" not in error
    assert "/users/" not in error and "/uploads/" not in error  # the server's disk is its own


def test_a_client_set_base_url_never_receives_the_operator_key(
    server: dict, files: str, doc_ids: dict
) -> None:
    _Files.key_hits = 0
    result = _run(
        _client(server),
        "adaptsum",
        input={"request": "한글은 누가 만들었나요?", "documents": [doc_ids["ko"]]},
        context={"engine": "llm", "chat_base_url": f"{files}/v1", "embeddings_base_url": files},
    )
    assert "is an operator setting" in _error(result), result
    assert _Files.key_hits == 0


def test_the_blocking_call_detector_stayed_quiet(server: dict) -> None:
    log = server["log"].read_text()
    assert "Blocking call" not in log and "BlockingError" not in log, log[-3000:]
