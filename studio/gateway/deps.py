"""Per-request context, the logging middleware, and the route dependencies.

:class:`RequestLogMiddleware` is plain ASGI (no per-request task or body
copy beyond what the log keeps): it gives each request an id, captures the
bodies for the log as the settings allow, adds ``x-request-id`` and
``x-studio-overhead-ms`` (total time so far minus the model's time) to the
response, and hands one :class:`~studio.gateway.request_log.LogEntry` to the
queue when the response is finished, or when the client went away.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from secrets import token_hex
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlmodel import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from studio.core.identity import set_actor
from studio.core.settings import get_settings
from studio.gateway.request_log import LogEntry, ModelCallNote, RequestLogger, body_for_log
from studio.services.api_keys import (
    KeyIdentity,
    acheck_rate_limit,
    averify_key,
    note_used,
)
from studio.store import session_scope

__all__ = [
    "ApiKeyDep",
    "RequestContext",
    "RequestLogMiddleware",
    "SessionDep",
    "context",
]

UNLOGGED = ("/healthz", "/readyz", "/docs", "/redoc", "/openapi.json", "/favicon.ico")


@dataclass
class RequestContext:
    """What a route tells the log about its request (ids, model, tokens, error)."""

    request_id: str
    started: float
    endpoint_id: int | None = None
    app_id: int | None = None
    model: str | None = None
    model_type: str | None = None
    deployment_id: str | None = None
    api_key_id: int | None = None
    model_latency_ms: float | None = None
    prompt_tokens: int | None = None
    response_tokens: int | None = None
    cost: float | None = None
    error: str | None = None
    record_usage: bool = False
    calls: list[ModelCallNote] = field(default_factory=list)  # several calls: one row each
    retrieval: dict[str, Any] | None = None  # the chunks an endpoint's retrieval step used

    def note_result(self, result: Any) -> None:
        """Copy usage from a :class:`~studio.services.endpoint_calls.GenerateResult`."""
        self.model = result.model
        self.model_latency_ms = result.model_latency_ms
        self.prompt_tokens = result.prompt_tokens
        self.response_tokens = result.response_tokens
        self.cost = result.cost
        self.retrieval = getattr(result, "retrieval", None)


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp, logger: RequestLogger) -> None:
        self.app = app
        self.logger = logger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(UNLOGGED):
            await self.app(scope, receive, send)
            return
        settings = get_settings()
        keep = settings.gateway_log_bodies != "redact"
        limit = settings.gateway_log_body_chars if settings.gateway_log_bodies == "truncate" else -1
        ctx = RequestContext(request_id=token_hex(16), started=time.perf_counter())
        state = scope.setdefault("state", {})
        state["log"], state["request_id"] = ctx, ctx.request_id
        request_body: list[bytes] = []
        response_body: list[bytes] = []
        status = 500
        logged = False

        def capture(store: list[bytes], chunk: bytes) -> None:
            if keep and chunk and (limit < 0 or sum(map(len, store)) <= limit):
                store.append(chunk)

        async def receive_logged() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                capture(request_body, message.get("body", b""))
            return message

        def finish() -> None:
            nonlocal logged
            if logged:
                return
            logged = True
            total = (time.perf_counter() - ctx.started) * 1000
            self.logger.log(
                LogEntry(
                    request_id=ctx.request_id,
                    route=f"{scope['method']} {scope['path']}",
                    status_code=status,
                    latency_ms=round(total, 3),
                    endpoint_id=ctx.endpoint_id,
                    app_id=ctx.app_id,
                    model=ctx.model,
                    model_type=ctx.model_type,
                    deployment_id=ctx.deployment_id,
                    api_key_id=ctx.api_key_id,
                    model_latency_ms=ctx.model_latency_ms,
                    overhead_ms=round(total - (ctx.model_latency_ms or 0.0), 3),
                    prompt_tokens=ctx.prompt_tokens,
                    response_tokens=ctx.response_tokens,
                    cost=ctx.cost,
                    error=ctx.error,
                    request_body=body_for_log(b"".join(request_body)) if keep else "[redacted]",
                    response_body=body_for_log(b"".join(response_body)) if keep else "[redacted]",
                    record_usage=ctx.record_usage,
                    calls=tuple(ctx.calls),
                    retrieval=ctx.retrieval,
                )
            )

        async def send_logged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                overhead = (time.perf_counter() - ctx.started) * 1000 - (ctx.model_latency_ms or 0)
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", ctx.request_id.encode()))
                headers.append((b"x-studio-overhead-ms", f"{max(overhead, 0.0):.3f}".encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                capture(response_body, message.get("body", b""))
                if not message.get("more_body", False):
                    await send(message)
                    finish()
                    return
            await send(message)

        try:
            await self.app(scope, receive_logged, send_logged)
        finally:
            finish()


def context(request: Request) -> RequestContext:
    ctx = getattr(request.state, "log", None)
    if ctx is None:  # a route called without the middleware (not in the real app)
        ctx = RequestContext(request_id=uuid.uuid4().hex, started=time.perf_counter())
        request.state.log = ctx
    return ctx


def _session() -> Iterator[Session]:
    with session_scope() as session:
        yield session


SessionDep = Annotated[Session, Depends(_session)]


async def _api_key(request: Request) -> KeyIdentity:
    header = request.headers.get("authorization") or ""
    secret = header[7:].strip() if header[:7].lower() == "bearer " else None
    secret = secret or request.headers.get("x-api-key")
    # The cache answers on the loop; a miss reads the database in a worker thread (once for
    # all the requests missing on that key), so a slow or locked database never stalls
    # other requests (nor /healthz).
    identity = await averify_key(secret=secret)
    context(request).api_key_id = identity.id
    if identity.rate_limit_per_minute:  # keys without a limit pay nothing here
        # In memory on SQLite; on PostgreSQL one statement in a worker thread, so the
        # limit holds across workers and machines without blocking the loop.
        await acheck_rate_limit(identity)
    note_used(identity.id)
    # Who is asking, for the service layer's checks: the route (awaited in this task, or
    # run in a thread with a copy of this context) sees it; each request has its own task.
    client = request.client.host if request.client else ""
    set_actor(identity.actor(f"gateway {client}".strip()))
    return identity


ApiKeyDep = Annotated[KeyIdentity, Depends(_api_key)]
