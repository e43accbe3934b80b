"""HTTP plumbing shared by the providers that call servers.

:class:`HTTPProvider` sends JSON with a timeout, bounds the calls in flight
per connection, and retries transient faults with exponential backoff and
full jitter: 429 (honouring ``Retry-After``), 5xx, timeouts, dropped
connections and malformed bodies. Other 4xx answers are not retried; they
become :class:`~studio.core.errors.ProviderRequestError` (or ``ProviderAuthError``)
carrying the provider's own message.

Credentials go only to the connection's own server: the headers of
:meth:`HTTPProvider.auth_headers` are sent only when the request's origin
(scheme, host, port) is the base URL's, and redirects are never followed.

:meth:`HTTPProvider.stream_events` sends a request answered with server-sent events
and yields them as they arrive, with the same error mapping and retries (only before
the first event went on), the same credential rule, and the connection's slot held
until the stream ends. A server that ignores ``stream`` and answers with one JSON
body gives one event named :data:`WHOLE_ANSWER` holding that body. Plain-http servers
stream over the lean pool (:meth:`~studio.providers.http_pool.ConnectionPool.stream`)
like whole calls; TLS, proxies and custom transports through httpx.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import json
import logging
import random
import time
import weakref
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import httpx

from studio.core.errors import (
    ConfigError,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimitError,
    ProviderRequestError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from studio.providers.base import Provider, connection_limiter
from studio.providers.http_pool import ConnectionPool, pool_target
from studio.providers.sse import WHOLE_ANSWER, SSEvent, lines_of, parse_sse

__all__ = [
    "WHOLE_ANSWER",
    "HTTPProvider",
    "SSEvent",
    "parse_retry_after",
    "parse_sse",
    "same_origin",
]

log = logging.getLogger(__name__)

MAX_RETRY_AFTER_S = 120.0
KEEPALIVE = 64  # idle connections kept per loop when the connection sets no limit


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    scheme = url.scheme.lower()
    return scheme, url.host.lower(), url.port or _DEFAULT_PORTS.get(scheme)


def same_origin(base_url: str | None, path: str) -> bool:
    """True when a request for ``path`` (relative, or an absolute URL) would go to
    ``base_url``'s own scheme, host and port."""
    if not base_url:
        return False
    if path.startswith("/") and not path.startswith("//"):
        # An absolute path (what providers send): relative, so only the base URL counts.
        # Decided without parsing ``path``: two httpx.URL parses cost ~3% of a request.
        return _has_host(base_url)
    return _same_origin(base_url, path)


@functools.lru_cache(maxsize=256)
def _has_host(base_url: str) -> bool:
    try:
        return bool(httpx.URL(base_url).host)
    except (httpx.InvalidURL, TypeError, ValueError):
        return False


def _same_origin(base_url: str, path: str) -> bool:
    try:
        base = httpx.URL(base_url)
        target = httpx.URL(path)
        if not target.is_absolute_url:
            return bool(base.host)
        return bool(base.host) and _origin(base) == _origin(target)
    except (httpx.InvalidURL, TypeError, ValueError):
        return False


class _Transient(Exception):
    def __init__(self, error: ProviderError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


class HTTPProvider(Provider):
    """A provider that speaks JSON over HTTP."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Clients belong to an event loop; the studio runs several loops (CLI,
        # Streamlit threads, the gateway), so keep one per loop. The connection's
        # own limit, if it has one, is process-wide (see connection_limiter).
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        self._limiter = connection_limiter(self.name, self.options.concurrency)
        # Plain-http servers without a custom transport get the lean keep-alive pool.
        self._target = pool_target(self.base_url) if self.transport is None else None
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ConnectionPool] = (
            weakref.WeakKeyDictionary()
        )

    # -- subclasses customise these -------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def error_message(self, response: httpx.Response) -> str:
        """The provider's own words from an error response."""
        try:
            body = response.json()
        except ValueError:
            return response.text[:300].strip() or response.reason_phrase
        if isinstance(body, dict):
            err = body.get("error", body)
            if isinstance(err, dict):
                msg = err.get("message") or err.get("detail") or err.get("msg")
                if msg:
                    return str(msg)
            elif isinstance(err, str):
                return err
            if "detail" in body:
                return str(body["detail"])
        return json.dumps(body)[:300]

    # -- plumbing ----------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            client = httpx.AsyncClient(
                base_url=self.base_url or "",
                timeout=httpx.Timeout(self.options.timeout_s),
                transport=self.transport,
                follow_redirects=False,  # a redirect must not carry the key to another host
                limits=httpx.Limits(
                    # No connection limit of its own: the caller's concurrency bounds it.
                    max_connections=self.options.concurrency and self.options.concurrency * 2,
                    max_keepalive_connections=self.options.concurrency or KEEPALIVE,
                ),
            )
            self._clients[loop] = client
        return client

    def _pool(self) -> ConnectionPool | None:
        if self._target is None:
            return None
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            host, port, _ = self._target
            pool = ConnectionPool(host, port, max_idle=self.options.concurrency or KEEPALIVE)
            self._pools[loop] = pool
        return pool

    async def _http_request(
        self, method: str, path: str, json_body: Any, headers: dict[str, str]
    ) -> httpx.Response:
        pool = self._pool()
        if pool is None or self._target is None:
            return await self._client().request(method, path, json=json_body, headers=headers)
        body = b""
        if json_body is not None:
            body = json.dumps(json_body, ensure_ascii=False, separators=(",", ":")).encode()
            headers = {"Content-Type": "application/json", **headers}
        return await pool.request(
            method,
            self._target[2] + (path if path.startswith("/") else "/" + path),
            body=body,
            headers=headers,
            timeout_s=self.options.timeout_s,
        )

    def _slot(self) -> contextlib.AbstractAsyncContextManager[None]:
        """One of the connection's slots, or nothing to wait for when it sets no limit."""
        if self._limiter is None:
            return contextlib.nullcontext()
        return self._limiter.slot()

    async def aclose(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        client = self._clients.pop(loop, None)
        if client is not None:
            await client.aclose()
        pool = self._pools.pop(loop, None)
        if pool is not None:
            await pool.aclose()

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER_S) + random.uniform(0, 0.1)
        cap = min(self.options.retry_max_delay_s, self.options.retry_base_delay_s * (2**attempt))
        return random.uniform(0, cap)  # full jitter

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """Send one request (retrying transient faults) and return the JSON body."""
        attempts = self.options.max_retries + 1
        for attempt in range(attempts):
            try:
                # The slot is held for the call only, not while backing off, so a
                # long Retry-After does not starve the connection's other calls.
                async with self._slot():
                    return await self._once(method, path, json_body, headers)
            except _Transient as transient:
                if attempt + 1 >= attempts:
                    raise transient.error from None
                delay = self._backoff(attempt, transient.retry_after)
                log.info(
                    "%s: transient failure (%s); retry %d/%d in %.2fs",
                    self.name,
                    type(transient.error).__name__,
                    attempt + 1,
                    attempts - 1,
                    delay,
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _once(
        self, method: str, path: str, json_body: Any, headers: dict[str, str] | None
    ) -> Any:
        auth = self.auth_headers() if same_origin(self.base_url, path) else {}
        all_headers = {**auth, **(headers or {})}
        try:
            response = await self._http_request(method, path, json_body, all_headers)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise self._transport_error(exc) from exc
        self._check_status(response)
        try:
            return response.json()
        except ValueError as exc:
            raise _Transient(
                ProviderUnavailableError(
                    "answered with a body that is not valid JSON",
                    provider=self.name,
                    status_code=response.status_code,
                    provider_message=response.text[:200],
                )
            ) from exc

    def _transport_error(self, exc: httpx.HTTPError | httpx.InvalidURL) -> Exception:
        """What a failure to get an answer becomes (transient ones are retried)."""
        if isinstance(exc, httpx.TimeoutException):
            return _Transient(
                ProviderTimeoutError(
                    f"no answer within {self.options.timeout_s:g}s", provider=self.name
                )
            )
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            return ConfigError(
                f"Connection '{self.name}' has an unusable base URL {self.base_url!r} ({exc}).",
                hint="Use a URL such as http://localhost:8000/v1.",
            )
        if isinstance(exc, httpx.TransportError | httpx.StreamError):
            return _Transient(
                ProviderUnavailableError(
                    f"could not reach {self.base_url} ({type(exc).__name__}: {exc})",
                    provider=self.name,
                    hint="Check that the server is running and the base URL is right.",
                )
            )
        return ProviderUnavailableError(
            f"the call to {self.base_url} failed ({type(exc).__name__})", provider=self.name
        )

    def _check_status(self, response: httpx.Response) -> None:
        """Raise the error an HTTP error status stands for (its body must be read)."""
        status = response.status_code
        if status == 429:
            raise _Transient(
                ProviderRateLimitError(
                    "rate limited (HTTP 429) after retries",
                    provider=self.name,
                    status_code=status,
                    provider_message=self.error_message(response),
                ),
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )
        if status >= 500:
            raise _Transient(
                ProviderUnavailableError(
                    f"server error (HTTP {status})",
                    provider=self.name,
                    status_code=status,
                    provider_message=self.error_message(response),
                ),
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )
        if status in (401, 403):
            raise ProviderAuthError(
                f"the API key was refused (HTTP {status})",
                provider=self.name,
                status_code=status,
                provider_message=self.error_message(response),
                hint="Check the key of this connection.",
            )
        if status >= 400:
            raise ProviderRequestError(
                f"the request was refused (HTTP {status})",
                provider=self.name,
                status_code=status,
                provider_message=self.error_message(response),
            )

    # -- streaming -----------------------------------------------------------------

    async def stream_events(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> AsyncGenerator[SSEvent, None]:
        """Send one request answered with server-sent events; yield them as they arrive.

        Faults are retried as :meth:`request_json` retries them, but only while nothing
        was yielded: once part of an answer went on, a fault ends the stream with its
        error. The connection's slot is held until the stream ends. Closing the iterator
        (a client that went away) closes the upstream connection, which stops the call.
        """
        attempts = self.options.max_retries + 1
        for attempt in range(attempts):
            yielded = False
            try:
                async with (
                    self._slot(),
                    aclosing(self._stream_once(method, path, json_body, headers)) as events,
                ):
                    async for event in events:
                        yielded = True
                        yield event
                return
            except _Transient as transient:
                if yielded or attempt + 1 >= attempts:
                    raise transient.error from None
                delay = self._backoff(attempt, transient.retry_after)
                log.info(
                    "%s: transient failure before the stream began (%s); retry %d/%d in %.2fs",
                    self.name,
                    type(transient.error).__name__,
                    attempt + 1,
                    attempts - 1,
                    delay,
                )
                await asyncio.sleep(delay)

    async def _stream_once(
        self, method: str, path: str, json_body: Any, headers: dict[str, str] | None
    ) -> AsyncGenerator[SSEvent, None]:
        auth = self.auth_headers() if same_origin(self.base_url, path) else {}
        all_headers = {**auth, "Accept": "text/event-stream", **(headers or {})}
        pool = self._pool()
        events = (
            self._stream_httpx(method, path, json_body, all_headers)
            if pool is None
            else self._stream_pool(pool, method, path, json_body, all_headers)
        )
        async with aclosing(events) as stream:
            async for event in stream:
                yield event

    async def _stream_pool(
        self,
        pool: ConnectionPool,
        method: str,
        path: str,
        json_body: Any,
        headers: dict[str, str],
    ) -> AsyncGenerator[SSEvent, None]:
        """A stream over the lean pool (plain http): no httpx request, response or line
        decoder between the socket and the events (~2 ms to the first event less)."""
        assert self._target is not None
        body = b""
        if json_body is not None:
            body = json.dumps(json_body, ensure_ascii=False, separators=(",", ":")).encode()
            headers = {"Content-Type": "application/json", **headers}
        target = self._target[2] + (path if path.startswith("/") else "/" + path)
        try:
            async with pool.stream(
                method, target, body=body, headers=headers, timeout_s=self.options.timeout_s
            ) as answer:
                kind = next((v for k, v in answer.headers if k.lower() == "content-type"), "")
                if answer.status_code >= 400 or "text/event-stream" not in kind:
                    content = b"".join([piece async for piece in answer.chunks])
                    whole = httpx.Response(
                        answer.status_code, headers=answer.headers, content=content
                    )
                    self._check_status(whole)
                    # A server that ignores ``stream`` answers whole: one event holds it all.
                    yield SSEvent(WHOLE_ANSWER, whole.text)
                    return
                async with aclosing(parse_sse(lines_of(answer.chunks))) as events:
                    async for event in events:
                        yield event
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise self._transport_error(exc) from exc

    async def _stream_httpx(
        self, method: str, path: str, json_body: Any, headers: dict[str, str]
    ) -> AsyncGenerator[SSEvent, None]:
        """A stream through httpx (TLS, proxies, custom transports)."""
        try:
            client = self._client()
            request = client.build_request(method, path, json=json_body, headers=headers)
            response = await client.send(request, stream=True)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise self._transport_error(exc) from exc
        try:
            if response.status_code >= 400:
                try:
                    await response.aread()
                except httpx.HTTPError as exc:
                    raise self._transport_error(exc) from exc
                self._check_status(response)
            kind = response.headers.get("content-type", "")
            if "text/event-stream" not in kind:
                # A server that ignores ``stream`` answers whole: one event holds it all.
                try:
                    await response.aread()
                except httpx.HTTPError as exc:
                    raise self._transport_error(exc) from exc
                yield SSEvent(WHOLE_ANSWER, response.text)
                return
            try:
                async with aclosing(parse_sse(response.aiter_lines())) as events:
                    async for event in events:
                        yield event
            except httpx.HTTPError as exc:
                raise self._transport_error(exc) from exc
        finally:
            await response.aclose()
