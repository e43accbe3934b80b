"""A real OpenAI-compatible server on 127.0.0.1 that streams its answers in steps.

:class:`StreamingUpstream` answers ``POST /v1/chat/completions`` and ``/v1/completions``
with ``stream: true`` as server-sent events: the first token at once, then it waits
on :attr:`StreamingUpstream.gate` (a :class:`threading.Event` a test sets once it has
seen that token arrive) before it sends the rest, the finish chunk, the usage chunk
and ``[DONE]``. ``fail_after_first`` sends an error event instead of the rest;
``endless`` keeps sending tokens until the client goes away, which sets
:attr:`StreamingUpstream.disconnected`.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FIRST, REST = "Hel", ["lo", " there"]
USAGE = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class StreamingUpstream:
    def __init__(self, *, fail_after_first: bool = False, endless: bool = False) -> None:
        self.fail_after_first = fail_after_first
        self.endless = endless
        self.gate = threading.Event()
        self.disconnected = threading.Event()
        self.finished = threading.Event()
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> StreamingUpstream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.gate.set()
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                upstream.bodies.append(body)
                upstream.headers.append(dict(self.headers.items()))
                chat = self.path.endswith("/chat/completions")
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                self.end_headers()
                try:
                    upstream._answer(self, chat)
                except (BrokenPipeError, ConnectionResetError):
                    upstream.disconnected.set()
                self.close_connection = True

        return Handler

    def _send(self, handler: BaseHTTPRequestHandler, data: Any) -> None:
        text = data if isinstance(data, str) else json.dumps(data)
        handler.wfile.write(f"data: {text}\n\n".encode())
        handler.wfile.flush()

    def _chunk(self, chat: bool, text: str | None, finish: str | None = None) -> dict[str, Any]:
        if chat:
            delta = {} if text is None else {"content": text}
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": text or "", "finish_reason": finish}
        return {"id": "up-1", "object": "chunk", "choices": [choice]}

    def _answer(self, handler: BaseHTTPRequestHandler, chat: bool) -> None:
        self._send(handler, self._chunk(chat, FIRST))
        if self.endless:
            for _ in range(100_000):
                time.sleep(0.01)
                self._send(handler, self._chunk(chat, " more"))
            return
        self.gate.wait(30)
        if self.fail_after_first:
            self._send(handler, {"error": {"message": "the GPU fell over", "type": "server"}})
            return
        for text in REST:
            self._send(handler, self._chunk(chat, text))
        self._send(handler, self._chunk(chat, None, "stop"))
        self._send(handler, {"id": "up-1", "choices": [], "usage": USAGE})
        self._send(handler, "[DONE]")
        self.finished.set()
