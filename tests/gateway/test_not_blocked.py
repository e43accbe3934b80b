"""A slow model never stalls the gateway (issue 11, item 4).

No route waits on the database on the event loop, and none holds a pooled connection
while a model answers: with more calls in flight to a slow upstream than the
connection pool has connections (SQLite: 5 + 10 overflow), ``/healthz`` still answers
at once and every call succeeds. The key cache that keeps the database off the hot
path still lets a revocation made by another process take effect within about a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, func, select, update

from studio.core.templates import PromptTemplate
from studio.models.connections import ConnectionCreate, add_connection
from studio.services import api_keys, endpoint_calls, endpoints
from studio.services.apps import create_app as create_studio_app
from studio.services.variants import VariantConfig, create_variant
from studio.store import get_engine, session_scope
from studio.store.tables import ApiKey, ModelCall, RequestLog, utcnow
from tests.gateway.test_request_log import LiveServer
from tests.providers.fakes import FaultyOpenAIServer, answer_for

UPSTREAM_S = 2.5
GENERATES = 8


@pytest.fixture
def slow_gateway(
    session: Session, faulty_server: Callable[..., FaultyOpenAIServer]
) -> Iterator[tuple[LiveServer, FaultyOpenAIServer, dict[str, str], dict[str, str]]]:
    upstream = faulty_server(latency_s=UPSTREAM_S)
    add_connection(
        session=session,
        data=ConnectionCreate(
            name="slow",
            kind="openai",
            base_url=upstream.url,
            options={"concurrency": 64},  # the connection lets every call through at once
        ),
    )
    app = create_studio_app(session=session, name="Support")
    assert app.id is not None
    create_variant(
        session=session,
        app_id=app.id,
        name="answer",
        config=VariantConfig(
            model="slow/fake-chat", prompt=PromptTemplate.completion("Answer: {{question}}")
        ),
    )
    endpoints.deploy(session=session, app=app.id, variant="answer", name="answer")
    app_key = api_keys.create_key(session=session, app=app.id, name="site")
    admin_key = api_keys.create_key(session=session, admin=True, name="ops")
    session.commit()
    live = LiveServer().start()
    yield (
        live,
        upstream,
        {"Authorization": f"Bearer {app_key.secret}"},
        {"Authorization": f"Bearer {admin_key.secret}"},
    )
    if live.thread.is_alive():
        live.stop()
    api_keys.clear_key_cache()
    api_keys.forget_last_used()
    endpoint_calls.clear_endpoint_cache()


def test_healthz_answers_while_more_slow_calls_than_pool_connections_are_in_flight(
    slow_gateway: Any,
) -> None:
    live, upstream, app_headers, admin_headers = slow_gateway
    pool = get_engine().pool
    capacity = pool.size() + getattr(pool, "_max_overflow", 0)  # SQLite 5 + 10, PostgreSQL 10 + 20
    executes = capacity + 6  # more calls in flight than the pool has connections

    async def scenario() -> tuple[list[httpx.Response], httpx.Response, float, int]:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=live.url, limits=limits, timeout=60) as http:
            calls = [
                asyncio.create_task(
                    http.post(
                        "/api/v1/models/slow/fake-chat/execute",
                        json={"messages": [{"role": "user", "content": f"execute {i}"}]},
                        headers=admin_headers,
                    )
                )
                for i in range(executes)
            ] + [
                asyncio.create_task(
                    http.post(
                        "/v1/endpoints/answer/generate",
                        json={"inputs": {"question": f"generate {i}"}},
                        headers=app_headers,
                    )
                )
                for i in range(GENERATES)
            ]
            # Wait until every call has reached the upstream (it sleeps before answering).
            deadline = time.monotonic() + 20
            while upstream.calls < executes + GENERATES and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            started = time.monotonic()
            health = await http.get("/healthz")
            took = time.monotonic() - started
            in_flight = sum(not c.done() for c in calls)
            return list(await asyncio.gather(*calls)), health, took, in_flight

    responses, health, took, in_flight = asyncio.run(scenario())
    assert upstream.calls == executes + GENERATES, "every call reached the upstream at once"
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert in_flight > capacity  # /healthz answered while the slow calls were still running
    assert took < 1.0, f"/healthz took {took:.2f} s while the upstream takes {UPSTREAM_S} s"
    assert [r.status_code for r in responses] == [200] * (executes + GENERATES), [
        r.text for r in responses if r.status_code != 200
    ]
    executed = responses[:executes]
    assert [r.json()["message"]["content"] for r in executed] == [
        answer_for(f"execute {i}") for i in range(executes)
    ]
    assert [r.json()["output"] for r in responses[executes:]] == [
        answer_for(f"Answer: generate {i}") for i in range(GENERATES)
    ]
    live.stop()  # drains the request log
    with session_scope() as s:
        logged = s.exec(select(func.count()).select_from(RequestLog)).one()
        usage = s.exec(select(func.count()).select_from(ModelCall)).one()
    assert logged == executes + GENERATES
    assert usage == executes + GENERATES  # execute writes its own, generate through the log


def test_a_key_revoked_by_another_process_stops_working_within_about_a_second(
    slow_gateway: Any,
) -> None:
    live, _, app_headers, _ = slow_gateway
    with httpx.Client(base_url=live.url, timeout=10) as http:
        assert http.get("/api/v1/endpoints", headers=app_headers).status_code == 200
        # Another process revokes it: this process's key cache is not told.
        with session_scope() as s:
            s.execute(update(ApiKey).where(col(ApiKey.name) == "site").values(revoked_at=utcnow()))
        revoked_at = time.monotonic()
        statuses = []
        while time.monotonic() - revoked_at < 3.0:
            status = http.get("/api/v1/endpoints", headers=app_headers).status_code
            statuses.append((time.monotonic() - revoked_at, status))
            if status == 401:
                break
            time.sleep(0.05)
    assert statuses[-1][1] == 401, statuses
    assert statuses[-1][0] < api_keys.KEY_CACHE_TTL_S + 0.5
