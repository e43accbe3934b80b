"""Runs as jobs through the job interface, executed in this process (the SQLite default).

The same tests run on PostgreSQL in the PG pass: with no worker alive, a job runs
in the process that enqueued it there too (``STUDIO_JOBS=auto``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlmodel import Session, func, select

from studio.core.errors import ConflictError
from studio.core.settings import reset_settings
from studio.core.templates import PromptTemplate
from studio.models.connections import ConnectionCreate, add_connection
from studio.services.apps import create_app
from studio.services.datasets import upload_dataset
from studio.services.jobs import (
    cancel_job,
    enqueue_run,
    get_job,
    list_jobs,
    plan_lanes,
    retry_job,
    wait_job,
)
from studio.services.runs import RunConfig, create_run, list_results
from studio.store import session_scope
from studio.store.tables import Job, Run, RunResult, utcnow
from tests.providers.fakes import FaultyOpenAIServer, answer_for

StartServer = Callable[..., FaultyOpenAIServer]


def _prompt(i: int) -> str:
    return f"Write about topic {i}"


def make_run(
    session: Session, server: FaultyOpenAIServer, rows: int, concurrency: int, limit: int = 64
) -> int:
    """A run of ``rows`` rows against ``server`` (connection 'fake', limit ``limit``)."""
    add_connection(
        session=session,
        data=ConnectionCreate(
            name="fake", kind="openai", base_url=server.url, options={"concurrency": limit}
        ),
    )
    app = create_app(session=session, name="Jobs")
    assert app.id is not None
    csv = "topic\n" + "".join(f"topic {i}\n" for i in range(rows))
    version = upload_dataset(
        session=session, app_id=app.id, name="topics", data=csv.encode(), filename="t.csv"
    )
    assert version.id is not None
    config = RunConfig(
        model="fake/fake-chat",
        prompt=PromptTemplate(kind="completion", template="Write about {{topic}}"),
        concurrency=concurrency,
        use_cache=False,
    )
    run = create_run(session=session, app_id=app.id, dataset_version_id=version.id, config=config)
    session.commit()
    assert run.id is not None
    return run.id


def count_rows(run_id: int) -> int:
    with session_scope() as session:
        return int(session.exec(select(func.count()).where(RunResult.run_id == run_id)).one())


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts of 40 rows at 4 calls each, so a few hundred rows make many parts and lanes."""
    monkeypatch.setenv("STUDIO_JOB_PART_ROWS", "40")
    monkeypatch.setenv("STUDIO_JOB_PART_CONCURRENCY", "4")
    reset_settings()


def test_lanes_split_the_run_concurrency_exactly() -> None:
    assert plan_lanes(concurrency=32, parts=12, width=16) == [16, 16]
    assert plan_lanes(concurrency=10, parts=12, width=4) == [4, 3, 3]
    assert plan_lanes(concurrency=64, parts=2, width=16) == [32, 32]  # one lane per part
    assert plan_lanes(concurrency=8, parts=1, width=16) == [8]


def test_a_run_in_parts_answers_every_row_once_within_its_concurrency(
    session: Session, faulty_server: StartServer, small_parts: None
) -> None:
    faults = ("rate_limit", "server_error", "unavailable", "drop")
    server = faulty_server(fault_rate=0.2, faults=faults, latency_s=0.01, retry_after="0.01")
    run_id = make_run(session, server, rows=300, concurrency=10)

    job = enqueue_run(run_id=run_id, actor="cli")
    assert job.parts == 8 and job.actor == "cli"
    done = wait_job(job_id=job.id, timeout=120)

    assert (done.state, done.done, done.errors, done.parts_done) == ("succeeded", 300, 0, 8)
    session.expire_all()
    results = list_results(session=session, run_id=run_id)
    assert [r.row_index for r in results] == list(range(300))
    assert all(r.output == answer_for(_prompt(r.row_index)) for r in results)
    assert server.answered == {_prompt(i): 1 for i in range(300)}
    # Three lanes of 4, 3 and 3 calls: never more than the run's 10 at once.
    assert server.peak_in_flight <= 10
    run = session.get(Run, run_id)
    assert run is not None and run.status == "done"


def test_cancel_stops_the_job_keeps_its_rows_and_retry_answers_only_the_rest(
    session: Session, faulty_server: StartServer, small_parts: None
) -> None:
    server = faulty_server(latency_s=0.05)
    run_id = make_run(session, server, rows=400, concurrency=8)
    job = enqueue_run(run_id=run_id, actor="ui")
    deadline = time.monotonic() + 60
    while count_rows(run_id) < 40:
        assert time.monotonic() < deadline, "the job made no progress"
        time.sleep(0.01)
    with pytest.raises(ConflictError, match="already running"):
        enqueue_run(run_id=run_id, actor="ui")

    cancel_job(job_id=job.id)
    stopped = wait_job(job_id=job.id, timeout=30)

    assert stopped.state == "cancelled" and stopped.cancel_requested
    kept = count_rows(run_id)
    assert 40 <= kept < 400
    time.sleep(0.3)
    assert count_rows(run_id) == kept  # nothing runs after Cancel
    session.expire_all()
    run = session.get(Run, run_id)
    assert run is not None and run.status == "cancelled"

    resumed = wait_job(job_id=retry_job(job_id=job.id).id, timeout=120)

    assert (resumed.state, resumed.done) == ("succeeded", 400)
    assert server.answered == {_prompt(i): 1 for i in range(400)}  # no row asked twice


def test_a_job_whose_process_died_says_how_to_retry_and_retry_finishes_it(
    session: Session, faulty_server: StartServer
) -> None:
    server = faulty_server()
    run_id = make_run(session, server, rows=30, concurrency=4)
    stale = utcnow() - timedelta(minutes=5)
    job = Job(
        kind="run", subject_id=run_id, actor="ui", state="running", executor="process",
        total=30, parts=0, created_at=stale, heartbeat_at=stale,
    )  # fmt: skip
    session.add(job)
    session.commit()
    assert job.id is not None

    view = get_job(job_id=job.id)
    assert view.state == "failed"
    assert view.error is not None and f"studio job retry {job.id}" in view.error
    assert [j.id for j in list_jobs()] == [job.id]

    fresh = enqueue_run(run_id=run_id, actor="ui")  # the dead job does not block a new one
    assert wait_job(job_id=fresh.id, timeout=60).state == "succeeded"
    assert count_rows(run_id) == 30
