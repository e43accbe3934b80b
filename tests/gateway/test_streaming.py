"""``stream: true`` through a real gateway to a real streaming upstream (issue 11, item 10).

The upstream sends its first token and then waits for the test to say it has seen that
token arrive through the gateway, so these tests pass only if tokens are relayed as they
come, not once the answer is whole. No timing is asserted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from studio.core.templates import PromptTemplate
from studio.models.connections import ConnectionCreate, add_connection
from studio.services import api_keys, endpoint_calls, endpoints
from studio.services.apps import create_app as create_studio_app
from studio.services.variants import VariantConfig, create_variant
from studio.store import session_scope
from studio.store.tables import ModelCall, RequestLog
from tests.gateway.test_request_log import LiveServer
from tests.providers.stream_fakes import FIRST, USAGE, StreamingUpstream


class Setup:
    def __init__(self, live: LiveServer, upstream: StreamingUpstream, app: str, admin: str):
        self.live, self.upstream = live, upstream
        self.app_headers = {"Authorization": f"Bearer {app}"}
        self.admin_headers = {"Authorization": f"Bearer {admin}"}

    def flush(self) -> None:
        while self.live.logger.pending:
            assert self.live.logger.flush()

    def logged(self) -> list[RequestLog]:
        """The request log's rows once the streamed request is in it.

        The gateway hands a streamed request to its log when the stream has unwound on
        the server, which may be a moment after the client read ``[DONE]``: flushing
        at once can find nothing pending yet, so wait (up to 20 s) for the row.
        """
        deadline = time.monotonic() + 20
        rows: list[RequestLog] = []
        while not rows and time.monotonic() < deadline:
            self.flush()
            with session_scope() as session:
                rows = list(session.exec(select(RequestLog)).all())
            if not rows:
                time.sleep(0.02)
        return rows


def _gateway(session: Session, upstream: StreamingUpstream) -> Iterator[Setup]:
    add_connection(
        session=session,
        data=ConnectionCreate(
            name="up", kind="openai", base_url=upstream.url, api_key="sk-upstream-secret"
        ),
    )
    app = create_studio_app(session=session, name="Support")
    assert app.id is not None
    create_variant(
        session=session,
        app_id=app.id,
        name="answer",
        config=VariantConfig(
            model="up/fake-chat", prompt=PromptTemplate.completion("Answer: {{question}}")
        ),
    )
    endpoints.deploy(session=session, app=app.id, variant="answer", name="answer")
    app_key = api_keys.create_key(session=session, app=app.id, name="site")
    admin_key = api_keys.create_key(session=session, admin=True, name="ops")
    session.commit()
    live = LiveServer().start()
    yield Setup(live, upstream, app_key.secret, admin_key.secret)
    upstream.stop()
    if live.thread.is_alive():
        live.stop()
    api_keys.clear_key_cache()
    api_keys.forget_last_used()
    endpoint_calls.clear_endpoint_cache()


@pytest.fixture
def gateway(session: Session) -> Iterator[Setup]:
    yield from _gateway(session, StreamingUpstream().start())


@pytest.fixture
def failing_gateway(session: Session) -> Iterator[Setup]:
    yield from _gateway(session, StreamingUpstream(fail_after_first=True).start())


@pytest.fixture
def endless_gateway(session: Session) -> Iterator[Setup]:
    yield from _gateway(session, StreamingUpstream(endless=True).start())


def _events(lines: Iterator[str]) -> Iterator[Any]:
    for line in lines:
        if line.startswith("data: "):
            data = line[6:]
            yield data if data == "[DONE]" else json.loads(data)


CHAT = {
    "model": "up/fake-chat",
    "messages": [{"role": "user", "content": "Hi"}],
    "stream": True,
    "stream_options": {"include_usage": True},
}


def test_chat_tokens_arrive_before_the_upstream_has_finished(gateway: Setup) -> None:
    received: list[Any] = []
    with (
        httpx.Client(base_url=gateway.live.url, timeout=30) as client,
        client.stream(
            "POST", "/v1/chat/completions", json=CHAT, headers=gateway.admin_headers
        ) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for event in _events(r.iter_lines()):
            received.append(event)
            done = event == "[DONE]" or not event["choices"]
            text = None if done else event["choices"][0]["delta"].get("content")
            if text == FIRST:
                assert not gateway.upstream.finished.is_set()  # the rest is still held back
                gateway.upstream.gate.set()
    assert received[-1] == "[DONE]"
    chunks = received[:-1]
    assert chunks[0]["object"] == "chat.completion.chunk"
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Hello there"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    usage = chunks[-1]
    assert usage["choices"] == [] and usage["usage"]["prompt_tokens"] == USAGE["prompt_tokens"]
    assert usage["usage"]["completion_tokens"] == USAGE["completion_tokens"]
    assert all(c["usage"] is None for c in chunks[:-1])
    sent = gateway.upstream.bodies[0]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert gateway.upstream.headers[0]["Authorization"] == "Bearer sk-upstream-secret"

    [row] = gateway.logged()  # the request log has the streamed request, its latency and usage
    assert row.status_code == 200 and row.error is None
    assert (row.prompt_tokens, row.response_tokens) == (9, 3)
    assert row.latency_ms > 0 and row.model_latency_ms and row.model_latency_ms > 0
    with session_scope() as session:
        call = session.exec(select(ModelCall).where(ModelCall.source == "gateway")).one()
    assert (call.prompt_tokens, call.response_tokens, call.error) == (9, 3, None)


def test_no_usage_chunk_unless_the_client_asks(gateway: Setup) -> None:
    gateway.upstream.gate.set()
    body = {**CHAT, "stream_options": None}
    with httpx.Client(base_url=gateway.live.url, timeout=30) as client:
        r = client.post("/v1/chat/completions", json=body, headers=gateway.admin_headers)
    events = list(_events(iter(r.text.splitlines())))
    assert events[-1] == "[DONE]"
    assert all(e["choices"] and "usage" not in e for e in events[:-1])


def test_endpoint_streams_text_completion_chunks(gateway: Setup) -> None:
    body = {"model": "answer", "inputs": {"question": "why?"}, "stream": True}
    seen: list[Any] = []
    with (
        httpx.Client(base_url=gateway.live.url, timeout=30) as client,
        client.stream("POST", "/v1/completions", json=body, headers=gateway.app_headers) as r,
    ):
        assert r.status_code == 200
        for event in _events(r.iter_lines()):
            seen.append(event)
            if event != "[DONE]" and event["choices"][0]["text"] == FIRST:
                gateway.upstream.gate.set()
    assert seen[-1] == "[DONE]"
    assert seen[0]["object"] == "text_completion"
    assert "".join(e["choices"][0]["text"] for e in seen[:-1]) == "Hello there"
    assert "why?" in gateway.upstream.bodies[0]["messages"][0]["content"]  # rendered template
    [row] = gateway.logged()
    assert row.endpoint_id is not None and row.response_tokens == 3


def test_an_error_mid_stream_ends_it_with_an_error_event(failing_gateway: Setup) -> None:
    events: list[Any] = []
    with (
        httpx.Client(base_url=failing_gateway.live.url, timeout=30) as client,
        client.stream(
            "POST", "/v1/chat/completions", json=CHAT, headers=failing_gateway.admin_headers
        ) as r,
    ):
        for event in _events(r.iter_lines()):
            events.append(event)
            choices = event.get("choices") if event != "[DONE]" else None
            if choices and choices[0]["delta"].get("content") == FIRST:
                failing_gateway.upstream.gate.set()
    assert "[DONE]" not in events
    error = events[-1]["error"]
    assert "GPU fell over" in error["message"] and error["type"] == "provider_unavailable"
    assert "sk-upstream-secret" not in json.dumps(events)
    [row] = failing_gateway.logged()
    assert row.error and "GPU fell over" in row.error


def test_an_error_before_the_first_token_is_the_plain_error_answer(session: Session) -> None:
    add_connection(
        session=session,
        data=ConnectionCreate(
            name="down", kind="openai", base_url="http://127.0.0.1:9/v1", options={"max_retries": 0}
        ),
    )
    admin = api_keys.create_key(session=session, admin=True, name="ops")
    session.commit()
    live = LiveServer().start()
    try:
        body = {**CHAT, "model": "down/x"}
        headers = {"Authorization": f"Bearer {admin.secret}"}
        with httpx.Client(base_url=live.url, timeout=30) as client:
            streamed = client.post("/v1/chat/completions", json=body, headers=headers)
            whole = client.post(
                "/v1/chat/completions", json={**body, "stream": False}, headers=headers
            )
    finally:
        live.stop()
        api_keys.clear_key_cache()
        endpoint_calls.clear_endpoint_cache()
    assert streamed.status_code == whole.status_code == 502
    assert streamed.headers["content-type"].startswith("application/json")
    assert streamed.json()["error"]["type"] == whole.json()["error"]["type"]


def test_a_client_that_goes_away_stops_the_upstream_call(endless_gateway: Setup) -> None:
    with (
        httpx.Client(base_url=endless_gateway.live.url, timeout=30) as client,
        client.stream(
            "POST", "/v1/chat/completions", json=CHAT, headers=endless_gateway.admin_headers
        ) as r,
    ):
        for event in _events(r.iter_lines()):
            if event != "[DONE]" and event["choices"][0]["delta"].get("content") == FIRST:
                break  # the client reads one token and hangs up
    assert endless_gateway.upstream.disconnected.wait(20), "the upstream was never told"
    # The gateway hands the request to its log once the cancelled stream has unwound,
    # which may be a moment after the upstream saw the hang-up: wait for the row.
    [row] = endless_gateway.logged()
    assert row.error and "went away" in row.error
