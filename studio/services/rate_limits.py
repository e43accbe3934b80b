"""Per-key requests-per-minute limits, held across gateway workers on PostgreSQL.

The limit is a *sliding window* approximated from two fixed one-minute windows
(the way Cloudflare counts): a request at ``elapsed`` seconds into the current
minute sees ``current + previous * (1 - elapsed / 60)`` requests in the last 60
seconds, and is allowed when one more still fits under the limit. Fixed windows
alone would let a client send the limit twice within a second across a minute's
edge; the approximation never does (it assumes the previous minute's requests
were spread evenly). Only allowed requests are counted, so a client that keeps
knocking while refused gets in as soon as its Retry-After says.

* On PostgreSQL the counts live in the ``keyratewindow`` table, shared by every
  worker and machine: one statement per request of a limited key, an
  ``INSERT ... ON CONFLICT DO UPDATE ... WHERE <it fits> RETURNING count``, so two
  workers can never both take the last place. It runs in a worker thread
  (:func:`atake`), never on the event loop. A refusal is remembered in the process
  until the moment it names, so a client hammering a used-up key costs no
  database work. Windows older than :data:`KEEP_WINDOWS_S` are deleted once a
  minute per process, not on every request. Window starts come from each
  machine's clock (keep them synchronised, e.g. NTP).
* On SQLite (one process) the same two windows are counted in memory.

Keys without a limit never reach this module (the gateway checks first).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

import anyio.to_thread
from sqlalchemy import text

from studio.core.errors import RateLimitedError
from studio.core.settings import get_settings
from studio.store import get_engine

__all__ = [
    "KEEP_WINDOWS_S",
    "WINDOW_S",
    "allows",
    "atake",
    "clear_rate_limits",
    "retry_after_s",
    "take",
]

WINDOW_S = 60
KEEP_WINDOWS_S = 300  # windows older than this are deleted
CLEAN_EVERY_S = 60.0

Clock = Callable[[], float]


# -- the window arithmetic (pure) ------------------------------------------------------


def _weight(elapsed: float) -> float:
    """How much of the previous window still lies in the last 60 seconds."""
    return 1.0 - min(max(elapsed, 0.0), WINDOW_S) / WINDOW_S


def allows(*, limit: int, current: int, previous: int, elapsed: float) -> bool:
    """Whether one more request fits, ``elapsed`` seconds into the current window."""
    return current + 1 + previous * _weight(elapsed) <= limit


def retry_after_s(*, limit: int, current: int, previous: int, elapsed: float) -> float:
    """Seconds from now until :func:`allows` is true again (0 when it is now)."""
    if allows(limit=limit, current=current, previous=previous, elapsed=elapsed):
        return 0.0
    room = limit - current - 1  # what the previous window's share must fall to
    if room >= 0 and previous > 0:  # within this window, as the previous one fades
        return max(WINDOW_S * (1.0 - room / previous) - elapsed, 0.0)
    # In the next window this window is the previous one: wait until its share fits.
    return WINDOW_S - elapsed + WINDOW_S * max(1.0 - (limit - 1) / current, 0.0)


def _refusal(limit: int, wait_s: float) -> RateLimitedError:
    wait = max(1, math.ceil(wait_s))
    return RateLimitedError(
        f"This API key allows {limit} requests per minute; that limit is used up.",
        retry_after_s=wait,
        hint=f"Retry after {wait} s, or ask for a key with a higher limit.",
    )


# -- state in the process ------------------------------------------------------------

_lock = threading.Lock()
_windows: dict[int, tuple[int, int, int]] = {}  # key id -> (window start, current, previous)
_refused_until: dict[int, float] = {}  # key id -> wall time before which it stays refused
_cleaned_at = -math.inf


def clear_rate_limits() -> None:
    """Forget the in-process counts and refusals (tests start each database afresh)."""
    global _cleaned_at
    with _lock:
        _windows.clear()
        _refused_until.clear()
        _cleaned_at = -math.inf


def _shared() -> bool:
    return get_settings().resolved_database_url.startswith("postgresql")


def _take_in_process(key_id: int, limit: int, now: float) -> None:
    start = int(now // WINDOW_S) * WINDOW_S
    elapsed = now - start
    with _lock:
        stored, current, previous = _windows.get(key_id, (start, 0, 0))
        if stored != start:
            previous = current if stored == start - WINDOW_S else 0
            current = 0
        if allows(limit=limit, current=current, previous=previous, elapsed=elapsed):
            _windows[key_id] = (start, current + 1, previous)
            return
        _windows[key_id] = (start, current, previous)
    wait = retry_after_s(limit=limit, current=current, previous=previous, elapsed=elapsed)
    raise _refusal(limit, wait)


# -- PostgreSQL ------------------------------------------------------------------------

_TAKE = text(
    """
    WITH prev AS (
        SELECT COALESCE(
            (SELECT count FROM keyratewindow WHERE key_id = :key AND window_start = :prev), 0
        ) AS n
    )
    INSERT INTO keyratewindow (key_id, window_start, count)
    SELECT :key, :start, 1 FROM prev WHERE 1 + prev.n * :weight <= :limit
    ON CONFLICT (key_id, window_start) DO UPDATE SET count = keyratewindow.count + 1
    WHERE keyratewindow.count + 1 + (SELECT n FROM prev) * :weight <= :limit
    RETURNING count
    """
)
_COUNTS = text(
    "SELECT window_start, count FROM keyratewindow"
    " WHERE key_id = :key AND window_start IN (:start, :prev)"
)
_CLEAN = text("DELETE FROM keyratewindow WHERE window_start < :before")


def _take_shared(key_id: int, limit: int, now: float) -> None:
    global _cleaned_at
    start = int(now // WINDOW_S) * WINDOW_S
    elapsed = now - start
    params = {
        "key": key_id,
        "start": start,
        "prev": start - WINDOW_S,
        "weight": _weight(elapsed),
        "limit": limit,
    }
    clean = False
    with _lock:
        if _refused_until.get(key_id, -math.inf) > now:
            wait = _refused_until[key_id] - now
            raise _refusal(limit, wait)
        if time.monotonic() - _cleaned_at >= CLEAN_EVERY_S:
            _cleaned_at, clean = time.monotonic(), True
    engine = get_engine()
    with engine.begin() as conn:
        taken = conn.execute(_TAKE, params).first()
        counts: dict[int, int] = {}
        if taken is None:
            counts = {int(s): int(c) for s, c in conn.execute(_COUNTS, params).all()}
    if clean:  # its own transaction: the window row above is not held meanwhile
        with engine.begin() as conn:
            conn.execute(_CLEAN, {"before": start - KEEP_WINDOWS_S})
    if taken is not None:
        return
    wait = retry_after_s(
        limit=limit,
        current=counts.get(start, 0),
        previous=counts.get(start - WINDOW_S, 0),
        elapsed=elapsed,
    )
    with _lock:
        _refused_until[key_id] = now + wait
    raise _refusal(limit, wait)


# -- the entry points ----------------------------------------------------------------


def take(*, key_id: int, limit: int, clock: Clock = time.time) -> None:
    """Count one request of a key allowed ``limit`` per minute, or raise
    :class:`RateLimitedError` (Retry-After: when the next one will be allowed).

    On PostgreSQL this is a blocking database call: async code uses :func:`atake`.
    """
    if _shared():
        _take_shared(key_id, limit, clock())
    else:
        _take_in_process(key_id, limit, clock())


async def atake(*, key_id: int, limit: int, clock: Clock = time.time) -> None:
    """:func:`take` for the event loop: on PostgreSQL the statement runs in a worker
    thread; in memory (SQLite) it answers on the loop."""
    if not _shared():
        _take_in_process(key_id, limit, clock())
        return
    now = clock()
    with _lock:
        until = _refused_until.get(key_id, -math.inf)
    if until > now:  # refused until then: no thread, no database
        raise _refusal(limit, until - now)
    await anyio.to_thread.run_sync(_take_shared, key_id, limit, now)
