"""The work of one job part, the same code in a worker process and in-process.

A run's part answers rows; an evaluation's (one part) scores outputs with
:func:`studio.services.evaluations.execute_evaluation`, which resumes where a
killed worker stopped; an ingestion's (one part) reads files into a knowledge base and
embeds them (:func:`studio.services.knowledge_jobs.ingest_part`). :func:`run_part` marks
the part running, answers its rows with the run engine
(:func:`studio.services.runs.execute_run` over the part's rows at its share of
the calls), watches the job's cancel flag in the database every half second
(a Cancel from any process stops the part within a second), and settles the
job when its last part ends. A part that finds its job cancelled, failed or
replaced does nothing.

Rules: no check here; it runs as the job's starter (in-process) or as WORKER, after
:mod:`studio.services.jobs` checked who enqueued the job.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass

from sqlalchemy import case
from sqlmodel import Session, col, func, select

from studio.core.errors import StudioError
from studio.services.run_part import RunPart, stored_index_before
from studio.services.runs import execute_run
from studio.store import session_scope
from studio.store.tables import EvaluationScore, Job, JobPart, Run, RunResult, utcnow

__all__ = [
    "ACTIVE",
    "FINAL",
    "WATCH_EVERY_S",
    "PartHandedBack",
    "finish_job",
    "lock_job",
    "run_counts",
    "run_part",
    "score_counts",
    "settle",
]

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running")
FINAL = ("succeeded", "failed", "cancelled")
WATCH_EVERY_S = 0.5  # how often a running part reads its job's cancel flag
RUN_STATUS = {"succeeded": "done", "failed": "failed", "cancelled": "cancelled"}


class PartHandedBack(Exception):
    """The worker is stopping: the part goes back to the queue for another worker."""


@dataclass(frozen=True)
class _Plan:
    run_id: int
    part: RunPart
    evaluation_id: int | None = None  # an evaluation's part scores instead of answering
    ingestion_kb: int | None = None  # an ingestion's part reads files and embeds chunks


def lock_job(session: Session, job_id: int) -> Job | None:
    """The job, locked for update until the transaction ends (PostgreSQL)."""
    return session.exec(select(Job).where(Job.id == job_id).with_for_update()).first()


def run_counts(session: Session, run_id: int) -> tuple[int, int, int]:
    """(rows written, rows with an error, rows from the cache) of a run, from the database."""
    done, errors, cached = session.exec(
        select(
            func.count(),
            func.count(col(RunResult.error)),
            func.coalesce(func.sum(case((col(RunResult.cached), 1), else_=0)), 0),
        ).where(RunResult.run_id == run_id)
    ).one()
    return int(done), int(errors), int(cached)


def score_counts(session: Session, evaluation_id: int) -> tuple[int, int]:
    """(scores stored, of which the evaluator could not judge) of an evaluation."""
    done, errors = session.exec(
        select(
            func.count(),
            func.coalesce(func.sum(case((col(EvaluationScore.error).is_not(None), 1), else_=0)), 0),
        ).where(EvaluationScore.evaluation_id == evaluation_id)
    ).one()
    return int(done), int(errors)


def _part(session: Session, job_id: int, index: int) -> JobPart | None:
    return session.exec(
        select(JobPart).where(JobPart.job_id == job_id, JobPart.index == index)
    ).first()


def _begin(job_id: int, index: int, key: str, worker: str) -> _Plan | None:
    """Mark the part running; None when there is nothing to do (cancelled, failed, gone)."""
    with session_scope() as session:
        job = lock_job(session, job_id)
        part = _part(session, job_id, index)
        if job is None or part is None or job.key != key or part.state == "done":
            return None
        if job.cancel_requested or job.state in FINAL:
            part.state, part.finished_at = "cancelled", utcnow()
            session.add(part)
            return None
        now = utcnow()
        part.state, part.worker, part.attempts = "running", worker, part.attempts + 1
        part.started_at, part.error = now, None
        if job.state == "queued":
            job.state, job.started_at = "running", job.started_at or now
        job.heartbeat_at = now
        session.add_all([part, job])
        if job.kind == "evaluation":
            return _Plan(
                run_id=0, part=RunPart(0, 0, part.concurrency), evaluation_id=job.subject_id
            )
        if job.kind == "ingestion":
            return _Plan(
                run_id=0, part=RunPart(0, 0, part.concurrency), ingestion_kb=job.subject_id
            )
        run = session.get(Run, job.subject_id)
        if run is None:
            return None
        after = stored_index_before(
            session=session, version_id=run.dataset_version_id, start=part.start
        )
        return _Plan(
            run_id=run.id or 0,
            part=RunPart(part.start, part.stop, part.concurrency, after=after),
        )


def _end(job_id: int, index: int, state: str, error: str | None = None) -> None:
    with session_scope() as session:
        job = lock_job(session, job_id)
        part = _part(session, job_id, index)
        if job is None or part is None:
            return
        part.state, part.error = state, error
        part.finished_at = utcnow() if state != "queued" else None
        session.add(part)
        if state == "failed" and job.state in ACTIVE:  # the other parts stop too
            job.error = error
            finish_job(session, job, "failed")


def finish_job(session: Session, job: Job, state: str) -> None:
    """Record the job's end (and its run's), with the counts from the database."""
    job.state, job.finished_at = state, utcnow()
    run = session.get(Run, job.subject_id) if job.kind == "run" else None
    if run is not None:
        job.done, job.errors, _ = run_counts(session, run.id or 0)
        run.status, run.finished_at = RUN_STATUS[state], job.finished_at
        run.error = job.error
        session.add(run)
    session.add(job)


def settle(job_id: int) -> str:
    """End the job when none of its parts is left to run; returns the job's state."""
    with session_scope() as session:
        job = lock_job(session, job_id)
        if job is None:
            return "gone"
        if job.state in FINAL:
            return job.state
        states = set(session.exec(select(JobPart.state).where(JobPart.job_id == job_id)).all())
        if states & set(ACTIVE):
            return job.state
        if "failed" in states:
            state = "failed"
        elif job.cancel_requested or "cancelled" in states:
            state = "cancelled"
        else:
            state = "succeeded"
        finish_job(session, job, state)
        return state


def _watch_once(job_id: int) -> bool:
    """Beat the job's heartbeat; True when the job asks its parts to stop."""
    with session_scope() as session:
        job = session.get(Job, job_id)
        if job is None:
            return True
        job.heartbeat_at = utcnow()
        session.add(job)
        return job.cancel_requested or job.state in FINAL


async def _watch(job_id: int, cancel: threading.Event, stopping: asyncio.Event | None) -> None:
    while not cancel.is_set():
        if stopping is not None and stopping.is_set():
            cancel.set()
            return
        try:
            if await asyncio.to_thread(_watch_once, job_id):
                cancel.set()
                return
        except Exception:  # a database hiccup: try again next time
            log.warning("could not read job %s", job_id, exc_info=True)
        if stopping is None:
            await asyncio.sleep(WATCH_EVERY_S)
        else:
            waiter = asyncio.ensure_future(stopping.wait())
            await asyncio.wait([waiter], timeout=WATCH_EVERY_S)
            waiter.cancel()


async def _score(
    job_id: int, index: int, plan: _Plan, cancel: threading.Event, stopping: asyncio.Event | None
) -> str:
    """An evaluation's part: score what is not scored yet; a stop hands it back."""
    from studio.services.evaluations import EvaluationCancelled, execute_evaluation

    assert plan.evaluation_id is not None
    try:
        await execute_evaluation(
            evaluation_id=plan.evaluation_id, concurrency=plan.part.concurrency, cancel=cancel
        )
    except EvaluationCancelled:
        if stopping is not None and stopping.is_set():
            await asyncio.to_thread(_end, job_id, index, "queued")
            raise PartHandedBack(f"part {index} of job {job_id} goes back to the queue") from None
        await asyncio.to_thread(_end, job_id, index, "cancelled")
        await asyncio.to_thread(settle, job_id)
        return "cancelled"
    await asyncio.to_thread(_end, job_id, index, "done")
    await asyncio.to_thread(settle, job_id)
    return "done"


async def run_part(
    *, job_id: int, index: int, key: str, worker: str, stopping: asyncio.Event | None = None
) -> str:
    """Execute part ``index`` of a job (safe to repeat); returns the part's state.

    When ``stopping`` is set (the worker shuts down) before the part is done, its
    calls in flight finish, the part goes back to the queue (state ``queued``)
    and :class:`PartHandedBack` is raised for the queue to retry it elsewhere.
    """
    plan = await asyncio.to_thread(_begin, job_id, index, key, worker)
    if plan is None:
        await asyncio.to_thread(settle, job_id)
        return "skipped"
    cancel = threading.Event()
    watcher = asyncio.ensure_future(_watch(job_id, cancel, stopping))
    try:
        if plan.evaluation_id is not None:
            return await _score(job_id, index, plan, cancel, stopping)
        if plan.ingestion_kb is not None:
            from studio.services.knowledge_jobs import ingest_part

            return await ingest_part(
                job_id=job_id,
                index=index,
                kb_id=plan.ingestion_kb,
                cancel=cancel,
                stopping=stopping,
            )
        progress = await execute_run(run_id=plan.run_id, cancel=cancel, part=plan.part)
    except StudioError as exc:
        await asyncio.to_thread(_end, job_id, index, "failed", str(exc))
        return "failed"
    except asyncio.CancelledError:
        await asyncio.shield(asyncio.to_thread(_end, job_id, index, "queued"))
        raise
    except Exception as exc:  # reported on the job, never lost in a log
        log.exception("part %s of job %s failed", index, job_id)
        error = f"The run stopped unexpectedly ({type(exc).__name__}: {exc})."
        await asyncio.to_thread(_end, job_id, index, "failed", error)
        return "failed"
    finally:
        cancel.set()
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    handed_back = stopping is not None and stopping.is_set()
    if handed_back and progress.done < progress.total:
        await asyncio.to_thread(_end, job_id, index, "queued")
        raise PartHandedBack(f"part {index} of job {job_id} goes back to the queue")
    state = "cancelled" if progress.status == "cancelled" else "done"
    await asyncio.to_thread(_end, job_id, index, state)
    await asyncio.to_thread(settle, job_id)
    return state
