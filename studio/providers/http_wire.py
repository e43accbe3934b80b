"""HTTP/1.1 on the wire for :mod:`studio.providers.http_pool`: one socket, and strict parsing.

:class:`_Connection` reads a socket through a small buffer (an asyncio
Protocol); :func:`_read_head` parses an answer's status line and headers and
refuses what two parsers could read differently; :func:`_read_chunked` and
:func:`_chunk_size` frame chunked bodies; :func:`_check_request` refuses a
request a caller could split; :func:`_mapped` turns a read failure into the
``httpx`` error the providers already map. Split from the pool to keep each
module small; the names stay private to the two modules.
"""

from __future__ import annotations

import asyncio
import re
import zlib
from dataclasses import dataclass
from typing import cast

import httpx

__all__: list[str] = []

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
