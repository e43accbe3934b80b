"""A lean keep-alive HTTP/1.1 client for providers reached over plain ``http://``.

Local model servers (vLLM, llama.cpp, Ollama, the studio's own fakes) are
called many times a second from the gateway's event loop. ``httpx`` spends
most of a loopback call in its generic machinery (connection-pool scans that
poll every idle socket, cookie handling, URL merging, per-call async-library
detection), so :class:`HTTPProvider` sends plain-http JSON calls through this
pool instead: one event loop's idle connections in a stack, reused until the
server closes them. :meth:`ConnectionPool.request` reads a whole answer;
:meth:`ConnectionPool.stream` hands over the body as it arrives (server-sent
events). TLS, proxies and custom transports (tests) still go through ``httpx``.

Failures raise the ``httpx`` exception classes the provider already maps
(``ConnectError``, ``ConnectTimeout``, ``ReadTimeout``, ``WriteTimeout``,
``RemoteProtocolError``), so retries and error messages are the same either
way. A reused connection that the server had closed while idle is retried
once on a fresh connection before anything is reported.

Kept hand-written on purpose (issue 10): aiohttp behind the same interface cost
the gateway ~27% of its requests/s and +0.2 ms p50 (``bench/bench_http_client.py``,
``bench/bench_gateway.py``). So it is strict instead: requests with CR/LF or
spaces in the path or a header are refused before anything is sent; answers with
both Content-Length and Transfer-Encoding, a coding other than ``chunked``, an
unparseable length or chunk size, or headers over 64 KiB are refused and their
connection closed; ``tests/providers/test_http_pool.py`` covers each case.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.request
import zlib
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from studio.providers.http_wire import (
    _check_request,
    _chunk_size,
    _Connection,
    _Head,
    _mapped,
    _read_chunked,
    _read_head,
    _ServerClosed,
)

__all__ = ["ConnectionPool", "StreamedAnswer", "pool_target"]

USER_AGENT = "prompt-studio"


def pool_target(base_url: str | None) -> tuple[str, int, str] | None:
    """``(host, port, path prefix)`` when ``base_url`` can use the pool, else None.

    Only plain ``http://`` URLs qualify, and only when no proxy is configured
    for them (``HTTP_PROXY`` and friends are honoured by going through httpx).
    """
    if not base_url:
        return None
    parts = urlsplit(base_url)
    if parts.scheme != "http" or not parts.hostname or parts.query or parts.fragment:
        return None
    if parts.username or parts.password:
        return None
    proxies = urllib.request.getproxies()
    if ("http" in proxies or "all" in proxies) and not urllib.request.proxy_bypass(parts.hostname):
        return None
    try:
        port = parts.port or 80
    except ValueError:
        return None
    return parts.hostname, port, parts.path.rstrip("/")


class ConnectionPool:
    """Keep-alive connections to one ``host:port``, for one event loop."""

    def __init__(self, host: str, port: int, *, max_idle: int = 64) -> None:
        self.host = host
        self.port = port
        self.max_idle = max_idle
        self._host_header = (host if ":" not in host else f"[{host}]") + (
            f":{port}" if port != 80 else ""
        )
        self._idle: deque[_Connection] = deque()
        self.opened = 0  # connections opened so far (tests and benchmarks read it)

    async def request(
        self,
        method: str,
        target: str,
        *,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        timeout_s: float,
    ) -> httpx.Response:
        """Send one request and read the whole answer (within ``timeout_s``)."""
        head = self._head(method, target, body, headers)
        while self._idle:
            conn = self._idle.pop()
            if not conn.usable:
                conn.close()
                continue
            try:
                return await self._exchange(conn, method, head, body, timeout_s)
            except _ServerClosed:
                continue  # closed while idle: try the next one, or a fresh connection
        conn = await self._connect(timeout_s)
        try:
            return await self._exchange(conn, method, head, body, timeout_s)
        except _ServerClosed:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response."
            ) from None

    def _head(self, method: str, target: str, body: bytes, headers: dict[str, str] | None) -> bytes:
        _check_request(method, target, headers or {})
        return (
            f"{method} {target} HTTP/1.1\r\nHost: {self._host_header}\r\n"
            f"User-Agent: {USER_AGENT}\r\n"
            + ("" if headers and "Accept" in headers else "Accept: */*\r\n")
            + "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
            + (f"Content-Length: {len(body)}\r\n\r\n" if body or method != "GET" else "\r\n")
        ).encode("latin-1")

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        target: str,
        *,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        timeout_s: float,
    ) -> AsyncIterator[StreamedAnswer]:
        """Send one request; the answer's status and headers, and its body as it arrives.

        ``timeout_s`` bounds the wait for the headers and then each wait for more of the
        body. The connection goes back to the pool only when the body was read to its
        end; leaving the block earlier (a client that went away) closes it, which stops
        the server's work on it.
        """
        head = self._head(method, target, body, headers)
        opened: tuple[_Connection, _Head] | None = None
        while self._idle and opened is None:
            conn = self._idle.pop()
            if not conn.usable:
                conn.close()
                continue
            try:
                opened = conn, await self._start(conn, method, head, body, timeout_s)
            except _ServerClosed:
                continue  # closed while idle: try the next one, or a fresh connection
        if opened is None:
            conn = await self._connect(timeout_s)
            try:
                opened = conn, await self._start(conn, method, head, body, timeout_s)
            except _ServerClosed:
                raise httpx.RemoteProtocolError(
                    "Server disconnected without sending a response."
                ) from None
        conn, answer = opened
        answer.timeout_s = timeout_s
        chunks = self._body(conn, answer)
        try:
            yield StreamedAnswer(answer.status, answer.headers, chunks)
        finally:
            if not answer.done and answer.keep:
                # Left before the end of the body, as a client stops reading at
                # ``data: [DONE]`` before the last chunk's terminator: finish with what has
                # already arrived (never waiting) so the connection can be reused.
                conn.no_wait = True
                with contextlib.suppress(Exception):
                    async for _ in chunks:
                        pass
                conn.no_wait = False
            await chunks.aclose()
            if answer.done and answer.keep and len(self._idle) < self.max_idle:
                self._idle.append(conn)
            else:
                conn.close()

    async def _start(
        self, conn: _Connection, method: str, head: bytes, body: bytes, timeout_s: float
    ) -> _Head:
        """Send the request and read the answer's head."""
        try:
            async with asyncio.timeout(timeout_s):
                conn.write(head + body)
                try:
                    first = await conn.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError as exc:
                    if not exc.partial:
                        raise _ServerClosed from exc
                    raise
                except (ConnectionResetError, BrokenPipeError) as exc:
                    raise _ServerClosed from exc
                answer = await _read_head(conn, first)
        except Exception as exc:
            conn.close()
            mapped = _mapped(exc, timeout_s)
            if mapped is exc:
                raise
            raise mapped from exc
        except BaseException:
            conn.close()
            raise
        if method == "HEAD" or answer.status in (204, 304):
            answer.length, answer.chunked = 0, False
        return answer

    async def _body(self, conn: _Connection, answer: _Head) -> AsyncGenerator[bytes, None]:
        """The body's bytes as they arrive (chunked framing and gzip undone)."""
        inflate = (
            zlib.decompressobj(47 if answer.encoding == "gzip" else zlib.MAX_WBITS)
            if answer.encoding in ("gzip", "deflate")
            else None
        )
        try:
            async for piece in self._framed(conn, answer):
                data = inflate.decompress(piece) if inflate is not None else piece
                if data:
                    yield data
            if inflate is not None and (tail := inflate.flush()):
                yield tail
            answer.done = True
        except Exception as exc:
            mapped = _mapped(exc, answer.timeout_s)
            if mapped is exc:
                raise
            raise mapped from exc

    @staticmethod
    async def _framed(conn: _Connection, answer: _Head) -> AsyncIterator[bytes]:
        timeout_s = answer.timeout_s
        if answer.chunked:
            while True:
                async with asyncio.timeout(timeout_s):
                    size_line = await conn.readuntil(b"\r\n")
                size = _chunk_size(size_line)
                if size == 0:
                    async with asyncio.timeout(timeout_s):
                        while (await conn.readuntil(b"\r\n")) != b"\r\n":
                            pass  # trailers
                    return
                left = size
                while left:
                    async with asyncio.timeout(timeout_s):
                        while not conn.buffer and not conn.eof:
                            await conn._more()
                    if not conn.buffer:
                        raise asyncio.IncompleteReadError(b"", left)
                    piece = bytes(conn.buffer[:left])
                    del conn.buffer[: len(piece)]
                    left -= len(piece)
                    yield piece
                async with asyncio.timeout(timeout_s):
                    if await conn.readexactly(2) != b"\r\n":
                        raise ValueError("chunk not followed by CRLF")
        elif answer.length is not None:
            left = answer.length
            while left:
                async with asyncio.timeout(timeout_s):
                    while not conn.buffer and not conn.eof:
                        await conn._more()
                if not conn.buffer:
                    raise asyncio.IncompleteReadError(b"", left)
                piece = bytes(conn.buffer[:left])
                del conn.buffer[: len(piece)]
                left -= len(piece)
                yield piece
        else:
            answer.keep = False  # the body ends when the server closes the connection
            while True:
                async with asyncio.timeout(timeout_s):
                    piece = await conn.read_some()
                if not piece:
                    return
                yield piece

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop().close()

    async def _connect(self, timeout_s: float) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout_s):
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop), self.host, self.port
                )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"no connection within {timeout_s:g}s") from exc
        except OSError as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        self.opened += 1
        return conn

    async def _exchange(
        self, conn: _Connection, method: str, head: bytes, body: bytes, timeout_s: float
    ) -> httpx.Response:
        keep = False
        try:
            async with asyncio.timeout(timeout_s):
                conn.write(head + body)
                try:
                    first = await conn.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError as exc:
                    if not exc.partial:
                        raise _ServerClosed from exc
                    raise
                except (ConnectionResetError, BrokenPipeError) as exc:
                    raise _ServerClosed from exc
                response, keep = await self._read_response(conn, first, method)
        except TimeoutError as exc:
            raise httpx.ReadTimeout(f"no answer within {timeout_s:g}s") from exc
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            raise httpx.ReadError(
                f"the connection broke during the answer ({type(exc).__name__})"
            ) from exc
        except asyncio.LimitOverrunError as exc:
            raise httpx.RemoteProtocolError("the answer's headers are too large") from exc
        except (ValueError, zlib.error) as exc:
            raise httpx.RemoteProtocolError(f"malformed HTTP answer ({exc})") from exc
        finally:
            if keep and len(self._idle) < self.max_idle:
                self._idle.append(conn)
            else:
                conn.close()
        return response

    @staticmethod
    async def _read_response(
        reader: _Connection, raw: bytes, method: str
    ) -> tuple[httpx.Response, bool]:
        answer = await _read_head(reader, raw)
        headers = answer.headers
        if method == "HEAD" or answer.status in (204, 304):
            content = b""
        elif answer.chunked:
            content = await _read_chunked(reader)
        elif answer.length is not None:
            content = await reader.readexactly(answer.length)
        else:
            content, answer.keep = await reader.read_to_eof(), False
        if answer.encoding in ("gzip", "deflate") and content:
            content = zlib.decompress(content, 47 if answer.encoding == "gzip" else zlib.MAX_WBITS)
            headers = [(k, v) for k, v in headers if k.lower() != "content-encoding"]
        return httpx.Response(answer.status, headers=headers, content=content), answer.keep


@dataclass
class StreamedAnswer:
    """An answer being read: its status, headers, and its body as it arrives."""

    status_code: int
    headers: list[tuple[str, str]]
    chunks: AsyncGenerator[bytes, None]
