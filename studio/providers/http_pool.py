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
import re
import urllib.request
import zlib
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httpx

__all__ = ["ConnectionPool", "StreamedAnswer", "pool_target"]

MAX_HEADER_BYTES = 64 * 1024
USER_AGENT = "prompt-studio"

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 token: names, methods
_TARGET = re.compile(r"/[\x21-\x7e]*")  # origin-form, no space or control character
_BAD_VALUE = re.compile(r"[\r\n\x00]")
_DIGITS = re.compile(r"[0-9]+")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")


def _check_request(method: str, target: str, headers: dict[str, str]) -> None:
    """Refuse what would let a caller split this request or write a second one."""
    if not _TOKEN.fullmatch(method):
        raise httpx.LocalProtocolError(f"method {method[:20]!r} is not a token")
    if not _TARGET.fullmatch(target):
        raise httpx.InvalidURL(f"request target {target[:80]!r} has a space or control character")
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name):
            raise httpx.LocalProtocolError(f"header name {name[:40]!r} is not a token")
        if _BAD_VALUE.search(value):
            raise httpx.LocalProtocolError(f"header {name!r} has a CR, LF or NUL in its value")


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


class _Connection(asyncio.Protocol):
    """One socket, read through a small buffer (a Protocol: no StreamWriter that would
    try to close itself on a loop that has already closed)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.waiter: asyncio.Future[None] | None = None
        self.no_wait = False  # reading only what has arrived: raise _WouldWait instead

    # -- protocol callbacks --------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- reading ---------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        return (
            self.transport is not None
            and not self.transport.is_closing()
            and not self.eof
            and not self.buffer  # bytes nobody asked for: the connection is out of step
        )

    async def _more(self) -> None:
        if self.eof:
            raise asyncio.IncompleteReadError(bytes(self.buffer), None)
        if self.no_wait:
            raise _WouldWait
        self.waiter = self.loop.create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None

    async def readuntil(self, separator: bytes, limit: int = MAX_HEADER_BYTES) -> bytes:
        start = 0
        while True:
            found = self.buffer.find(separator, start)
            if found >= 0:
                end = found + len(separator)
                if end > limit:
                    raise asyncio.LimitOverrunError("separator not found within the limit", 0)
                data = bytes(self.buffer[:end])
                del self.buffer[:end]
                return data
            if len(self.buffer) > limit:
                raise asyncio.LimitOverrunError("separator not found within the limit", 0)
            start = max(0, len(self.buffer) - len(separator) + 1)
            await self._more()

    async def readexactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            await self._more()
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    async def read_some(self) -> bytes:
        """What has arrived (waiting for something); b"" once the server closed."""
        while not self.buffer and not self.eof:
            await self._more()
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    async def read_to_eof(self) -> bytes:
        while not self.eof:
            await self._more()
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class _WouldWait(Exception):
    """Reading on would wait for the server (a connection being drained)."""


class _ServerClosed(Exception):
    """The server closed the connection before sending a single byte of answer."""


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


@dataclass
class _Head:
    """What an answer's status line and headers say about it and its framing."""

    status: int
    headers: list[tuple[str, str]]
    length: int | None
    chunked: bool
    keep: bool
    encoding: str
    timeout_s: float = 0.0
    done: bool = False


async def _read_head(reader: _Connection, raw: bytes) -> _Head:
    """Parse an answer's head (skipping interim 1xx answers); refuse what two parsers
    could read differently."""
    while True:
        lines = raw[:-4].decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/1."):
            raise ValueError(f"status line {lines[0][:80]!r}")
        status = int(rest[:3])
        if not 100 <= status < 200 or status == 101:
            break
        raw = await reader.readuntil(b"\r\n\r\n")  # skip interim answers (100 Continue)
    headers: list[tuple[str, str]] = []
    length: int | None = None
    chunked = False
    connection = ""
    encoding = ""
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        # No space before the colon, no folded lines: both let two parsers disagree.
        if not sep or not _TOKEN.fullmatch(name):
            raise ValueError(f"header line {line[:80]!r}")
        value = value.strip(" \t")
        lower = name.lower()
        if lower == "content-length":
            if not _DIGITS.fullmatch(value) or (length is not None and int(value) != length):
                raise ValueError(f"Content-Length {value[:40]!r}")
            length = int(value)
        elif lower == "transfer-encoding":
            if value.lower() != "chunked":  # the only coding a client can frame by
                raise ValueError(f"Transfer-Encoding {value[:40]!r}")
            chunked = True
        elif lower == "connection":
            connection = value.lower()
        elif lower == "content-encoding":
            encoding = value.lower()
        headers.append((name, value))
    if chunked and length is not None:  # RFC 9112 6.3: a smuggling attempt; refuse it
        raise ValueError("both Content-Length and Transfer-Encoding")
    keep = (version == "HTTP/1.1" and "close" not in connection) or (
        version == "HTTP/1.0" and "keep-alive" in connection
    )
    return _Head(status, headers, length, chunked, keep, encoding)


def _mapped(exc: BaseException, timeout_s: float) -> BaseException:
    """A failure while reading an answer as the httpx error the providers map."""
    if isinstance(exc, _ServerClosed | httpx.HTTPError):
        return exc
    if isinstance(exc, TimeoutError):
        return httpx.ReadTimeout(f"no answer within {timeout_s:g}s")
    if isinstance(exc, ConnectionError | asyncio.IncompleteReadError):
        return httpx.ReadError(f"the connection broke during the answer ({type(exc).__name__})")
    if isinstance(exc, asyncio.LimitOverrunError):
        return httpx.RemoteProtocolError("the answer's headers are too large")
    if isinstance(exc, ValueError | zlib.error):
        return httpx.RemoteProtocolError(f"malformed HTTP answer ({exc})")
    return exc


def _chunk_size(size_line: bytes) -> int:
    digits = size_line[:-2].split(b";", 1)[0].rstrip(b" \t")  # ";ext" is ignored
    if not _CHUNK_SIZE.fullmatch(digits):
        raise ValueError(f"chunk size {size_line[:40]!r}")
    return int(digits, 16)


async def _read_chunked(reader: _Connection) -> bytes:
    parts: list[bytes] = []
    while True:
        size = _chunk_size(await reader.readuntil(b"\r\n"))
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass  # trailers
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise ValueError("chunk not followed by CRLF")
