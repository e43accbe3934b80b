"""The hand-written plain-http pool against a server answering with scripted bytes:
the edge cases issue 10 names (chunked bodies with extensions and trailers,
Content-Length with Transfer-Encoding, servers hanging up, reuse after a 5xx or a
timeout, answers without a body, CR/LF injection, oversized headers)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from studio.providers.http_pool import ConnectionPool

OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


class ScriptedServer:
    """Answers the n-th request with ``answers[n]`` (bytes, or None to hang up without
    answering), then keeps the connection open unless the answer says ``close``."""

    def __init__(self, *answers: bytes | None, stall_after: bool = False) -> None:
        self.answers = list(answers)
        self.connections = 0
        self.requests: list[bytes] = []
        self.stall_after = stall_after
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> ScriptedServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                self.requests.append(head + await reader.readexactly(length))
                answer = self.answers.pop(0) if self.answers else OK
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if self.stall_after:
                    await asyncio.sleep(5)
                if b"connection: close" in answer.lower():
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def call(server: ScriptedServer, timeout_s: float = 2.0) -> httpx.Response:
    pool = ConnectionPool("127.0.0.1", server.port)
    try:
        return await pool.request("POST", "/v1/x", body=b"{}", timeout_s=timeout_s)
    finally:
        await pool.aclose()


async def calls(server: ScriptedServer, n: int, timeout_s: float = 2.0) -> list[object]:
    """``n`` calls in a row on one pool; an exception is returned in place of its answer."""
    pool = ConnectionPool("127.0.0.1", server.port)
    out: list[object] = []
    try:
        for _ in range(n):
            try:
                out.append(await pool.request("POST", "/v1/x", body=b"{}", timeout_s=timeout_s))
            except httpx.HTTPError as exc:
                out.append(exc)
            await asyncio.sleep(0.02)
    finally:
        await pool.aclose()
    return out


async def test_chunked_answer_with_extensions_and_trailers_is_read_whole() -> None:
    body = (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        b'3;name=value\r\n{"a\r\n4\r\n": 1\r\n1\r\n}\r\n0\r\nx-trailer: yes\r\n\r\n'
    )
    async with ScriptedServer(body, OK) as server:
        first, second = await calls(server, 2)
    assert isinstance(first, httpx.Response) and first.json() == {"a": 1}
    assert isinstance(second, httpx.Response) and second.json() == {}
    assert server.connections == 1  # the connection stayed in step after the trailers


async def test_content_length_and_chunked_together_is_refused_and_not_reused() -> None:
    smuggled = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n"
    smuggled += b"transfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    async with ScriptedServer(smuggled, OK) as server:
        first, second = await calls(server, 2)
    assert isinstance(first, httpx.RemoteProtocolError)
    assert isinstance(second, httpx.Response) and second.status_code == 200
    assert server.connections == 2


async def test_a_reused_connection_closed_unanswered_is_retried_on_a_new_one() -> None:
    async with ScriptedServer(OK, None) as server:  # hangs up on the 2nd request
        answers = await calls(server, 2)
    assert all(isinstance(a, httpx.Response) and a.status_code == 200 for a in answers)
    assert len(server.requests) == 3 and server.connections == 2


async def test_a_fresh_connection_closed_unanswered_is_reported_not_resent() -> None:
    async with ScriptedServer(None) as server:
        with pytest.raises(httpx.RemoteProtocolError):
            await call(server)
    assert len(server.requests) == 1  # the provider's own retry policy decides the rest


async def test_connection_close_header_is_honoured() -> None:
    closing = OK.replace(b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n")
    async with ScriptedServer(closing, OK) as server:
        answers = await calls(server, 2)
    assert all(isinstance(a, httpx.Response) for a in answers)
    assert server.connections == 2


async def test_a_5xx_with_its_body_read_keeps_the_connection() -> None:
    error = b"HTTP/1.1 503 Unavailable\r\ncontent-length: 4\r\n\r\nbusy"
    async with ScriptedServer(error, OK) as server:
        first, second = await calls(server, 2)
    assert isinstance(first, httpx.Response) and first.status_code == 503
    assert first.text == "busy"
    assert isinstance(second, httpx.Response) and second.status_code == 200
    assert server.connections == 1


async def test_a_timeout_mid_body_discards_the_connection() -> None:
    partial = b'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"a":'
    async with ScriptedServer(partial, OK) as server:
        first = await calls(server, 1, timeout_s=0.3)
    assert isinstance(first[0], httpx.ReadTimeout)
    server2 = ScriptedServer(partial, OK, stall_after=True)
    async with server2:
        pool = ConnectionPool("127.0.0.1", server2.port)
        with pytest.raises(httpx.ReadTimeout):
            await pool.request("POST", "/v1/x", body=b"{}", timeout_s=0.3)
        server2.stall_after = False
        answer = await pool.request("POST", "/v1/x", body=b"{}", timeout_s=2)
        await pool.aclose()
    assert answer.status_code == 200 and answer.json() == {}  # not the rest of the 1st body
    assert server2.connections == 2


async def test_answers_without_a_body() -> None:
    no_content = b"HTTP/1.1 204 No Content\r\n\r\n"
    not_modified = b"HTTP/1.1 304 Not Modified\r\n\r\n"
    async with ScriptedServer(no_content, not_modified, OK) as server:
        answers = await calls(server, 3)
    assert [a.status_code for a in answers if isinstance(a, httpx.Response)] == [204, 304, 200]
    assert [a.content for a in answers if isinstance(a, httpx.Response)][:2] == [b"", b""]
    assert server.connections == 1


@pytest.mark.parametrize(
    ("target", "headers", "error"),
    [
        ("/v1/x", {"X-Note": "a\r\nX-Evil: 1"}, httpx.LocalProtocolError),
        ("/v1/x", {"X-Note": "a\nX-Evil: 1"}, httpx.LocalProtocolError),
        ("/v1/x HTTP/1.1\r\nX-Evil: 1\r\n\r\nGET /", {}, httpx.InvalidURL),
        ("/v1/a b", {}, httpx.InvalidURL),
        ("http://other.example/v1", {}, httpx.InvalidURL),
    ],
)
async def test_cr_lf_in_a_header_or_the_path_is_refused(
    target: str, headers: dict[str, str], error: type[Exception]
) -> None:
    async with ScriptedServer() as server:
        pool = ConnectionPool("127.0.0.1", server.port)
        with pytest.raises(error):
            await pool.request("POST", target, body=b"{}", headers=headers, timeout_s=2)
        await pool.aclose()
    assert server.requests == []  # nothing reached the server


async def test_oversized_answer_headers_are_refused() -> None:
    huge = b"HTTP/1.1 200 OK\r\nx-big: " + b"a" * 70_000 + b"\r\ncontent-length: 2\r\n\r\n{}"
    async with ScriptedServer(huge) as server:
        with pytest.raises(httpx.RemoteProtocolError):
            await call(server)


async def test_malformed_chunk_size_is_refused() -> None:
    bad = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n-2\r\n{}\r\n0\r\n\r\n"
    async with ScriptedServer(bad) as server:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            await call(server)
