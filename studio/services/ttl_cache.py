"""A small in-process cache of database reads for the gateway's hot path.

:class:`TTLCache` keeps what ``load(key)`` returned for ``ttl_s`` seconds, counted
from *before* the read began, so a value is never served more than ``ttl_s``
seconds after the database last said it (the bound a revoked key or an undeployed
endpoint relies on, in every process that shares the database). Two things keep
the database off the hot path under load:

* one load per key at a time: requests that miss while a load of their key is
  running wait for that load instead of each reading the database (a cache that
  expires under 50 concurrent clients would otherwise send 50 reads at once);
* refresh ahead: a hit on a value past half its life starts one background
  reload, so a busy key is reloaded before it expires and its requests never
  wait for the database. Values ``None`` (nothing found) are not refreshed
  ahead; they just expire.

:meth:`TTLCache.clear` (a deploy or revoke in this process) also discards the
loads running at that moment, so a read that began before the change cannot put
the old value back.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

import anyio

__all__ = ["TTLCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# Background reloads only (refresh ahead); a miss loads in the caller's own thread.
_refresher = ThreadPoolExecutor(max_workers=2, thread_name_prefix="studio-cache-refresh")


class TTLCache(Generic[K, V]):
    def __init__(
        self,
        load: Callable[[K], V],
        *,
        ttl_s: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.load = load
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self._lock = threading.Lock()
        self._values: dict[K, tuple[float, V]] = {}
        self._loading: dict[K, Future[V]] = {}
        self._generation = 0

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._loading.clear()
            self._generation += 1

    def peek(self, key: K) -> tuple[bool, V | None]:
        """``(True, value)`` from the cache when it is fresh, else ``(False, None)``;
        never reads the database on the calling thread (safe on the event loop)."""
        now = self.clock()
        with self._lock:
            cached = self._values.get(key)
            if cached is None or now - cached[0] > self.ttl_s:
                return False, None
            stale_soon = now - cached[0] > self.ttl_s / 2 and cached[1] is not None
            if stale_soon and key not in self._loading:
                future: Future[V] = Future()
                self._loading[key] = future
                _refresher.submit(self._run_load, key, future, now, self._generation)
        return True, cached[1]

    def get(self, key: K) -> V:
        """The value of ``key``, loading it on this thread on a miss (blocking)."""
        hit, value = self.peek(key)
        if hit:
            return value  # type: ignore[return-value]
        future, lead, started, generation = self._join(key)
        if lead:
            self._run_load(key, future, started, generation)
        return future.result()

    async def aget(self, key: K) -> V:
        """:meth:`get` for the event loop: a miss loads in a worker thread, and requests
        that miss while their key is loading await that one load."""
        hit, value = self.peek(key)
        if hit:
            return value  # type: ignore[return-value]
        future, lead, started, generation = self._join(key)
        if lead:
            await anyio.to_thread.run_sync(self._run_load, key, future, started, generation)
        return await asyncio.wrap_future(future)

    # -- loading ------------------------------------------------------------------------

    def _join(self, key: K) -> tuple[Future[V], bool, float, int]:
        """The load of ``key`` to wait for, and whether this caller must run it."""
        now = self.clock()
        with self._lock:
            running = self._loading.get(key)
            if running is not None:
                return running, False, now, self._generation
            future: Future[V] = Future()
            self._loading[key] = future
            return future, True, now, self._generation

    def _run_load(self, key: K, future: Future[V], started: float, generation: int) -> None:
        """Load ``key`` into ``future``; keep the value unless the cache was cleared since
        the load began (``generation``), timestamped with ``started``."""
        try:
            value = self.load(key)
        except BaseException as exc:
            with self._lock:
                if self._loading.get(key) is future:
                    del self._loading[key]
            future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        with self._lock:
            if self._loading.get(key) is future:
                del self._loading[key]
            if generation == self._generation:
                if len(self._values) >= self.max_entries and key not in self._values:
                    self._values.clear()
                self._values[key] = (started, value)
        future.set_result(value)
