"""The shared HTTP layer as users meet it: retries, waits, limits and error classes.

Driven through :class:`OpenAIProvider` (every provider shares the same plumbing).
Transport-level faults use ``httpx.MockTransport``; timeouts and dropped
connections use a real local server.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from studio.core.errors import (
    ProviderAuthError,
    ProviderRateLimitError,
    ProviderRequestError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from studio.core.schemas import ChatCompletionRequest, Message
from studio.providers.openai import OpenAIProvider

from .fakes import FakeAPI, FakeServer, Step, chat_body, raw_reply, reply

FAST = {"retry_base_delay_s": 0, "retry_max_delay_s": 0}
REQUEST = ChatCompletionRequest(messages=[Message(role="user", content="hi")])


def provider(
    api: FakeAPI | None = None, base_url: str = "http://fake/v1", **options: Any
) -> OpenAIProvider:
    return OpenAIProvider(
        name="conn",
        base_url=base_url,
        options={**FAST, **options},
        transport=api.transport if api else None,
    )


def error(message: str, status: int, headers: dict[str, str] | None = None) -> httpx.Response:
    return reply({"error": {"message": message}}, status=status, headers=headers)


async def test_429_waits_as_long_as_retry_after_says() -> None:
    api = FakeAPI(error("slow down", 429, {"Retry-After": "1"}), reply(chat_body("done")))
    started = time.monotonic()
    answer = await provider(api).chat("m", REQUEST)
    waited = time.monotonic() - started
    assert answer.message.content == "done"
    assert api.calls == 2
    assert waited >= 1.0


async def test_500_is_retried_until_success() -> None:
    api = FakeAPI(error("boom", 500), error("boom", 502), reply(chat_body("ok")))
    answer = await provider(api).chat("m", REQUEST)
    assert answer.message.content == "ok"
    assert api.calls == 3


async def test_malformed_json_is_retried() -> None:
    api = FakeAPI(raw_reply(b'{"choices": [tru'), reply(chat_body("ok")))
    answer = await provider(api).chat("m", REQUEST)
    assert answer.message.content == "ok"
    assert api.calls == 2


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(503, ProviderUnavailableError), (429, ProviderRateLimitError)],
)
async def test_exhausted_retries_raise_the_matching_error(
    status: int, error_class: type[Exception]
) -> None:
    api = FakeAPI(default=lambda _: error("engine overloaded", status))
    with pytest.raises(error_class) as caught:
        await provider(api, max_retries=2).chat("m", REQUEST)
    assert api.calls == 3
    assert "engine overloaded" in str(caught.value)
    assert caught.value.status_code == status  # type: ignore[attr-defined]


async def test_400_is_not_retried_and_carries_the_provider_message() -> None:
    api = FakeAPI(error("messages: too many stop sequences", 400))
    with pytest.raises(ProviderRequestError) as caught:
        await provider(api).chat("m", REQUEST)
    assert api.calls == 1
    assert "too many stop sequences" in str(caught.value)
    assert caught.value.status_code == 400


async def test_401_is_an_auth_error() -> None:
    api = FakeAPI(error("Incorrect API key provided", 401))
    with pytest.raises(ProviderAuthError) as caught:
        await provider(api).chat("m", REQUEST)
    assert api.calls == 1
    assert "Incorrect API key provided" in str(caught.value)


async def test_concurrency_option_bounds_calls_in_flight() -> None:
    in_flight = 0
    peak = 0

    async def slow(_: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return reply(chat_body())

    api = FakeAPI(default=slow)
    conn = provider(api, concurrency=2)
    await asyncio.gather(*(conn.chat("m", REQUEST) for _ in range(6)))
    assert api.calls == 6
    assert peak == 2


# -- a real server: timeouts and dropped connections -----------------------------


async def test_slow_answer_times_out_then_the_retry_succeeds(fake_server: FakeServer) -> None:
    fake_server.then(Step(body=chat_body("late"), delay_s=1.0), Step(body=chat_body("fast")))
    conn = provider(base_url=fake_server.url + "/v1", timeout_s=0.25)
    answer = await conn.chat("m", REQUEST)
    assert answer.message.content == "fast"
    assert [path for path, _ in fake_server.received] == ["/v1/chat/completions"] * 2
    await conn.aclose()


async def test_timeouts_exhausted_raise_timeout_error(fake_server: FakeServer) -> None:
    fake_server.then(Step(body=chat_body(), delay_s=1.0), Step(body=chat_body(), delay_s=1.0))
    conn = provider(base_url=fake_server.url, timeout_s=0.2, max_retries=1)
    with pytest.raises(ProviderTimeoutError, match=r"no answer within 0\.2s"):
        await conn.chat("m", REQUEST)
    assert len(fake_server.received) == 2
    await conn.aclose()


async def test_dropped_connection_is_retried(fake_server: FakeServer) -> None:
    fake_server.then(Step(drop=True), Step(body=chat_body("back")))
    conn = provider(base_url=fake_server.url)
    answer = await conn.chat("m", REQUEST)
    assert answer.message.content == "back"
    assert len(fake_server.received) == 2
    await conn.aclose()


async def test_dropped_connections_exhausted_say_the_server_is_unreachable(
    fake_server: FakeServer,
) -> None:
    fake_server.then(*(Step(drop=True) for _ in range(3)))
    conn = provider(base_url=fake_server.url, max_retries=2)
    with pytest.raises(ProviderUnavailableError, match="could not reach") as caught:
        await conn.chat("m", REQUEST)
    assert caught.value.hint and "server is running" in caught.value.hint
    assert len(fake_server.received) == 3
    await conn.aclose()


async def test_5xx_from_a_real_server_then_success(fake_server: FakeServer) -> None:
    fake_server.then(
        Step(status=503, body={"error": {"message": "loading model"}}),
        Step(body=chat_body("ready")),
    )
    conn = provider(base_url=fake_server.url)
    assert (await conn.chat("m", REQUEST)).message.content == "ready"
    await conn.aclose()
