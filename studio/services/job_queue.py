"""The task queue on PostgreSQL: procrastinate, in the studio's own database.

Each job part is one queue task. The parts of a run are spread over *lanes*
(a procrastinate lock each): one part per lane runs at a time, on any worker,
and each part makes its lane's share of the run's calls, so a run asking for
32 calls at a time makes 32 in total however many workers share it.

A worker (``studio worker``) registers with a heartbeat. Every worker also
retries the parts of workers whose heartbeat stopped (a killed process): the
part goes back to the queue and another worker fills its gaps. On SIGTERM or
Ctrl-C a worker takes no new part, and its running parts stop their new calls,
wait for the calls in flight and go back to the queue for another worker.

The queue's schema is applied by migration 0006 (see ``studio/store``).

Rules: a worker acts as :data:`~studio.core.identity.WORKER` (it carries out work a
permitted caller enqueued); deferring parts is for :mod:`studio.services.jobs` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import socket
import threading
from typing import Any

from sqlalchemy import text

from studio.core.errors import ConfigError
from studio.core.identity import WORKER, acting_as
from studio.core.settings import get_settings
from studio.services.job_parts import PartHandedBack, run_part
from studio.store import get_engine

__all__ = ["QUEUE", "defer_parts", "is_postgres", "live_workers", "serve", "worker_name"]

log = logging.getLogger(__name__)

QUEUE = "runs"
TASK = "studio.run_part"
FETCH_EVERY_S = 0.2
_lock = threading.Lock()
_enqueuers: dict[str, Any] = {}  # database URL -> an opened (sync) procrastinate App
_stopping = asyncio.Event()  # set in a worker process on SIGTERM / Ctrl-C


def is_postgres() -> bool:
    return get_settings().resolved_database_url.startswith("postgresql")


def _conninfo() -> str:
    url = get_settings().resolved_database_url
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _make_app(connector: Any) -> Any:
    import procrastinate

    app = procrastinate.App(connector=connector)
    handed_back: set[type[Exception]] = {PartHandedBack, asyncio.CancelledError}  # type: ignore[arg-type]
    retry = procrastinate.RetryStrategy(max_attempts=10_000, wait=0, retry_exceptions=handed_back)

    @app.task(name=TASK, queue=QUEUE, retry=retry, pass_context=True)
    async def run_part_task(context: Any, job_id: int, index: int, key: str) -> str:
        with acting_as(WORKER):  # a queued part carries out work someone permitted enqueued
            return await run_part(
                job_id=job_id, index=index, key=key, worker=worker_name(), stopping=_stopping
            )

    return app


def _enqueuer() -> Any:
    """A procrastinate App opened for deferring from this process (small sync pool)."""
    from procrastinate import SyncPsycopgConnector

    url = _conninfo()
    with _lock:
        app = _enqueuers.get(url)
        if app is None:
            app = _make_app(SyncPsycopgConnector(conninfo=url, min_size=0, max_size=2))
            app.open()
            _enqueuers[url] = app
        return app


def defer_parts(*, job_id: int, key: str, parts: list[tuple[int, int]]) -> None:
    """Put parts ``(index, lane)`` of a job on the queue (one lock per lane)."""
    app = _enqueuer()
    task = app.tasks[TASK]
    jobs = [
        task.configure(lock=f"job-{job_id}-lane-{lane}").make_new_job(
            job_id=job_id, index=index, key=key
        )
        for index, lane in parts
    ]
    app.job_manager.batch_defer_jobs(jobs=jobs)


def live_workers() -> int:
    """Workers whose heartbeat is recent (0 on SQLite)."""
    if not is_postgres():
        return 0
    stalled = get_settings().worker_stalled_s
    with get_engine().connect() as conn:
        found = conn.execute(
            text(
                "SELECT count(*) FROM procrastinate_workers WHERE last_heartbeat > "
                "now() - make_interval(secs => :s)"
            ),
            {"s": stalled},
        ).scalar()
    return int(found or 0)


async def _retry_stalled(app: Any) -> None:
    """Put the parts of workers that stopped sending heartbeats back on the queue."""
    stalled = get_settings().worker_stalled_s
    while True:
        await asyncio.sleep(min(stalled / 3, 10.0) * random.uniform(0.8, 1.2))
        try:
            found = await app.job_manager.get_stalled_jobs(
                queue=QUEUE, seconds_since_heartbeat=stalled
            )
            for job in found:
                with contextlib.suppress(Exception):  # another worker retried it first
                    await app.job_manager.retry_job(job)
                    log.warning("took over part %s of a stopped worker", job.id)
        except Exception:
            log.exception("could not look for the parts of stopped workers")


async def _serve(concurrency: int, queues: list[str] | None) -> None:
    from procrastinate import PsycopgConnector
    from procrastinate.worker import Worker

    settings = get_settings()
    get_engine()  # migrate first: the queue's schema comes with the studio's
    # The pool: one connection per running part at most, one to listen, one for heartbeats.
    connector = PsycopgConnector(conninfo=_conninfo(), min_size=1, max_size=concurrency + 2)
    app = _make_app(connector)
    async with app.open_async():
        worker = Worker(
            app=app,
            queues=queues or [QUEUE],
            name=worker_name(),
            concurrency=concurrency,
            install_signal_handlers=False,
            update_heartbeat_interval=settings.worker_heartbeat_s,
            stalled_worker_timeout=settings.worker_stalled_s,
            # A lane's next part becomes free when its previous part ends, which wakes no
            # one (new parts NOTIFY, ended ones do not): poll often so lanes do not idle.
            fetch_job_polling_interval=FETCH_EVERY_S,
            shutdown_graceful_timeout=settings.request_timeout_s + 5,
        )
        loop = asyncio.get_running_loop()

        def stop() -> None:
            log.warning("stopping: running parts go back to the queue")
            _stopping.set()
            worker.stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        reaper = asyncio.ensure_future(_retry_stalled(app))
        try:
            await worker.run()
        finally:
            reaper.cancel()
            await asyncio.gather(reaper, return_exceptions=True)


def serve(*, concurrency: int, queues: list[str] | None = None) -> None:
    """Run a worker in the foreground until SIGTERM or Ctrl-C."""
    if not is_postgres():
        raise ConfigError(
            "Workers need PostgreSQL: with SQLite (the default) jobs run in the process "
            "that starts them, so there is nothing for a worker to do.",
            hint="Set DATABASE_URL=postgresql://user@host:5432/db to share work between workers.",
        )
    with acting_as(WORKER):  # every task the loop starts copies this context
        asyncio.run(_serve(concurrency, queues))
