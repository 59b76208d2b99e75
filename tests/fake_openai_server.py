"""A real HTTP server on 127.0.0.1 that speaks OpenAI chat completions and replays a script.

Each request to ``POST /v1/chat/completions`` takes the next step of the script: a good or
malformed answer, a slow one, an HTTP error (429, 500...) or a refusal of structured output.
The server records every request body, so tests can assert what the client sent.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Step:
    """One scripted reply: ``content`` with status 200, or an error ``status``; after ``delay``."""

    content: str = ""
    status: int = 200
    delay: float = 0.0
    retry_after: str | None = None
    reject_response_format: str | None = None  # answer 400 if the request uses this format type


@dataclass
class FakeOpenAI:
    """The scripted server; use as a context manager to start and stop it."""

    script: list[Step] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> FakeOpenAI:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                owner.requests.append(body)
                owner.paths.append(self.path)
                step = owner.script.pop(0) if owner.script else Step(status=500, content="script exhausted")
                fmt = (body.get("response_format") or {}).get("type")
                if step.reject_response_format and fmt == step.reject_response_format:
                    owner.script.insert(0, Step(content=step.content))  # the retry gets the answer
                    self._send(400, {"error": {"message": f"response_format {fmt} is not supported",
                                               "type": "invalid_request_error"}})  # fmt: skip
                    return
                if step.delay:
                    time.sleep(step.delay)
                if step.status != 200:
                    headers = {"retry-after": step.retry_after} if step.retry_after else {}
                    self._send(step.status, {"error": {"message": step.content or "scripted failure",
                                                       "type": "server_error"}}, headers)  # fmt: skip
                    return
                self._send(200, {
                    "id": f"chatcmpl-{len(owner.requests)}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "fake"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": step.content}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                })  # fmt: skip

            def _send(
                self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
