"""A connection's own concurrency limit: absent unless the user sets one, and then
process-wide (every event loop and thread shares it), with the wait left out of latency.

Calls go through :class:`OpenAIProvider` to a real local server that records the most
requests it ever had in flight at once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from studio.core.schemas import ChatCompletionRequest, Message
from studio.providers.base import ConnectionLimiter, call_clock
from studio.providers.openai import OpenAIProvider

from .fakes import FaultyOpenAIServer

REQUEST = ChatCompletionRequest(messages=[Message(role="user", content="hi")])


@pytest.fixture
def server() -> Iterator[FaultyOpenAIServer]:
    srv = FaultyOpenAIServer(latency_s=0.2).start()
    try:
        yield srv
    finally:
        srv.stop()


def provider(url: str, name: str, **options: Any) -> OpenAIProvider:
    return OpenAIProvider(name=name, base_url=url, options={"timeout_s": 30, **options})


async def _calls(conn: OpenAIProvider, n: int) -> None:
    try:
        await asyncio.gather(*(conn.chat("fake-chat", REQUEST) for _ in range(n)))
    finally:
        await conn.aclose()


def test_a_connection_without_a_limit_lets_the_callers_concurrency_through(
    server: FaultyOpenAIServer,
) -> None:
    conn = provider(server.url, "unlimited")
    assert conn.options.concurrency is None
    asyncio.run(_calls(conn, 32))
    assert server.calls == 32
    assert server.peak_in_flight == 32


def test_a_connection_limit_holds_across_two_event_loops_in_two_threads(
    server: FaultyOpenAIServer,
) -> None:
    # Two provider instances of one connection (as two cached configurations would
    # be), each used from its own thread with its own event loop, at the same time.
    conns = [provider(server.url, "limited-4", concurrency=4) for _ in range(2)]
    errors: list[BaseException] = []

    def drive(conn: OpenAIProvider) -> None:
        try:
            asyncio.run(_calls(conn, 12))
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=drive, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert server.calls == 24
    assert server.peak_in_flight == 4


def test_time_queued_behind_the_limit_is_not_latency(server: FaultyOpenAIServer) -> None:
    conn = provider(server.url, "limited-2", concurrency=2)
    latencies: list[float] = []

    async def timed() -> None:
        with call_clock() as clock:
            await conn.chat("fake-chat", REQUEST)
        latencies.append(clock.elapsed_ms)

    async def main() -> None:
        try:
            await asyncio.gather(*(timed() for _ in range(8)))  # 4 waves of 2
        finally:
            await conn.aclose()

    asyncio.run(main())
    assert server.peak_in_flight == 2
    assert len(latencies) == 8
    # Each call takes ~200 ms at the server; the last wave waited ~600 ms for a slot.
    assert max(latencies) < 2 * 200


async def test_a_waiter_that_gives_up_leaves_the_queue_and_the_slot_moves_on() -> None:
    limiter = ConnectionLimiter(1)
    await limiter.acquire()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(limiter.acquire(), 0.05)
    assert limiter.in_use == 1
    limiter.release()
    assert limiter.in_use == 0
    await asyncio.wait_for(limiter.acquire(), 1)  # the slot was not handed to the quitter
    limiter.release()
    assert limiter.in_use == 0
