"""Calls to a plain-http provider reuse keep-alive connections, survive a server that
closes idle ones, and report its faults like the httpx path does."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator

import pytest

from studio.core.errors import ProviderTimeoutError, ProviderUnavailableError
from studio.core.schemas import ChatCompletionRequest, Message
from studio.providers.http_pool import pool_target
from studio.providers.openai import OpenAIProvider

REQUEST = ChatCompletionRequest(messages=[Message(role="user", content="hi")])
ANSWER = json.dumps(
    {
        "choices": [{"index": 0, "message": {"content": "pong"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1},
    }
).encode()


class KeepAliveServer:
    """An HTTP/1.1 server on loopback that answers every request on a connection, and
    can close each connection after ``answers_per_connection`` answers, answer in
    chunks, or stall."""

    def __init__(self, *, answers_per_connection: int = 0, chunked: bool = False) -> None:
        self.answers_per_connection = answers_per_connection
        self.chunked = chunked
        self.stall = False
        self.connections = 0
        self.requests: list[bytes] = []
        self.loop = asyncio.new_event_loop()
        self.port = 0
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
            self.port = server.sockets[0].getsockname()[1]
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        started.wait(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        answered = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode("latin-1").split("\r\n"):
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                body = await reader.readexactly(length)
                self.requests.append(head.split(b"\r\n", 1)[0] + b" " + body)
                if self.stall:
                    await asyncio.sleep(5)
                if self.chunked:
                    half = len(ANSWER) // 2
                    chunks = b"".join(
                        b"%x\r\n%s\r\n" % (len(part), part)
                        for part in (ANSWER[:half], ANSWER[half:])
                    )
                    writer.write(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                        b"transfer-encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
                    )
                else:
                    writer.write(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                        b"content-length: %d\r\n\r\n%s" % (len(ANSWER), ANSWER)
                    )
                await writer.drain()
                answered += 1
                if self.answers_per_connection and answered >= self.answers_per_connection:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def stop(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_all(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def server() -> Iterator[KeepAliveServer]:
    srv = KeepAliveServer()
    yield srv
    srv.stop()


def provider(url: str, **options: object) -> OpenAIProvider:
    return OpenAIProvider(
        name="local",
        base_url=url,
        options={"retry_base_delay_s": 0, "retry_max_delay_s": 0, **options},
    )


def test_only_plain_http_without_a_proxy_uses_the_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    assert pool_target("http://127.0.0.1:8000/v1") == ("127.0.0.1", 8000, "/v1")
    assert pool_target("http://localhost") == ("localhost", 80, "")
    assert pool_target("https://api.openai.com/v1") is None
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert pool_target("http://models.example/v1") is None


def test_sequential_and_concurrent_calls_reuse_connections(server: KeepAliveServer) -> None:
    llm = provider(server.url, concurrency=8)

    async def calls() -> list[str]:
        answers = [(await llm.chat("m", REQUEST)).message.content for _ in range(20)]
        many = await asyncio.gather(*(llm.chat("m", REQUEST) for _ in range(40)))
        await llm.aclose()
        return answers + [a.message.content for a in many]

    answers = asyncio.run(calls())
    assert answers == ["pong"] * 60
    assert len(server.requests) == 60
    assert server.requests[0].startswith(b"POST /v1/chat/completions HTTP/1.1 {")
    assert json.loads(server.requests[0].split(b" ", 3)[3])["messages"][0]["content"] == "hi"
    assert server.connections <= 8  # never more than the concurrency, never one per call


def test_a_connection_the_server_closed_while_idle_is_replaced(server: KeepAliveServer) -> None:
    server.answers_per_connection = 1  # the server hangs up after every answer
    llm = provider(server.url, max_retries=0)  # no retry hides a failure here

    async def calls() -> list[str]:
        out = []
        for _ in range(5):
            out.append((await llm.chat("m", REQUEST)).message.content)
            await asyncio.sleep(0.05)  # the server's close reaches us while idle
        return out

    assert asyncio.run(calls()) == ["pong"] * 5
    assert server.connections == 5


def test_chunked_answers_are_read_whole() -> None:
    srv = KeepAliveServer(chunked=True)
    try:
        answer = asyncio.run(provider(srv.url).chat("m", REQUEST))
    finally:
        srv.stop()
    assert answer.message.content == "pong"
    assert answer.response_tokens == 1


def test_a_stalled_server_times_out_and_a_closed_port_is_unavailable(
    server: KeepAliveServer,
) -> None:
    server.stall = True
    with pytest.raises(ProviderTimeoutError):
        asyncio.run(provider(server.url, timeout_s=0.3, max_retries=0).chat("m", REQUEST))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    with pytest.raises(ProviderUnavailableError) as info:
        asyncio.run(provider(f"http://127.0.0.1:{closed}/v1", max_retries=0).chat("m", REQUEST))
    assert "could not reach" in str(info.value)
