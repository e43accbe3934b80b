"""Jobs: long work (runs, evaluations, ingestion) as parts on a task queue, one interface
for every face. Ingestion jobs are started by :mod:`studio.services.knowledge_jobs`.

The UI, the CLI and the gateway only call this module: :func:`enqueue_run`,
:func:`get_job` (status and progress), :func:`cancel_job`, :func:`retry_job`,
:func:`list_jobs`, :func:`wait_job`.

A run is split into parts of ``STUDIO_JOB_PART_ROWS`` rows. Who executes them
(the job's ``executor``):

* ``queue``: ``studio worker`` processes, through procrastinate in the same
  PostgreSQL database (:mod:`studio.services.job_queue`). Chosen on PostgreSQL
  when a worker is alive (``STUDIO_JOBS=auto``) or always (``STUDIO_JOBS=queue``).
* ``process``: a thread of the process that enqueued the job (SQLite, or
  PostgreSQL without a live worker), through the same work function
  (:func:`studio.services.job_parts.run_part`).

Progress is the run's rows counted in the database, so any process sees the
rows of every worker. Cancel sets a flag in the database that every running
part reads twice a second; finished rows are kept.

Rules: a job is its app's (:mod:`studio.services.app_access`): reading needs access to the
app, starting, cancelling and retrying also the admin or member role. An in-process job
runs with a copy of its starter's context, so it acts as the person who started it.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import threading
import time
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel
from sqlmodel import Session, col, select

from studio.core.errors import ConfigError, ConflictError, NotFoundError, StudioError
from studio.core.settings import get_settings
from studio.services import job_queue
from studio.services.app_access import check_app, visible_apps
from studio.services.job_parts import (
    ACTIVE,
    FINAL,
    finish_job,
    lock_job,
    run_counts,
    run_part,
    score_counts,
    settle,
)
from studio.services.members import require_member_role
from studio.store import session_scope
from studio.store.tables import Job, JobPart, Run, utcnow

__all__ = [
    "ACTIVE",
    "FINAL",
    "JobView",
    "aware_utc",
    "cancel_job",
    "elapsed_seconds",
    "enqueue_evaluation",
    "enqueue_run",
    "get_job",
    "job_for_evaluation",
    "job_for_run",
    "list_jobs",
    "plan_lanes",
    "retry_job",
    "wait_job",
]

log = logging.getLogger(__name__)

_threads: dict[int, threading.Thread] = {}  # in-process jobs of this process, by job id
_threads_lock = threading.Lock()


class JobView(BaseModel):
    """What a face shows of a job: its record plus live progress."""

    id: int
    kind: str
    subject_id: int | None
    app_id: int | None
    actor: str
    state: str
    executor: str
    total: int
    done: int
    errors: int
    cached: int = 0
    parts: int
    parts_done: int = 0
    error: str | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def elapsed_s(self) -> float:
        return elapsed_seconds(self.started_at, self.finished_at)

    @property
    def title(self) -> str:
        return f"{self.kind} {self.subject_id}" if self.subject_id is not None else self.kind


def aware_utc(moment: datetime) -> datetime:
    """A stored time as an aware UTC time (SQLite hands back naive UTC times)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def elapsed_seconds(started_at: datetime | None, finished_at: datetime | None) -> float:
    """How long a job has run: 0 before it starts, up to now while it runs."""
    if started_at is None:
        return 0.0
    end = finished_at or datetime.now(UTC)
    return max(0.0, (aware_utc(end) - aware_utc(started_at)).total_seconds())


def _interrupted(job: Job) -> bool:
    """An in-process job whose process stopped (no heartbeat for a while)."""
    if job.executor != "process" or job.state not in ACTIVE:
        return False
    if job.id in _threads and _threads[job.id].is_alive():
        return False
    beat = job.heartbeat_at or job.created_at
    return datetime.now(UTC) - aware_utc(beat) > timedelta(seconds=get_settings().worker_stalled_s)


def _view(session: Session, job: Job) -> JobView:
    assert job.id is not None
    data = job.model_dump(exclude={"key", "params", "heartbeat_at"})
    if job.kind == "run" and job.subject_id is not None:
        data["done"], data["errors"], data["cached"] = run_counts(session, job.subject_id)
    elif job.kind == "evaluation" and job.subject_id is not None:
        data["done"], data["errors"] = score_counts(session, job.subject_id)
    elif job.kind == "ingestion" and job.subject_id is not None:
        from studio.services.knowledge_jobs import embedding_counts

        counts = embedding_counts(session, job.subject_id)
        if counts is not None and job.state in ACTIVE:  # a finished job keeps its figures
            data["done"], data["total"] = counts
    states = session.exec(select(JobPart.state).where(JobPart.job_id == job.id)).all()
    data["parts_done"] = sum(1 for s in states if s == "done")
    if _interrupted(job):
        data["state"] = "failed"
        data["error"] = job.error or (
            "The process running this job stopped before it finished. Press Retry (or run "
            f"`studio job retry {job.id}`) to answer the rows still missing."
        )
    return JobView(**data)


def plan_lanes(*, concurrency: int, parts: int, width: int) -> list[int]:
    """Calls per lane: ``concurrency`` split over ``ceil(concurrency / width)`` lanes (at
    most one per part), so the lanes together make exactly ``concurrency`` calls."""
    lanes = max(1, min(parts, math.ceil(concurrency / width)))
    share, extra = divmod(concurrency, lanes)
    return [max(1, share + (1 if lane < extra else 0)) for lane in range(lanes)]


def _run_concurrency(session: Session, run: Run) -> int:
    """The calls a run makes in total: its own number, else the connection's limit, else
    the studio's default; never more than the connection's limit when it has one."""
    from studio.services import runs

    config = runs.RunConfig.model_validate(run.config)
    try:
        prepared, _ = runs._prepare(config)
    except StudioError:  # the parts fail with the reason, shown on the job
        return config.concurrency or get_settings().default_concurrency
    asked = runs._workers(config, prepared.provider)
    limit = prepared.provider.options.concurrency
    return min(asked, limit) if limit else asked


def _executor() -> str:
    choice = get_settings().jobs_executor
    if not job_queue.is_postgres():
        if choice == "queue":
            raise ConfigError(
                "STUDIO_JOBS=queue needs PostgreSQL: with SQLite jobs run in the process "
                "that starts them.",
                hint="Unset STUDIO_JOBS, or set DATABASE_URL to a PostgreSQL database.",
            )
        return "process"
    if choice == "auto":
        return "queue" if job_queue.live_workers() else "process"
    return choice


def enqueue_run(*, run_id: int, actor: str) -> JobView:
    """Start (or resume) a run as a job; its parts only answer the rows still missing."""
    settings = get_settings()
    require_member_role("start runs")
    with session_scope() as session:
        run = session.get(Run, run_id)
        if run is None:
            raise NotFoundError(f"No run {run_id}.", hint="Check the run id.")
        check_app(session=session, app_id=run.app_id, action="start runs", what="run")
        _check_free(session, "run", run_id, f"Run {run_id}")
        concurrency = _run_concurrency(session, run)
        size = settings.job_part_rows
        bounds = [(s, min(s + size, run.total_rows)) for s in range(0, run.total_rows, size)]
        bounds = bounds or [(0, 0)]
        shares = plan_lanes(
            concurrency=concurrency, parts=len(bounds), width=settings.job_part_concurrency
        )
        job = Job(
            kind="run",
            subject_id=run_id,
            app_id=run.app_id,
            actor=actor,
            executor=_executor(),
            total=run.total_rows * run.samples,
            parts=len(bounds),
            params={"concurrency": concurrency, "lanes": len(shares)},
        )
        session.add(job)
        session.flush()
        assert job.id is not None
        for index, (start, stop) in enumerate(bounds):
            lane = index % len(shares)
            session.add(
                JobPart(
                    job_id=job.id,
                    index=index,
                    start=start,
                    stop=stop,
                    lane=lane,
                    concurrency=shares[lane],
                )
            )
        run.status = "pending" if run.status != "running" else run.status
        session.add(run)
        job_id = job.id
    _dispatch(job_id)
    return get_job(job_id=job_id)


def _check_free(session: Session, kind: str, subject_id: int, what: str) -> None:
    for other in session.exec(
        select(Job).where(Job.kind == kind, Job.subject_id == subject_id)
    ).all():
        if other.state in ACTIVE and _interrupted(other):
            other.state, other.finished_at = "failed", utcnow()
            other.error = "The process running this job stopped; a new job took over."
            session.add(other)
        elif other.state in ACTIVE:
            raise ConflictError(
                f"{what} is already running (job {other.id}).",
                hint="Wait for it, or cancel it first.",
            )


def enqueue_evaluation(*, evaluation_id: int, actor: str, concurrency: int = 8) -> JobView:
    """Score an evaluation as a job (one part); it scores only what is not scored yet, so
    a retry or a worker taking over after a crash never scores an output twice."""
    from studio.services.evaluations import evaluation_data

    require_member_role("start evaluations")
    with session_scope() as session:
        data = evaluation_data(session=session, evaluation_id=evaluation_id)
        _check_free(session, "evaluation", evaluation_id, f"Evaluation {evaluation_id}")
        total = len(data.results) * len(data.evaluation.evaluators)
        job = Job(
            kind="evaluation",
            subject_id=evaluation_id,
            app_id=data.evaluation.app_id,
            actor=actor,
            executor=_executor(),
            total=total,
            parts=1,
            params={"concurrency": concurrency, "lanes": 1},
        )
        session.add(job)
        session.flush()
        assert job.id is not None
        session.add(
            JobPart(job_id=job.id, index=0, start=0, stop=total, lane=0, concurrency=concurrency)
        )
        job_id = job.id
    _dispatch(job_id)
    return get_job(job_id=job_id)


def job_for_evaluation(*, evaluation_id: int) -> JobView | None:
    """The latest job of an evaluation (started by any process), or None."""
    with session_scope() as session:
        job = session.exec(
            select(Job)
            .where(Job.kind == "evaluation", Job.subject_id == evaluation_id)
            .order_by(col(Job.id).desc())
            .limit(1)
        ).first()
        return _checked_view(session, job) if job is not None else None


def _checked_view(session: Session, job: Job) -> JobView:
    """The job's view if the caller may see it (a job is its app's)."""
    check_app(session=session, app_id=job.app_id, action="see jobs", what="job")
    return _view(session, job)


def _dispatch(job_id: int) -> None:
    """Hand the job's queued parts to its executor."""
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        parts = session.exec(
            select(JobPart)
            .where(JobPart.job_id == job_id, JobPart.state == "queued")
            .order_by(col(JobPart.index))
        ).all()
        key, executor = job.key, job.executor
        todo = [(p.index, p.lane) for p in parts]
    if executor == "queue":
        job_queue.defer_parts(job_id=job_id, key=key, parts=todo)
        return
    # The thread acts as the caller who started the job (the actor is a context variable).
    context = contextvars.copy_context()
    thread = threading.Thread(
        target=context.run,
        args=(_run_here, job_id, key, todo),
        name=f"job-{job_id}",
        daemon=True,
    )
    with _threads_lock:
        _threads[job_id] = thread
    thread.start()


def _run_here(job_id: int, key: str, todo: list[tuple[int, int]]) -> None:
    """Execute a job's parts in this process: the lanes at once, each lane's parts in turn."""
    worker = f"process {job_queue.worker_name()}"

    async def lane(indices: list[int]) -> None:
        for index in indices:
            await run_part(job_id=job_id, index=index, key=key, worker=worker)

    lanes: dict[int, list[int]] = {}
    for index, lane_no in todo:
        lanes.setdefault(lane_no, []).append(index)

    async def everything() -> None:
        await asyncio.gather(*(lane(indices) for indices in lanes.values()))

    try:
        asyncio.run(everything())
        settle(job_id)
    except Exception as exc:  # a worker thread must report, never die silently
        log.exception("job %s failed", job_id)
        _fail(job_id, f"The job stopped unexpectedly ({type(exc).__name__}: {exc}).")


def _fail(job_id: int, error: str) -> None:
    with session_scope() as session:
        job = lock_job(session, job_id)
        if job is not None and job.state in ACTIVE:
            job.error = error
            finish_job(session, job, "failed")


def get_job(*, job_id: int) -> JobView:
    with session_scope() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise NotFoundError(f"No job {job_id}.", hint="See `studio job list`.")
        return _checked_view(session, job)


def job_for_run(*, run_id: int) -> JobView | None:
    """The latest job of a run (started by any process), or None."""
    with session_scope() as session:
        job = session.exec(
            select(Job)
            .where(Job.kind == "run", Job.subject_id == run_id)
            .order_by(col(Job.id).desc())
            .limit(1)
        ).first()
        return _checked_view(session, job) if job is not None else None


def list_jobs(*, states: tuple[str, ...] | None = None, limit: int = 100) -> list[JobView]:
    """Jobs newest first (of the apps the caller may use); ``states`` filters."""
    with session_scope() as session:
        visible = visible_apps(session=session, action="list jobs")
        query = select(Job).order_by(col(Job.id).desc()).limit(limit)
        if visible is not None:
            query = query.where(col(Job.app_id).in_(visible))
        if states:
            query = query.where(col(Job.state).in_(states))
        return [_view(session, job) for job in session.exec(query).all()]


def cancel_job(*, job_id: int) -> JobView:
    """Ask every part of the job to stop (they do within a second); finished rows stay."""
    require_member_role("cancel jobs")
    with session_scope() as session:
        job = lock_job(session, job_id)
        if job is None:
            raise NotFoundError(f"No job {job_id}.", hint="See `studio job list`.")
        check_app(session=session, app_id=job.app_id, action="cancel jobs", what="job")
        if job.state in ACTIVE:
            job.cancel_requested = True
            session.add(job)
            running = session.exec(
                select(JobPart.id).where(JobPart.job_id == job_id, JobPart.state == "running")
            ).first()
            if running is None or _interrupted(job):  # nothing will settle it: do it now
                for part in session.exec(
                    select(JobPart).where(JobPart.job_id == job_id, col(JobPart.state).in_(ACTIVE))
                ).all():
                    part.state = "cancelled"
                    session.add(part)
                finish_job(session, job, "cancelled")
    return get_job(job_id=job_id)


def retry_job(*, job_id: int) -> JobView:
    """Run a stopped job's unfinished parts again (each only answers its missing rows)."""
    require_member_role("retry jobs")
    with session_scope() as session:
        job = lock_job(session, job_id)
        if job is None:
            raise NotFoundError(f"No job {job_id}.", hint="See `studio job list`.")
        check_app(session=session, app_id=job.app_id, action="retry jobs", what="job")
        if job.kind == "finetuning":  # it has no parts: settling it would call it succeeded
            raise ConflictError(
                f"Job {job_id} is a fine-tuning job.",
                hint=f"Resume it with `studio finetune resume {job_id}`.",
            )
        if job.state in ACTIVE and not _interrupted(job):
            raise ConflictError(
                f"Job {job_id} is still {job.state}.", hint="Cancel it first, or wait for it."
            )
        for part in session.exec(select(JobPart).where(JobPart.job_id == job_id)).all():
            if part.state != "done":
                part.state, part.error, part.finished_at = "queued", None, None
                session.add(part)
        job.state, job.error, job.cancel_requested = "queued", None, False
        job.finished_at, job.executor = None, _executor()
        session.add(job)
    _dispatch(job_id)
    return get_job(job_id=job_id)


def wait_job(*, job_id: int, timeout: float | None = None, every: float = 0.2) -> JobView:
    """Poll until the job ends (or ``timeout`` passes); returns its latest view."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        view = get_job(job_id=job_id)
        if not view.active or (deadline is not None and time.monotonic() >= deadline):
            return view
        time.sleep(every)
