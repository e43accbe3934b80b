"""The request log: every gateway request written once, never in the request path.

A request appends a :class:`LogEntry` to an in-memory queue (a lock-free
``deque.append``) and returns. A background thread takes up to
:data:`BATCH_SIZE` entries at a time, every :data:`FLUSH_INTERVAL_S` seconds or
sooner when the queue fills, and writes them in one transaction: the
:class:`~studio.store.tables.RequestLog` rows, a
:class:`~studio.store.tables.ModelCall` row per model call the gateway made
itself (so the registry's usage statistics include gateway traffic), and the
keys' ``last_used_at`` (at most once a minute per key).

A failed batch is put back at the head of the queue and retried; the unique
``request_id`` keeps a retry from writing a row twice. :meth:`RequestLogger.stop`
(called from the app's lifespan on a clean shutdown, and at interpreter exit)
drains the queue before it returns.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import col, select

from studio.core.settings import get_settings
from studio.models.usage import usage_values
from studio.services.api_keys import due_last_used, write_last_used
from studio.services.monitoring import add_to_rollup, epoch_minute, latency_bin
from studio.store import session_scope
from studio.store.tables import ModelCall, RequestLog, utcnow

__all__ = ["BATCH_SIZE", "FLUSH_INTERVAL_S", "LogEntry", "RequestLogger", "body_for_log"]

log = logging.getLogger(__name__)

BATCH_SIZE = 500
LOG_TABLE = RequestLog.__table__  # type: ignore[attr-defined]
USAGE_TABLE = ModelCall.__table__  # type: ignore[attr-defined]
FLUSH_INTERVAL_S = 0.2
MAX_ATTEMPTS = 20


@dataclass
class LogEntry:
    """What one request leaves in the log (never the API key, only its id)."""

    request_id: str
    route: str
    status_code: int
    latency_ms: float
    created_at: datetime = field(default_factory=utcnow)
    endpoint_id: int | None = None
    app_id: int | None = None
    model: str | None = None
    model_type: str | None = None
    deployment_id: str | None = None
    api_key_id: int | None = None
    model_latency_ms: float | None = None
    overhead_ms: float | None = None
    prompt_tokens: int | None = None
    response_tokens: int | None = None
    cost: float | None = None
    error: str | None = None
    request_body: str | None = None
    response_body: str | None = None
    record_usage: bool = False
    attempts: int = 0

    @property
    def calls_model(self) -> bool:
        """The model was called: answered, or failed at the provider (5xx), not refused by
        the gateway's own checks (4xx)."""
        return self.record_usage and bool(self.model) and not 400 <= self.status_code < 500

    def row(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "route": self.route,
            "status_code": self.status_code,
            "latency_ms": self.latency_ms,
            "created_at": self.created_at,
            "endpoint_id": self.endpoint_id,
            "app_id": self.app_id,
            "model": self.model,
            "api_key_id": self.api_key_id,
            "model_latency_ms": self.model_latency_ms,
            "overhead_ms": self.overhead_ms,
            "prompt_tokens": self.prompt_tokens,
            "response_tokens": self.response_tokens,
            "cost": self.cost,
            "error": self.error,
            "request_body": self.request_body,
            "response_body": self.response_body,
            "minute": epoch_minute(self.created_at),
            "latency_bin": latency_bin(self.latency_ms),
        }

    def usage_row(self) -> dict[str, Any]:
        return usage_values(
            deployment_id=self.deployment_id,
            model_name=self.model or "",
            model_type=self.model_type or "",
            source="gateway",
            created_at=self.created_at,
            latency_ms=self.model_latency_ms or 0.0,
            prompt_tokens=self.prompt_tokens or 0,
            response_tokens=self.response_tokens or 0,
            cost=self.cost or 0.0,
            error=self.error,
        )


def body_for_log(raw: bytes | str | None) -> str | None:
    """A body as the settings say to keep it: whole, truncated, or redacted."""
    if raw is None:
        return None
    settings = get_settings()
    if settings.gateway_log_bodies == "redact":
        return "[redacted]"
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    limit = settings.gateway_log_body_chars
    if settings.gateway_log_bodies == "truncate" and len(text) > limit:
        return text[:limit] + f"… [truncated, {len(text)} characters]"
    return text


class RequestLogger:
    """The queue and its background writer (one per gateway process)."""

    def __init__(self, *, interval_s: float = FLUSH_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._queue: deque[LogEntry] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._flush_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.written = 0

    def log(self, entry: LogEntry) -> None:
        self._queue.append(entry)
        if len(self._queue) >= BATCH_SIZE:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="studio-request-log", daemon=True)
        self._thread.start()
        atexit.register(self.stop)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the writer after draining the queue (bounded by ``timeout_s``)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        deadline = time.monotonic() + timeout_s
        while self._queue and time.monotonic() < deadline:
            if not self.flush():
                time.sleep(0.05)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            while self._queue and not self._stop.is_set():
                if not self.flush():
                    break
        while self._queue:
            if not self.flush():
                time.sleep(0.05)
                if all(e.attempts >= MAX_ATTEMPTS for e in list(self._queue)[:1]):
                    break

    def flush(self) -> bool:
        """Write one batch; False when the database refused it (it stays queued)."""
        with self._flush_lock:
            batch: list[LogEntry] = []
            while self._queue and len(batch) < BATCH_SIZE:
                batch.append(self._queue.popleft())
            due = due_last_used(force=self._stop.is_set())
            if not batch and not due:
                return True
            try:
                self._write(batch, due)
            except SQLAlchemyError as exc:
                self._requeue(batch, exc)
                return False
            self.written += len(batch)
            return True

    @staticmethod
    def _write(batch: list[LogEntry], due: dict[int, datetime]) -> None:
        # Core inserts (not the ORM's bulk path): the writer shares the GIL with the
        # event loop, so the less Python it runs per row the better.
        with session_scope() as session:
            conn = session.connection()
            if batch:
                rows = [e.row() for e in batch]
                try:
                    with conn.begin_nested():
                        conn.execute(insert(LOG_TABLE), rows)
                except IntegrityError:
                    # A retried batch that was in fact written: keep only the new rows.
                    ids = [r["request_id"] for r in rows]
                    seen = set(
                        conn.execute(
                            select(col(RequestLog.request_id)).where(
                                col(RequestLog.request_id).in_(ids)
                            )
                        ).scalars()
                    )
                    kept = [i for i, e in enumerate(batch) if e.request_id not in seen]
                    batch, rows = [batch[i] for i in kept], [rows[i] for i in kept]
                    if rows:
                        conn.execute(insert(LOG_TABLE), rows)
                # Same transaction, same rows: the rollup counts each request once.
                add_to_rollup(session=session, rows=rows)
                usage = [e.usage_row() for e in batch if e.calls_model]
                if usage:
                    conn.execute(insert(USAGE_TABLE), usage)
            if due:
                write_last_used(session=session, due=due)

    def _requeue(self, batch: list[LogEntry], exc: Exception) -> None:
        kept = []
        for entry in batch:
            entry.attempts += 1
            if entry.attempts < MAX_ATTEMPTS:
                kept.append(entry)
        dropped = len(batch) - len(kept)
        log.warning(
            "request log: writing %d entries failed (%s); will retry%s",
            len(batch),
            type(exc).__name__,
            f", {dropped} dropped after {MAX_ATTEMPTS} attempts" if dropped else "",
        )
        self._queue.extendleft(reversed(kept))
