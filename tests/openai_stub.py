"""A local HTTP server speaking OpenAI's chat-completions protocol, replies scripted.

It lets the tests drive the real `ChatOpenAI` client (base URL, JSON-schema
structured output, streaming, usage) with no network and no key, the way a vLLM,
Ollama or llama.cpp server would be used.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fakes import Script, ScriptedChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

_ROLES = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}


@contextmanager
def openai_stub(
    script: Script, delay: float | Callable[[int], float] = 0.0
) -> Iterator[tuple[str, ScriptedChatModel, list[dict]]]:
    """Serve `script` on a loopback port; yields the base URL, the brain, and raw requests.

    `delay` seconds pass before each reply, like a real server's latency; a function
    gets the request's number (from 0) and gives its delay (e.g. one slow request).
    """
    brain = ScriptedChatModel(script=script)
    requests: list[dict] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                number = len(requests)
                requests.append(body)
            time.sleep(delay(number) if callable(delay) else delay)
            messages = [_ROLES[m["role"]](m["content"]) for m in body["messages"]]
            cap = body.get("max_completion_tokens") or body.get("max_tokens")
            reply = brain.invoke(messages, max_tokens=cap)
            text = str(reply.content)
            usage = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
            if script.fill_cap:  # the brain reports prompt + cap: bill that
                used = reply.usage_metadata or {}
                usage = {
                    "prompt_tokens": used.get("input_tokens", 0),
                    "completion_tokens": used.get("output_tokens", 0),
                    "total_tokens": used.get("total_tokens", 0),
                }
            base = {"id": "cmpl-1", "created": int(time.time()), "model": body["model"]}
            if body.get("stream"):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for piece in [text[i : i + 8] for i in range(0, len(text), 8)]:
                    chunk = {
                        **base,
                        "object": "chat.completion.chunk",
                        "choices": [
                            {"index": 0, "delta": {"content": piece}, "finish_reason": None}
                        ],
                    }
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                final = {
                    **base,
                    "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                    "usage": usage,
                }
                self.wfile.write(f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode())
                return
            payload = {
                **base,
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            }
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1", brain, requests
    finally:
        server.shutdown()
        server.server_close()
