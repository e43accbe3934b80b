"""The gateway's caches of keys and endpoints: one database read for a crowd of requests,
refreshed ahead while busy, and never serving an answer older than the documented bound."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from sqlmodel import col, update

from studio.core.errors import RevokedApiKeyError
from studio.services import api_keys, endpoint_calls
from studio.services.ttl_cache import TTLCache
from studio.store import session_scope
from studio.store.tables import ApiKey, Endpoint, utcnow
from tests.gateway.conftest import Deployed


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_crowd_missing_at_once_waits_for_one_slow_read() -> None:
    release, reads = threading.Event(), []

    def slow_read(key: str) -> str:
        reads.append(key)
        release.wait(10)
        return f"value of {key}"

    cache: TTLCache[str, str] = TTLCache(slow_read, ttl_s=1.0, clock=Clock())

    async def crowd() -> list[str]:
        tasks = [asyncio.ensure_future(cache.aget("k")) for _ in range(50)]
        while not reads:  # the first request is reading; the others arrive meanwhile
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        release.set()
        return await asyncio.gather(*tasks)

    assert asyncio.run(crowd()) == ["value of k"] * 50
    assert reads == ["k"]  # one database read, not fifty


def test_a_failed_read_reaches_every_waiter_and_is_not_cached() -> None:
    calls = []

    def broken(key: str) -> str:
        calls.append(key)
        raise RuntimeError("database is away")

    cache: TTLCache[str, str] = TTLCache(broken, ttl_s=1.0, clock=Clock())
    for _ in range(2):
        with pytest.raises(RuntimeError, match="away"):
            cache.get("k")
    assert len(calls) == 2


def test_a_busy_value_is_reread_before_it_expires_and_never_served_past_its_ttl() -> None:
    clock, value = Clock(), ["old"]
    done = threading.Event()

    def read(key: str) -> str:
        try:
            return value[0]
        finally:
            done.set()

    cache: TTLCache[str, str] = TTLCache(read, ttl_s=1.0, clock=clock)
    assert cache.get("k") == "old"
    value[0] = "new"
    done.clear()
    clock.now += 0.6  # past half its life: served, and one reread starts in the background
    assert cache.peek("k") == (True, "old")
    assert done.wait(5)
    for _ in range(100):  # the reread lands; the next hit sees it
        if cache.peek("k") == (True, "new"):
            break
        threading.Event().wait(0.01)
    assert cache.peek("k") == (True, "new")
    value[0] = "newer"
    clock.now += 1.01  # idle past the ttl: not served, read again
    assert cache.peek("k") == (False, None)
    assert cache.get("k") == "newer"


def test_a_clear_during_a_read_keeps_the_old_answer_out_of_the_cache() -> None:
    entered, release = threading.Event(), threading.Event()

    def read(key: str) -> str:
        entered.set()
        release.wait(10)
        return "before the deploy"

    cache: TTLCache[str, str] = TTLCache(read, ttl_s=1.0, clock=Clock())
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(cache.get("k")))
    reader.start()
    assert entered.wait(5)
    cache.clear()  # a deploy in this process, while the read is running
    release.set()
    reader.join(5)
    assert result == ["before the deploy"]  # the request that was already reading gets it
    assert cache.peek("k") == (False, None)  # but the next request reads again


def test_a_key_revoked_elsewhere_is_refused_once_its_cached_answer_is_a_ttl_old(
    deployed: Deployed, monkeypatch: Any
) -> None:
    clock = Clock()
    monkeypatch.setattr(api_keys._keys, "clock", clock)
    api_keys.clear_key_cache()
    body = {"inputs": {"event": "launch", "who": "devs"}}
    url = "/v1/endpoints/email/generate"
    assert deployed.client.post(url, json=body, headers=deployed.headers).status_code == 200
    with session_scope() as s:  # another process revokes it: this one's cache is not told
        s.execute(update(ApiKey).where(col(ApiKey.name) == "test").values(revoked_at=utcnow()))
    clock.now += api_keys.KEY_CACHE_TTL_S + 0.01
    refused = deployed.client.post(url, json=body, headers=deployed.headers)
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]["message"]
    with pytest.raises(RevokedApiKeyError):
        api_keys.verify_key(secret=deployed.key)


def test_an_endpoint_undeployed_elsewhere_is_gone_once_its_cached_answer_is_a_ttl_old(
    deployed: Deployed, monkeypatch: Any
) -> None:
    clock = Clock()
    monkeypatch.setattr(endpoint_calls._runtimes, "clock", clock)
    endpoint_calls.clear_endpoint_cache()
    body = {"inputs": {"event": "launch", "who": "devs"}}
    url = "/v1/endpoints/email/generate"
    assert deployed.client.post(url, json=body, headers=deployed.headers).status_code == 200
    with session_scope() as s:  # another process undeploys it
        s.execute(update(Endpoint).where(col(Endpoint.name) == "email").values(active=False))
    clock.now += endpoint_calls.ENDPOINT_CACHE_TTL_S + 0.01
    gone = deployed.client.post(url, json=body, headers=deployed.headers)
    assert gone.status_code == 404 and "No deployed endpoint 'email'" in gone.text


def test_fastapi_telemetry_stays_on_when_the_operator_sets_up_opentelemetry(
    monkeypatch: Any,
) -> None:
    from studio.gateway.app import _telemetry

    for name in [n for n in __import__("os").environ if n.startswith("OTEL_")]:
        monkeypatch.delenv(name)
    assert _telemetry() == {"tracing": False, "metrics": False, "logs": False}
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    assert _telemetry() is None  # FastAPI's defaults: traces, metrics and logs on
