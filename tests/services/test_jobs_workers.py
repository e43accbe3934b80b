"""Runs shared by `studio worker` processes on PostgreSQL (skipped on SQLite).

Three workers answer a 3,000-row run while one of them is SIGKILLed halfway:
its part is taken over once its heartbeat stops, every row ends up answered
exactly once, and this process (standing in for the UI) sees all 3,000. A
Cancel from this process stops a run that other processes execute.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session, col, select

from studio.core.settings import reset_settings
from studio.services.job_queue import live_workers
from studio.services.jobs import cancel_job, enqueue_run, wait_job
from studio.services.runs import list_results
from studio.store import get_engine, session_scope
from studio.store.tables import JobPart, RunResult
from studio.ui.run_jobs import run_jobs
from tests.providers.fakes import FaultyOpenAIServer, answer_for
from tests.services.test_jobs import count_rows, make_run

pytestmark = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="workers share runs through PostgreSQL",
)
StartServer = Callable[..., FaultyOpenAIServer]
ROOT = Path(__file__).resolve().parents[2]
WORKER = "from studio.cli.main import main; main(['worker', '--concurrency', '4'])"
FAULTS = ("rate_limit", "server_error", "unavailable", "drop")


def _prompt(i: int) -> str:
    return f"Write about topic {i}"


@pytest.fixture
def queue_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Quick heartbeats, parts of 250 rows at 8 calls, and jobs always on the queue."""
    for name, value in {
        "STUDIO_JOBS": "queue",
        "STUDIO_JOB_PART_ROWS": "250",
        "STUDIO_JOB_PART_CONCURRENCY": "8",
        "STUDIO_WORKER_HEARTBEAT": "0.5",
        "STUDIO_WORKER_STALLED": "3",
    }.items():
        monkeypatch.setenv(name, value)
    reset_settings()
    with get_engine().begin() as conn:  # the queue's tables outlive the studio's per test
        conn.execute(
            text(
                "TRUNCATE procrastinate_jobs, procrastinate_events, "
                "procrastinate_periodic_defers, procrastinate_workers CASCADE"
            )
        )


@pytest.fixture
def workers(
    queue_env: None, tmp_path: Path
) -> Iterator[Callable[[int], list[subprocess.Popen[bytes]]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(n: int) -> list[subprocess.Popen[bytes]]:
        for i in range(n):
            log = (tmp_path / f"worker-{len(started) + i}.log").open("wb")
            started.append(
                subprocess.Popen([sys.executable, "-c", WORKER], cwd=ROOT, stdout=log, stderr=log)
            )
        deadline = time.monotonic() + 60
        while live_workers() < len(started):
            assert all(p.poll() is None for p in started), "a worker exited at start"
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.1)
        return started

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in started:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # A SIGKILLed worker's heartbeat row would count as a live worker for the next tests
    # (STUDIO_JOBS=auto would queue their jobs for nobody): forget every worker here.
    with get_engine().begin() as conn:
        conn.execute(text("DELETE FROM procrastinate_workers"))


def _running_worker_pid(job_id: int) -> int | None:
    """The worker of the part that started last (the furthest from its end)."""
    with session_scope() as session:
        names = session.exec(
            select(JobPart.worker)
            .where(JobPart.job_id == job_id, JobPart.state == "running")
            .order_by(col(JobPart.started_at).desc())
        ).all()
    for name in names:
        if name:
            return int(name.rsplit(":", 1)[1])
    return None


def test_three_workers_one_killed_halfway_answer_every_row_once(
    session: Session,
    faulty_server: StartServer,
    workers: Callable[[int], list[subprocess.Popen[bytes]]],
) -> None:
    procs = workers(3)
    server = faulty_server(fault_rate=0.1, faults=FAULTS, latency_s=0.05, retry_after="0.01")
    run_id = make_run(session, server, rows=3000, concurrency=24)

    job = enqueue_run(run_id=run_id, actor="ui")
    assert job.executor == "queue" and job.parts == 12

    deadline = time.monotonic() + 120
    while count_rows(run_id) < 1500:
        assert time.monotonic() < deadline, "the workers made no progress"
        time.sleep(0.02)
    victim = _running_worker_pid(job.id)
    while victim is None:  # between two parts no part is running for a moment
        assert time.monotonic() < deadline, "no part is running"
        time.sleep(0.02)
        victim = _running_worker_pid(job.id)
    assert victim in {p.pid for p in procs}
    with session_scope() as s:
        written_before_kill = set(
            s.exec(select(RunResult.row_index).where(RunResult.run_id == run_id)).all()
        )
    os.kill(victim, signal.SIGKILL)
    with session_scope() as s:
        orphans = set(
            s.exec(
                select(JobPart.index).where(
                    JobPart.job_id == job.id,
                    JobPart.state == "running",
                    col(JobPart.worker).endswith(f":{victim}"),
                )
            ).all()
        )
    assert orphans, "the kill must land while the worker runs a part"

    done = wait_job(job_id=job.id, timeout=180)

    assert (done.state, done.done, done.errors) == ("succeeded", 3000, 0)
    seen = run_jobs().get(run_id)  # what the UI process shows
    assert seen is not None and seen.progress.done == 3000 and not seen.running
    session.expire_all()
    results = list_results(session=session, run_id=run_id)
    assert [r.row_index for r in results] == list(range(3000))  # one result per row
    assert all(r.output == answer_for(_prompt(r.row_index)) for r in results)
    # A row written before the kill was never asked again; only calls in flight in the
    # killed worker (at most its 4 parts x 8 calls) were answered twice.
    assert all(server.answered[_prompt(i)] == 1 for i in written_before_kill)
    assert sum(n - 1 for n in server.answered.values()) <= 32
    with session_scope() as s:
        parts = s.exec(select(JobPart).where(col(JobPart.index).in_(orphans))).all()
    # The killed worker's parts were taken over by the others and finished.
    assert all(p.job_id != job.id or (p.state == "done" and p.attempts >= 2) for p in parts)


def test_cancel_from_this_process_stops_a_run_other_processes_execute(
    session: Session,
    faulty_server: StartServer,
    workers: Callable[[int], list[subprocess.Popen[bytes]]],
) -> None:
    workers(2)
    server = faulty_server(latency_s=0.2)
    run_id = make_run(session, server, rows=3000, concurrency=16)  # ~40 s if not cancelled
    job = enqueue_run(run_id=run_id, actor="cli")
    deadline = time.monotonic() + 60
    while count_rows(run_id) < 50:
        assert time.monotonic() < deadline, "the workers made no progress"
        time.sleep(0.02)

    cancel_job(job_id=job.id)
    stopped = wait_job(job_id=job.id, timeout=60)

    assert stopped.state == "cancelled"
    kept = count_rows(run_id)
    assert 50 <= kept < 1000  # stopped long before the end; finished rows kept
    time.sleep(1.0)
    assert count_rows(run_id) == kept  # no worker answers anything after the Cancel
    with session_scope() as s:
        states = set(s.exec(select(JobPart.state).where(JobPart.job_id == job.id)).all())
    assert states <= {"cancelled", "done"}
