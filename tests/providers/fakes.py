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
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
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


# -- a misbehaving OpenAI-compatible server ------------------------------------------

FAULTS = ("rate_limit", "server_error", "unavailable", "slow", "drop", "malformed")
"""Every fault :class:`FaultyOpenAIServer` can inject."""


def answer_for(prompt: str) -> str:
    """The reply :class:`FaultyOpenAIServer` gives to ``prompt`` (tests check rows by it)."""
    return f"answer to: {prompt}"


class _QuietThreadingServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the default backlog of 5 drops connects at concurrency 32+


class FaultyOpenAIServer:
    """An OpenAI-compatible server on 127.0.0.1 that fails a chosen share of calls.

    It serves ``/v1/chat/completions``, ``/v1/completions`` and ``/v1/models``.
    Each call first waits ``latency_s``; then, with probability ``fault_rate``
    (drawn from ``random.Random(seed)``), it injects one of ``faults``, picked
    uniformly:

    * ``rate_limit``: 429 with ``Retry-After: <retry_after>``
    * ``server_error`` / ``unavailable``: 500 / 503 with an OpenAI error body
    * ``slow``: waits ``slow_s`` (set it above the client's timeout), then answers
    * ``drop``: closes the connection without a byte of answer
    * ``malformed``: 200 with a truncated JSON body

    Otherwise it answers ``answer_for(prompt)`` (the last user message) with
    usage counting words. Prompts for which ``always_fail`` is true get 503
    on every call (a permanently failing provider). ``asked`` counts calls per prompt, ``answered``
    successful answers per prompt, ``injected`` the faults by kind.
    ``in_flight`` is the number of calls being served right now and
    ``peak_in_flight`` the most there ever were at once (concurrency tests).
    """

    def __init__(
        self,
        *,
        fault_rate: float = 0.0,
        faults: Iterable[str] = FAULTS,
        latency_s: float = 0.0,
        slow_s: float = 1.0,
        retry_after: str = "0",
        seed: int = 0,
        models: Iterable[str] = ("fake-chat", "fake-mini"),
        always_fail: Callable[[str], bool] | None = None,
    ) -> None:
        self.faults = tuple(faults)
        unknown = set(self.faults) - set(FAULTS)
        if unknown or not self.faults:
            raise ValueError(f"unknown faults {sorted(unknown)}; choose from {FAULTS}")
        if not 0.0 <= fault_rate <= 1.0:
            raise ValueError("fault_rate must be within [0, 1]")
        self.fault_rate = fault_rate
        self.latency_s = latency_s
        self.slow_s = slow_s
        self.retry_after = retry_after
        self.models = tuple(models)
        self.always_fail = always_fail
        self.asked: Counter[str] = Counter()
        self.answered: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self.calls = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._httpd = _QuietThreadingServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The base URL to give an ``openai`` connection (ends in ``/v1``)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> FaultyOpenAIServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def reset_counts(self) -> None:
        with self._lock:
            self.asked.clear()
            self.answered.clear()
            self.injected.clear()
            self.calls = 0
            self.peak_in_flight = self.in_flight

    def _decide(self, prompt: str | None) -> str | None:
        """Count the call and pick its fault (``None``: answer properly)."""
        with self._lock:
            self.calls += 1
            if prompt is not None:
                self.asked[prompt] += 1
            fault = None
            if prompt is not None and self.always_fail is not None and self.always_fail(prompt):
                fault = "unavailable"
            elif self.fault_rate and self._rng.random() < self.fault_rate:
                fault = self._rng.choice(self.faults)
                self.injected[fault] += 1
            return fault

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _answered(self, prompt: str) -> None:
        with self._lock:
            self.answered[prompt] += 1

    def _answer(self, path: str, body: Any) -> tuple[str | None, dict[str, Any]]:
        """The prompt this call asks and the body of a correct answer."""
        if path.endswith("/models"):
            return None, {"object": "list", "data": [{"id": m} for m in self.models]}
        if not isinstance(body, dict):
            return None, {"error": {"message": "the body must be a JSON object"}}
        model = body.get("model", "fake-chat")
        if path.endswith("/chat/completions"):
            messages = body.get("messages") or [{}]
            prompt = str(messages[-1].get("content", ""))
            return prompt, {
                **chat_body(answer_for(prompt), usage=_usage(prompt)),
                "model": model,
            }
        prompt = str(body.get("prompt", ""))
        return prompt, {
            "id": "cmpl-1",
            "object": "text_completion",
            "model": model,
            "choices": [{"index": 0, "text": answer_for(prompt), "finish_reason": "stop"}],
            "usage": _usage(prompt),
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like real servers
            # Headers and body go out in two writes; without TCP_NODELAY the body waits
            # for the client's delayed ACK (~40 ms), which no real server makes you pay.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _send(
                self, status: int, data: bytes, headers: dict[str, str] | None = None
            ) -> None:
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up waiting
                    self.close_connection = True

            def _serve(self) -> None:
                server._enter()
                try:
                    self._serve_counted()
                finally:
                    server._leave()

            def _serve_counted(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                path = self.path.split("?", 1)[0]
                known = path.endswith(("/chat/completions", "/completions", "/models"))
                if not known:
                    self._send(404, json.dumps({"error": {"message": "not found"}}).encode())
                    return
                prompt, answer = server._answer(path, body)
                fault = server._decide(prompt)
                if server.latency_s:
                    time.sleep(server.latency_s)
                if fault == "drop":  # close the socket without a single byte of answer
                    self.close_connection = True
                    return
                if fault == "rate_limit":
                    error = {"error": {"message": "Rate limit reached", "type": "requests"}}
                    headers = {"retry-after": server.retry_after}
                    self._send(429, json.dumps(error).encode(), headers)
                    return
                if fault in ("server_error", "unavailable"):
                    status = 500 if fault == "server_error" else 503
                    error = {"error": {"message": f"injected HTTP {status}", "type": "server"}}
                    self._send(status, json.dumps(error).encode())
                    return
                if fault == "malformed":
                    self._send(200, json.dumps(answer).encode()[:25])
                    return
                if fault == "slow":
                    time.sleep(server.slow_s)
                self._send(200, json.dumps(answer).encode())
                if prompt is not None and fault is None:
                    server._answered(prompt)

            do_GET = _serve
            do_POST = _serve

        return _Handler


def _usage(prompt: str) -> dict[str, int]:
    words = len(prompt.split())
    return {"prompt_tokens": words, "completion_tokens": words + 2, "total_tokens": 2 * words + 2}
