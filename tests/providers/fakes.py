"""Fakes for provider tests.

:class:`FakeAPI` fakes HTTP at the transport (``httpx.MockTransport``): it
answers from a script and records every request. :class:`FakeServer` is a real
HTTP server on 127.0.0.1 for faults a mock transport cannot produce honestly:
slow answers that hit the client's timeout and connections closed without an
answer.
"""

from __future__ import annotations

import inspect
import json
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

Handler = Callable[[httpx.Request], "httpx.Response | Awaitable[httpx.Response]"]
Reply = httpx.Response | Exception | Handler


def reply(
    body: Any = None, status: int = 200, headers: dict[str, str] | None = None
) -> httpx.Response:
    """A JSON response (``body`` of ``None`` means an empty JSON object)."""
    return httpx.Response(status, json={} if body is None else body, headers=headers)


def raw_reply(content: bytes, status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=content, headers={"content-type": "application/json"})


class FakeAPI:
    """A scripted server behind ``httpx.MockTransport``.

    Replies are used in order; when they run out, ``default`` answers (a
    handler, called per request), and without one the test fails loudly.
    """

    def __init__(self, *replies: Reply, default: Handler | None = None) -> None:
        self.replies: deque[Reply] = deque(replies)
        self.default = default
        self.requests: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self._handle)

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.replies:
            scripted = self.replies.popleft()
        elif self.default is not None:
            scripted = self.default
        else:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        if isinstance(scripted, Exception):
            raise scripted
        if isinstance(scripted, httpx.Response):
            return scripted
        answer = scripted(request)
        return await answer if inspect.isawaitable(answer) else answer

    @property
    def calls(self) -> int:
        return len(self.requests)

    @property
    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]

    def json(self, i: int = -1) -> Any:
        """The JSON body of request ``i`` (default: the last one)."""
        return json.loads(self.requests[i].content)


@dataclass
class Step:
    """One scripted answer of :class:`FakeServer`."""

    body: Any = None
    status: int = 200
    delay_s: float = 0.0
    drop: bool = False
    headers: dict[str, str] = field(default_factory=dict)


class FakeServer:
    """A real HTTP server on a random local port that follows a script of steps."""

    def __init__(self) -> None:
        self.steps: deque[Step] = deque()
        self.received: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def then(self, *steps: Step) -> FakeServer:
        self.steps.extend(steps)
        return self

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _next(self, path: str, body: Any) -> Step:
        with self._lock:
            self.received.append((path, body))
            if self.steps:
                return self.steps.popleft()
        return Step(status=500, body={"error": {"message": "the fake server ran out of steps"}})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                step = server._next(self.path, json.loads(raw) if raw else None)
                if step.delay_s:
                    time.sleep(step.delay_s)
                if step.drop:  # close the socket without a single byte of answer
                    self.close_connection = True
                    return
                data = json.dumps(step.body if step.body is not None else {}).encode()
                try:
                    self.send_response(step.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for key, value in step.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up waiting
                    pass

            do_GET = _serve
            do_POST = _serve

        return _Handler


def chat_body(
    content: str | None = "hello",
    *,
    finish_reason: str = "stop",
    tool_calls: list[dict[str, Any]] | None = None,
    usage: dict[str, int] | None = None,
) -> dict[str, Any]:
    """An OpenAI chat completion body."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": usage or {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
    }
