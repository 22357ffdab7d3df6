"""An OpenAI-compatible chat completions server on loopback (plain http.server in a thread): it records every
request and answers `POST /v1/chat/completions` as the API does — or refuses (`status`), or accepts and never
answers (`hang`), for the fallback tests. Its answer quotes the facts' first line, so a test can tell which
insight it explains."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_KEY = "sk-loopbackKEY0123456789abcdef"  # what the tests set as OPENAI_API_KEY: never in a prompt
ANSWER = "In plain words: the loopback model read the facts of {what} and explains them here."


@dataclass
class ChatRequest:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def facts(self) -> dict[str, Any]:
        user = self.json()["messages"][-1]["content"]
        return dict(json.loads(user.split("Facts (JSON):\n", 1)[1]))


@dataclass
class ChatServer:
    port: int = 0
    requests: list[ChatRequest] = field(default_factory=list)
    status: int = 200  # answer with this status (200: a completion)
    message: str = "the loopback server refuses"  # the error message of a refusal
    hang: bool = False  # accept and never answer (until the server stops)
    release: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def record(self, request: ChatRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def wait_for(self, n: int, timeout: float = 10.0) -> list[ChatRequest]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.requests)


def expected_text(facts: dict[str, Any]) -> str:
    """What the server answers for an insight with these facts."""
    what = f"run {facts['run_id']}" if "run_id" in facts else f"check {facts['check_id']}"
    return ANSWER.format(what=what)


def completion(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-loopback",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


@contextmanager
def chat_server(**kwargs: Any) -> Iterator[ChatServer]:
    server_state = ChatServer(**kwargs)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = ChatRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
            server_state.record(request)
            if server_state.hang:
                server_state.release.wait(120)
                return
            if self.path != "/v1/chat/completions":
                return self._send(404, {"error": {"message": f"no route {self.path}"}})
            if server_state.status != 200:
                return self._send(server_state.status, {"error": {"message": server_state.message}})
            body = request.json()
            self._send(200, completion(body["model"], expected_text(request.facts())))

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server_state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        server_state.release.set()
        server.shutdown()
        server.server_close()
