"""Every request served is logged exactly once: under load, through a real server, and
across a clean restart; bodies are kept, truncated or redacted as configured."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from sqlmodel import Session, func, select

from studio.core.settings import reset_settings
from studio.gateway import create_app
from studio.gateway.request_log import RequestLogger
from studio.gateway.server import KEEP_ALIVE_S
from studio.store import session_scope
from studio.store.tables import ModelCall, RequestLog
from tests.gateway.conftest import Deployed

INPUTS = {"event": "fair", "who": "kids"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    def __init__(self) -> None:
        self.port = _free_port()
        self.logger = RequestLogger(interval_s=0.05)
        config = uvicorn.Config(
            create_app(logger=self.logger),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            timeout_keep_alive=KEEP_ALIVE_S,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@pytest.fixture
def live(deployed: Deployed) -> Iterator[LiveServer]:
    server = LiveServer().start()
    yield server
    if server.thread.is_alive():
        server.stop()


def _logged(session: Session) -> list[str]:
    return list(session.exec(select(RequestLog.request_id)).all())


def test_200_concurrent_requests_are_each_logged_once(deployed: Deployed, live: LiveServer) -> None:
    async def load() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(base_url=live.url, limits=limits, timeout=30) as client:
            calls = [
                client.post(
                    "/v1/endpoints/email/generate",
                    json={"inputs": INPUTS if i % 10 else {"event": "x"}},
                    headers=deployed.headers,
                )
                for i in range(200)
            ]
            return await asyncio.gather(*calls)

    responses = asyncio.run(load())
    assert sorted({r.status_code for r in responses}) == [200, 422]
    ids = [r.headers["x-request-id"] for r in responses]
    assert len(set(ids)) == 200
    live.stop()  # a clean shutdown drains the queue
    with session_scope() as session:
        logged = _logged(session)
        calls = session.exec(select(func.count()).select_from(ModelCall)).one()
        key_ids = set(session.exec(select(RequestLog.api_key_id)).all())
        bodies = " ".join(session.exec(select(RequestLog.request_body)).all())  # type: ignore[arg-type]
    assert sorted(logged) == sorted(ids)  # every request once, no extras
    assert calls == 180  # gateway model calls count in the registry's usage statistics
    assert len(key_ids) == 1 and None not in key_ids
    assert deployed.key not in bodies  # the key itself is never logged


def test_entries_survive_a_clean_restart(deployed: Deployed) -> None:
    first = LiveServer().start()
    with httpx.Client(base_url=first.url) as client:
        ids = [
            client.post(
                "/v1/endpoints/email/generate", json={"inputs": INPUTS}, headers=deployed.headers
            ).headers["x-request-id"]
            for _ in range(20)
        ]
    first.logger.interval_s = 60  # nothing is flushed before shutdown...
    first.stop()  # ...except by the drain
    second = LiveServer().start()
    with httpx.Client(base_url=second.url) as client:
        r = client.post(
            "/v1/endpoints/email/generate", json={"inputs": INPUTS}, headers=deployed.headers
        )
        ids.append(r.headers["x-request-id"])
    second.stop()
    with session_scope() as session:
        assert sorted(_logged(session)) == sorted(ids)


def test_a_failed_write_is_retried_without_duplicates(deployed: Deployed) -> None:
    logger = deployed.logger
    r = deployed.client.post(
        "/v1/endpoints/email/generate", json={"inputs": INPUTS}, headers=deployed.headers
    )
    rid = r.headers["x-request-id"]
    deployed.flush()
    from studio.gateway.request_log import LogEntry

    logger.log(LogEntry(request_id=rid, route="x", status_code=200, latency_ms=1.0))
    logger.log(LogEntry(request_id="fresh", route="x", status_code=200, latency_ms=1.0))
    assert logger.flush()
    with session_scope() as session:
        assert sorted(_logged(session)) == sorted([rid, "fresh"])


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("redact", "[redacted]"), ("truncate", "… [truncated"), ("full", "z" * 100)],
)
def test_bodies_are_kept_truncated_or_redacted(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch, mode: str, expected: str
) -> None:
    monkeypatch.setenv("STUDIO_GATEWAY_LOG_BODIES", mode)
    monkeypatch.setenv("STUDIO_GATEWAY_LOG_BODY_CHARS", "40")
    reset_settings()
    r = deployed.client.post(
        "/v1/endpoints/email/generate",
        json={"inputs": {**INPUTS, "extra": "z" * 100}},
        headers=deployed.headers,
    )
    assert r.status_code == 200
    deployed.flush()
    with session_scope() as session:
        row: Any = session.exec(select(RequestLog)).one()
    assert expected in row.request_body
    assert row.status_code == 200 and row.endpoint_id is not None and row.prompt_tokens
    assert row.model_latency_ms is not None and row.overhead_ms is not None
