"""The runs of the studio UI, as jobs (:mod:`studio.services.jobs`).

A page cannot wait on a run: it would block the user's Cancel. :class:`RunJobs`
enqueues a run as a job (executed by ``studio worker`` processes on PostgreSQL,
or by a thread of this process) and reads a run's latest job back from the
database, so the progress panel and Cancel work for a run executed by any
worker, and for a run started by another studio process. Progress is the rows
written in the database.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from studio.services.jobs import JobView, cancel_job, enqueue_run, job_for_run, wait_job
from studio.services.runs import RunProgress

__all__ = ["RunJob", "RunJobs", "run_jobs"]

log = logging.getLogger(__name__)


@dataclass
class RunJob:
    """A run's latest job as last read from the database."""

    run_id: int
    job: JobView
    cancel: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        if self.job.cancel_requested:
            self.cancel.set()

    @property
    def progress(self) -> RunProgress:
        j = self.job
        status = {"queued": "running", "succeeded": "done"}.get(j.state, j.state)
        return RunProgress(
            run_id=self.run_id,
            total=j.total,
            done=j.done,
            errors=j.errors,
            cached=j.cached,
            elapsed_s=j.elapsed_s,
            status=status,
        )

    @property
    def running(self) -> bool:
        return self.job.active

    @property
    def error(self) -> str | None:
        return self.job.error if self.job.state == "failed" else None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run stops; False if it is still going after ``timeout``."""
        self.job = wait_job(job_id=self.job.id, timeout=timeout)
        if self.job.cancel_requested:
            self.cancel.set()
        return not self.running


class RunJobs:
    """The runs' jobs, by run id (the database is the registry: any process sees them)."""

    def start(self, run_id: int, total: int, actor: str = "ui") -> RunJob:
        """Execute (or resume) a run as a job; one active job per run at a time."""
        return RunJob(run_id=run_id, job=enqueue_run(run_id=run_id, actor=actor))

    def get(self, run_id: int) -> RunJob | None:
        job = job_for_run(run_id=run_id)
        return RunJob(run_id=run_id, job=job) if job is not None else None

    def cancel(self, run_id: int) -> bool:
        job = job_for_run(run_id=run_id)
        if job is None or not job.active:
            return False
        cancel_job(job_id=job.id)
        return True


_JOBS = RunJobs()


def run_jobs() -> RunJobs:
    """The process-wide registry (one studio process serves every browser tab)."""
    return _JOBS
