"""A bounded loopback load: 200 concurrent clients for a while against a real server.

No request may fail because of the gateway, and the request log must hold
exactly the requests served: each response's request id once, nothing extra.
``STUDIO_LOAD_SECONDS`` sets how long the clients keep sending (default 10 s;
the issue's example is 30).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from sqlmodel import select

from studio.store import session_scope
from studio.store.tables import RequestLog
from tests.gateway.conftest import Deployed
from tests.gateway.test_request_log import INPUTS, LiveServer

CLIENTS = 200
SECONDS = float(os.environ.get("STUDIO_LOAD_SECONDS", "10"))


@pytest.fixture
def server(deployed: Deployed) -> Iterator[LiveServer]:
    live = LiveServer().start()
    yield live
    if live.thread.is_alive():
        live.stop()


def test_200_clients_sustained_load_no_gateway_errors_and_an_exact_log(
    deployed: Deployed, server: LiveServer
) -> None:
    live = server

    async def client(http: httpx.AsyncClient, stop_at: float, seen: list[tuple[int, str]]) -> None:
        while time.monotonic() < stop_at:
            response = await http.post(
                "/v1/endpoints/email/generate", json={"inputs": INPUTS}, headers=deployed.headers
            )
            seen.append((response.status_code, response.headers.get("x-request-id", "")))

    async def load() -> list[tuple[int, str]]:
        seen: list[tuple[int, str]] = []
        limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
        async with httpx.AsyncClient(base_url=live.url, limits=limits, timeout=60) as http:
            stop_at = time.monotonic() + SECONDS
            await asyncio.gather(*(client(http, stop_at, seen) for _ in range(CLIENTS)))
        return seen

    started = time.monotonic()
    seen = asyncio.run(load())
    elapsed = time.monotonic() - started
    statuses = Counter(code for code, _ in seen)
    assert statuses == Counter({200: len(seen)}), f"non-200 answers under load: {statuses}"
    assert len(seen) >= CLIENTS, "every client got at least one answer"
    ids = [rid for _, rid in seen]
    assert len(set(ids)) == len(ids), "request ids are unique"

    live.stop()  # a clean shutdown drains the request log
    with session_scope() as session:
        logged = list(session.exec(select(RequestLog.request_id)).all())
    assert sorted(logged) == sorted(ids), "the log holds exactly the requests served"
    print(f"\n{len(seen)} requests from {CLIENTS} clients in {elapsed:.1f} s")
