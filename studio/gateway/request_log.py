"""The request log: every gateway request written once, never in the request path.

A request appends a :class:`LogEntry` to an in-memory queue (a lock-free
``deque.append``) and returns. A background thread takes up to
:data:`BATCH_SIZE` entries at a time, every :data:`FLUSH_INTERVAL_S` seconds or
sooner when the queue fills, and writes them in one transaction: the
:class:`~studio.store.tables.RequestLog` rows, a
:class:`~studio.store.tables.ModelCall` row per model call the gateway made
itself (so the registry's usage statistics include gateway traffic), and the
keys' ``last_used_at`` (at most once a minute per key).

Every text field is cleaned on the way to the database (NUL characters, which
PostgreSQL refuses, and invalid surrogates are replaced; lengths are capped), so
a hostile path or body cannot make a row unwritable. Should a batch still fail,
its entries are written one by one: one bad entry is *quarantined* (counted, and
logged as a warning with its request id, never its bodies) instead of taking the
other entries down with it. When the database itself is away, the batch is put
back at the head of the queue and retried; the unique ``request_id`` keeps a
retry from writing a row twice. The queue is bounded (:data:`MAX_PENDING`): when
it is full a request is still served but not logged, and counted in
:attr:`RequestLogger.refused`; :func:`log_stats` gives the counters of the
loggers running in this process (the Monitoring page warns when they are not
zero, and ``/readyz`` reports them). :meth:`RequestLogger.stop`
(called from the app's lifespan on a clean shutdown, and at interpreter exit)
drains the queue before it returns.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlmodel import col, select

from studio.core.settings import get_settings
from studio.models.usage import usage_values
from studio.services.api_keys import due_last_used, write_last_used
from studio.services.monitoring import add_to_rollup, epoch_minute, latency_bin
from studio.store import session_scope
from studio.store.tables import ModelCall, RequestLog, utcnow

__all__ = [
    "BATCH_SIZE",
    "FLUSH_INTERVAL_S",
    "MAX_PENDING",
    "LogEntry",
    "LogStats",
    "ModelCallNote",
    "RequestLogger",
    "body_for_log",
    "clean_text",
    "log_stats",
]

log = logging.getLogger(__name__)

BATCH_SIZE = 500
LOG_TABLE = RequestLog.__table__  # type: ignore[attr-defined]
USAGE_TABLE = ModelCall.__table__  # type: ignore[attr-defined]
FLUSH_INTERVAL_S = 0.2
MAX_ATTEMPTS = 20
MAX_PENDING = 50_000  # entries waiting to be written; beyond, requests are served unlogged
# Longest text kept per field (characters); longer values are cut with a note.
TEXT_LIMITS = {
    "request_id": 64,
    "route": 2048,
    "model": 256,
    "model_name": 256,
    "model_type": 64,
    "deployment_id": 128,
    "error": 8192,
    "request_body": 1_000_000,
    "response_body": 1_000_000,
}
# The database is away (not this entry's fault): keep the entries queued and retry.
DATABASE_AWAY = (OperationalError, InterfaceError, PoolTimeoutError)


def clean_text(value: str | None, limit: int) -> str | None:
    """``value`` as any database stores it: NUL characters (PostgreSQL refuses them) and
    invalid surrogates replaced by U+FFFD, cut to ``limit`` characters."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if not text.isascii():
        text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    text = text.replace("\x00", "\ufffd")
    if len(text) > limit:
        text = text[:limit] + f"… [cut, {len(text)} characters]"
    return text


def _clean_row(row: dict[str, Any]) -> dict[str, Any]:
    for name, limit in TEXT_LIMITS.items():
        if isinstance(row.get(name), str):
            row[name] = clean_text(row[name], limit)
    return row


def _clean_retrieval(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """The retrieval note with its texts cleaned like every other text field."""
    if not value:
        return None
    chunks = [
        {
            "id": c.get("id"),
            "document": clean_text(str(c.get("document", "")), 1024),
            "score": c.get("score"),
        }
        for c in list(value.get("chunks") or [])[:100]
    ]
    return {"query": clean_text(str(value.get("query", "")), 8192), "chunks": chunks}


@dataclass(frozen=True)
class ModelCallNote:
    """One model call of a request that makes several (``generate-batch``: one per row)."""

    latency_ms: float
    prompt_tokens: int = 0
    response_tokens: int = 0
    cost: float = 0.0
    error: str | None = None


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
    calls: tuple[ModelCallNote, ...] = ()  # when set, one usage row each (not one in all)
    retrieval: dict[str, Any] | None = None  # {query, chunks: [{id, document, score}]}
    attempts: int = 0

    @property
    def calls_model(self) -> bool:
        """The model was called: answered, or failed at the provider (5xx), not refused by
        the gateway's own checks (4xx)."""
        return self.record_usage and bool(self.model) and not 400 <= self.status_code < 500

    def row(self) -> dict[str, Any]:
        return _clean_row(
            {
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
                "retrieval": _clean_retrieval(self.retrieval),
                "minute": epoch_minute(self.created_at),
                "latency_bin": latency_bin(self.latency_ms),
            }
        )

    def usage_rows(self) -> list[dict[str, Any]]:
        """The :class:`~studio.store.tables.ModelCall` rows of this request's model calls."""
        if self.calls:
            return [self._usage(c) for c in self.calls]
        if not self.calls_model:
            return []
        return [
            self._usage(
                ModelCallNote(
                    latency_ms=self.model_latency_ms or 0.0,
                    prompt_tokens=self.prompt_tokens or 0,
                    response_tokens=self.response_tokens or 0,
                    cost=self.cost or 0.0,
                    error=self.error,
                )
            )
        ]

    def _usage(self, call: ModelCallNote) -> dict[str, Any]:
        return _clean_row(
            usage_values(
                deployment_id=self.deployment_id,
                model_name=self.model or "",
                model_type=self.model_type or "",
                source="gateway",
                created_at=self.created_at,
                latency_ms=call.latency_ms,
                prompt_tokens=call.prompt_tokens,
                response_tokens=call.response_tokens,
                cost=call.cost,
                error=call.error,
            )
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


@dataclass(frozen=True)
class LogStats:
    """What the request log did: rows written, entries waiting, and requests lost."""

    written: int = 0
    pending: int = 0
    refused: int = 0  # served, but the queue was full: never logged
    quarantined: int = 0  # the database refused this entry even on its own
    dropped: int = 0  # the database stayed away for MAX_ATTEMPTS tries

    @property
    def lost(self) -> int:
        return self.refused + self.quarantined + self.dropped

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def __add__(self, other: LogStats) -> LogStats:
        return LogStats(**{k: v + getattr(other, k) for k, v in asdict(self).items()})


_running: weakref.WeakSet[RequestLogger] = weakref.WeakSet()


def log_stats() -> LogStats:
    """The counters of every request log running in this process (the embedded gateway's
    in the UI process; a standalone gateway reports its own on ``/readyz``)."""
    total = LogStats()
    for logger in list(_running):
        total = total + logger.stats()
    return total


class RequestLogger:
    """The queue and its background writer (one per gateway process)."""

    def __init__(
        self, *, interval_s: float = FLUSH_INTERVAL_S, max_pending: int = MAX_PENDING
    ) -> None:
        self.interval_s = interval_s
        self.max_pending = max_pending
        self._queue: deque[LogEntry] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._flush_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.written = 0
        self.refused = 0
        self.quarantined = 0
        self.dropped = 0

    def log(self, entry: LogEntry) -> None:
        if len(self._queue) >= self.max_pending:
            self.refused += 1  # the request was served; only its log entry is lost
            if self.refused == 1 or self.refused % 1000 == 0:
                log.warning(
                    "request log: the queue is full (%d entries); %d requests served but "
                    "not logged so far",
                    self.max_pending,
                    self.refused,
                )
            self._wake.set()
            return
        self._queue.append(entry)
        if len(self._queue) >= BATCH_SIZE:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def stats(self) -> LogStats:
        return LogStats(
            written=self.written,
            pending=self.pending,
            refused=self.refused,
            quarantined=self.quarantined,
            dropped=self.dropped,
        )

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="studio-request-log", daemon=True)
        self._thread.start()
        _running.add(self)
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
        _running.discard(self)

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
        """Write one batch; False when the database is away (the batch stays queued)."""
        with self._flush_lock:
            batch: list[LogEntry] = []
            while self._queue and len(batch) < BATCH_SIZE:
                batch.append(self._queue.popleft())
            due = due_last_used(force=self._stop.is_set())
            if not batch and not due:
                return True
            try:
                self._write(batch, due)
            except DATABASE_AWAY as exc:
                self._requeue(batch, exc)
                return False
            except SQLAlchemyError as exc:
                return self._write_one_by_one(batch, due, exc)
            self.written += len(batch)
            return True

    def _write_one_by_one(
        self, batch: list[LogEntry], due: dict[int, datetime], exc: SQLAlchemyError
    ) -> bool:
        """A batch the database refused: write each entry alone, so one bad entry cannot
        take the others down; quarantine the entries that fail on their own."""
        log.warning(
            "request log: a batch of %d entries was refused (%s); writing them one by one",
            len(batch),
            type(exc).__name__,
        )
        for i, entry in enumerate(batch):
            try:
                self._write([entry], {})
            except DATABASE_AWAY as away:  # not this entry's fault: retry the rest later
                self._requeue(batch[i:], away)
                return False
            except SQLAlchemyError as bad:
                self.quarantined += 1
                log.warning(
                    "request log: entry %s could not be written (%s: %s); it is skipped",
                    entry.request_id,
                    type(bad).__name__,
                    _reason(bad),
                )
            else:
                self.written += 1
        if due:
            try:
                self._write([], due)
            except SQLAlchemyError as bad:
                log.warning("request log: key last-used times not written (%s)", type(bad).__name__)
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
                usage = [row for e in batch for row in e.usage_rows()]
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
        self.dropped += dropped
        log.warning(
            "request log: writing %d entries failed (%s); will retry%s",
            len(batch),
            type(exc).__name__,
            f", {dropped} dropped after {MAX_ATTEMPTS} attempts" if dropped else "",
        )
        self._queue.extendleft(reversed(kept))


def _reason(exc: SQLAlchemyError) -> str:
    """The database's own one-line reason (never the statement or its parameters)."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else type(exc).__name__).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
