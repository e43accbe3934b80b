"""A fake OpenAI fine-tuning server and the datasets the fine-tuning tests learn from."""

from __future__ import annotations

import csv
import io
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlmodel import Session

from studio.models.connections import ConnectionCreate, add_connection
from studio.services.apps import create_app
from studio.services.datasets import upload_dataset

PRODUCTS = [
    ("ZX-101", "Harbor lamp"),
    ("ZX-102", "Quiet kettle"),
    ("ZX-103", "Folding desk"),
    ("ZX-104", "Trail bottle"),
    ("ZX-105", "Cedar shelf"),
    ("ZX-106", "Pocket radio"),
    ("ZX-107", "Linen throw"),
    ("ZX-108", "Copper pan"),
]


def csv_bytes(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def product_rows() -> list[dict[str, str]]:
    return [{"question": f"What is product {c}?", "answer": n} for c, n in PRODUCTS]


def make_dataset(session: Session, rows: list[dict[str, str]] | None = None) -> tuple[int, int]:
    """An app with a dataset of product codes; (app id, dataset version id)."""
    app = create_app(session=session, name="Catalogue helper")
    assert app.id is not None
    version = upload_dataset(
        session=session,
        app_id=app.id,
        name="products",
        data=csv_bytes(rows or product_rows()),
        filename="products.csv",
    )
    session.commit()
    assert version.id is not None
    return app.id, version.id


def chat_answer(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "chat-1",
        "object": "chat.completion",
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
    }


class FineTuningServer:
    """The fine-tuning routes of an OpenAI-compatible server, on a random local port.

    ``outcome`` is ``succeeded`` or ``failed``; the job moves queued → running (with
    metrics events) → the outcome over ``polls`` polls. ``rate_limit_first_poll`` answers
    the first status poll with 429 and Retry-After: 1.
    """

    def __init__(
        self, *, outcome: str = "succeeded", polls: int = 3, rate_limit_first_poll: bool = False
    ) -> None:
        self.outcome, self.polls = outcome, polls
        self.rate_limit = rate_limit_first_poll
        self.files: dict[str, bytes] = {}
        self.created: list[dict[str, Any]] = []
        self.log: list[tuple[float, str, str, int]] = []  # (time, method, path, status)
        self.status = "queued"
        self.polled = 0
        self.cancelled = False
        self._events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> FineTuningServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def connect(self, session: Session, name: str = "acme") -> None:
        data = ConnectionCreate(name=name, kind="openai", base_url=self.url)
        add_connection(session=session, data=data)
        session.commit()

    def _event(self, message: str, **extra: Any) -> None:
        n = len(self._events) + 1
        self._events.append(
            {"id": f"ftevent-{n}", "created_at": n, "level": "info", "message": message, **extra}
        )

    def _job(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": "ftjob-1",
            "object": "fine_tuning.job",
            "model": self.created[0]["model"] if self.created else None,
            "status": self.status,
            "fine_tuned_model": None,
            "error": None,
        }
        if self.status == "succeeded":
            body["fine_tuned_model"] = "ft:base-mini:studio::abc123"
        if self.status == "failed":
            body["error"] = {"code": "invalid_file", "message": "Row 3 has too many tokens."}
        return body

    def _advance(self) -> None:
        if self.status in ("succeeded", "failed", "cancelled"):
            return
        self.polled += 1
        if self.polled < self.polls:
            self.status = "running"
            step = self.polled
            self._event(
                f"Step {step}/{self.polls}",
                type="metrics",
                data={
                    "step": step,
                    "total_steps": self.polls,
                    "train_loss": 2.0 / step,
                    "valid_loss": 2.2 / step,
                },
            )
        else:
            self.status = self.outcome
            self._event(f"The job {self.outcome}.", type="message")

    def _answer(self, method: str, path: str, body: bytes) -> tuple[int, Any, dict[str, str]]:
        if method == "POST" and path == "/v1/files":
            name = re.search(rb'filename="([^"]+)"', body)
            file_id = f"file-{len(self.files) + 1}"
            part = body[name.end() :] if name else b""
            content = part.split(b"\r\n\r\n", 1)[-1]
            self.files[file_id] = content[: content.rfind(b"\r\n--")]
            filename = name.group(1).decode() if name else ""
            return 200, {"id": file_id, "object": "file", "filename": filename}, {}
        if method == "POST" and path == "/v1/fine_tuning/jobs":
            self.created.append(json.loads(body))
            self._event("Created fine-tuning job.", type="message")
            return 200, self._job(), {}
        if method == "GET" and path == "/v1/fine_tuning/jobs/ftjob-1":
            if self.rate_limit:
                self.rate_limit = False
                return 429, {"error": {"message": "Slow down."}}, {"Retry-After": "1"}
            self._advance()
            return 200, self._job(), {}
        if method == "GET" and path.startswith("/v1/fine_tuning/jobs/ftjob-1/events"):
            return 200, {"object": "list", "data": list(reversed(self._events))}, {}
        if method == "POST" and path == "/v1/fine_tuning/jobs/ftjob-1/cancel":
            self.cancelled, self.status = True, "cancelled"
            return 200, self._job(), {}
        if method == "POST" and path == "/v1/chat/completions":
            asked = json.loads(body)
            model, question = asked.get("model", ""), asked["messages"][-1]["content"]
            # the fine-tuned model learned the catalogue; the base does not know it
            names = [n for c, n in PRODUCTS if c in question] or ["Harbor lamp"]
            text = names[0] if model.startswith("ft:") else "I do not know that product."
            return 200, chat_answer(model, text), {}
        return 404, {"error": {"message": f"no route {method} {path}"}}, {}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                size = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(size) if size else b""
                with server._lock:
                    status, answer, headers = server._answer(self.command, self.path, body)
                    server.log.append((time.monotonic(), self.command, self.path, status))
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = _serve
            do_POST = _serve

        return Handler
