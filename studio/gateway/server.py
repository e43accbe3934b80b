"""Running the gateway: standalone (``studio serve``) or embedded in the UI process.

Several workers, or several machines, may serve the same database: endpoint
and key lookups are cached for under a second and re-read, the request log is
written by each process for its own requests, and the per-key rate limits are
counted in the database on PostgreSQL, so they hold across workers and machines
(:mod:`studio.services.rate_limits`). On SQLite they are counted per process: with N
workers there a key may get up to N times its requests-per-minute limit.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import TYPE_CHECKING

import uvicorn

from studio.core.settings import get_settings

if TYPE_CHECKING:
    from studio.gateway.request_log import LogStats

__all__ = ["base_url", "ensure_embedded_gateway", "request_log_stats", "serve"]

log = logging.getLogger(__name__)

# Idle keep-alive connections stay open this long. uvicorn's 5 s default lets a busy
# client's next request race the server closing the connection (the client then
# sees a dropped connection); 30 s keeps clients and proxies on reused connections.
KEEP_ALIVE_S = 30

_embedded_lock = threading.Lock()
_embedded: tuple[uvicorn.Server, threading.Thread] | None = None


def _loop() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def _http() -> str:
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"


def base_url(host: str | None = None, port: int | None = None) -> str:
    settings = get_settings()
    host = host or settings.gateway_host
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host == "::" else host)
    return f"http://{shown}:{port or settings.gateway_port}"


def _listening(host: str, port: int) -> bool:
    probe = "127.0.0.1" if host in ("0.0.0.0", "") else host
    try:
        with socket.create_connection((probe, port), timeout=0.3):
            return True
    except OSError:
        return False


def serve(host: str | None = None, port: int | None = None, workers: int = 1) -> None:
    """Run the gateway in the foreground until interrupted (uvicorn)."""
    settings = get_settings()
    host = host or settings.gateway_host
    port = port or settings.gateway_port
    uvicorn.run(
        "studio.gateway.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=max(1, workers),
        loop=_loop(),
        http=_http(),
        log_level="warning",
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_S,
    )


def ensure_embedded_gateway(timeout_s: float = 10.0) -> str:
    """Start the gateway in a daemon thread of this process unless something already
    listens on the configured port; returns the gateway's base URL."""
    global _embedded
    settings = get_settings()
    host, port = settings.gateway_host, settings.gateway_port
    url = base_url(host, port)
    with _embedded_lock:
        if _embedded is not None and _embedded[1].is_alive():
            return url
        if _listening(host, port):
            return url
        from studio.gateway.app import create_app

        config = uvicorn.Config(
            create_app(),
            host=host,
            port=port,
            loop="asyncio",
            http=_http(),
            log_level="warning",
            access_log=False,
            timeout_keep_alive=KEEP_ALIVE_S,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="studio-gateway", daemon=True)
        thread.start()
        _embedded = (server, thread)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not server.started:
        if not thread.is_alive():
            log.warning("the embedded gateway did not start (port %s busy?)", port)
            break
        time.sleep(0.02)
    return url


def request_log_stats() -> LogStats:
    """The request-log counters of the gateways running in this process (the embedded one
    in the UI process): how many requests were served but not logged, and why."""
    from studio.gateway.request_log import log_stats

    return log_stats()
