"""Streams from a plain-http provider go over the lean keep-alive pool, not httpx
(issue 11 item 10: time to first token): chunked and close-delimited event streams,
a CRLF or a UTF-8 character split across reads, U+2028 inside an event's JSON, a
connection reused after a stream read to its end and closed after one left early."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator

import pytest

from studio.core.errors import ProviderRequestError
from studio.core.schemas import ChatCompletionRequest, Message
from studio.providers.openai import OpenAIProvider

REQUEST = ChatCompletionRequest(messages=[Message(role="user", content="hi")])
TOKENS = ["Hel", "lo\u2028", " wörld"]


def _event(text: str | None, finish: str | None = None) -> bytes:
    delta = {} if text is None else {"content": text}
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return b"data: " + json.dumps({"choices": [choice]}, ensure_ascii=False).encode() + b"\r\n\r\n"


BODY = b"".join(_event(t) for t in TOKENS) + _event(None, "stop") + b"data: [DONE]\r\n\r\n"


class SSEServer:
    """Answers every request on a keep-alive connection with an event stream, in small
    chunked pieces (split inside CRLFs and characters), or close-delimited; ``status``
    other than 200 answers a JSON error instead."""

    def __init__(self, *, chunked: bool = True) -> None:
        self.chunked = chunked
        self.status = 200
        self.pause = 0.0  # seconds between pieces
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
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode("latin-1").split("\r\n"):
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                self.requests.append(head + await reader.readexactly(length))
                if self.status != 200:
                    error = b'{"error": {"message": "no such model"}}'
                    writer.write(
                        b"HTTP/1.1 %d Nope\r\ncontent-type: application/json\r\n"
                        b"content-length: %d\r\n\r\n%s" % (self.status, len(error), error)
                    )
                    await writer.drain()
                    continue
                framing = b"transfer-encoding: chunked" if self.chunked else b"connection: close"
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                    + framing
                    + b"\r\n\r\n"
                )
                for start in range(0, len(BODY), 7):  # 7 bytes: splits CRLFs and characters
                    piece = BODY[start : start + 7]
                    writer.write(b"%x\r\n%s\r\n" % (len(piece), piece) if self.chunked else piece)
                    await writer.drain()
                    await asyncio.sleep(self.pause)
                if not self.chunked:
                    break
                writer.write(b"0\r\n\r\n")
                await writer.drain()
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
def server() -> Iterator[SSEServer]:
    srv = SSEServer()
    yield srv
    srv.stop()


def _provider(url: str) -> OpenAIProvider:
    return OpenAIProvider(name="local", base_url=url, options={"max_retries": 0})


async def _text(llm: OpenAIProvider, *, stop_after: int | None = None) -> str:
    pieces = []
    stream = llm.stream_chat("m", REQUEST)
    async for chunk in stream:
        if chunk.text:
            pieces.append(chunk.text)
        if stop_after is not None and len(pieces) >= stop_after:
            break
    await stream.aclose()
    return "".join(pieces)


def test_chunked_streams_go_over_the_pool_and_reuse_its_connection(server: SSEServer) -> None:
    llm = _provider(server.url)

    async def run() -> list[str]:
        texts = [await _text(llm) for _ in range(3)]
        assert not llm._clients  # no httpx client was made for the streams
        pool = llm._pool()
        assert pool is not None and pool.opened == 1  # one connection, read to its end
        await llm.aclose()
        return texts

    assert asyncio.run(run()) == ["".join(TOKENS)] * 3
    assert server.connections == 1
    first = server.requests[0]
    assert b"Accept: text/event-stream\r\n" in first and b"*/*" not in first
    assert json.loads(first.split(b"\r\n\r\n", 1)[1])["stream"] is True


def test_a_stream_left_early_closes_its_connection(server: SSEServer) -> None:
    llm = _provider(server.url)
    server.pause = 0.02  # the rest of the answer is still on its way when the reader leaves

    async def run() -> tuple[str, str]:
        early = await _text(llm, stop_after=1)
        whole = await _text(llm)
        await llm.aclose()
        return early, whole

    assert asyncio.run(run()) == (TOKENS[0], "".join(TOKENS))
    assert server.connections == 2  # the half-read connection was not put back


def test_a_close_delimited_stream_and_an_error_status() -> None:
    srv = SSEServer(chunked=False)
    try:
        llm = _provider(srv.url)

        async def run() -> str:
            text = await _text(llm)
            srv.status = 404
            with pytest.raises(ProviderRequestError, match="HTTP 404") as refused:
                await _text(llm)
            assert refused.value.provider_message == "no such model"
            await llm.aclose()
            return text

        assert asyncio.run(run()) == "".join(TOKENS)
    finally:
        srv.stop()
