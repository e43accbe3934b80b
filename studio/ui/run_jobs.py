"""Runs in the background of a long-lived process (the studio UI).

A page cannot wait on a run: it would block the user's Cancel. A
:class:`RunJobs` registry starts each run on a worker thread with its own
event loop and keeps its live :class:`~studio.services.runs.RunProgress` and a
cancel flag, so any later page render can read the progress, cancel the run,
or wait for it. Every row is still written by the run engine as it finishes, so
a process that dies mid-run loses nothing: the run can be resumed.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from studio.core.errors import ConflictError, StudioError
from studio.services.run_results import mark_failed
from studio.services.runs import RunProgress, run_sync

__all__ = ["RunJob", "RunJobs", "run_jobs"]

log = logging.getLogger(__name__)


@dataclass
class RunJob:
    run_id: int
    progress: RunProgress
    cancel: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    error: str | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run stops; False if it is still going after ``timeout``."""
        if self.thread is not None:
            self.thread.join(timeout)
        return not self.running


class RunJobs:
    """The background runs of this process, by run id."""

    def __init__(self) -> None:
        self._jobs: dict[int, RunJob] = {}
        self._lock = threading.Lock()

    def start(self, run_id: int, total: int) -> RunJob:
        """Execute (or resume) a run on a worker thread; one job per run at a time."""
        with self._lock:
            current = self._jobs.get(run_id)
            if current is not None and current.running:
                raise ConflictError(f"Run {run_id} is already running.")
            job = RunJob(run_id=run_id, progress=RunProgress(run_id=run_id, total=total))
            job.thread = threading.Thread(
                target=self._work, args=(job,), name=f"run-{run_id}", daemon=True
            )
            self._jobs[run_id] = job
        job.thread.start()
        return job

    def get(self, run_id: int) -> RunJob | None:
        with self._lock:
            return self._jobs.get(run_id)

    def cancel(self, run_id: int) -> bool:
        job = self.get(run_id)
        if job is None or not job.running:
            return False
        job.cancel.set()
        return True

    @staticmethod
    def _work(job: RunJob) -> None:
        def seen(progress: RunProgress) -> None:
            job.progress = progress.model_copy()

        try:
            job.progress = run_sync(run_id=job.run_id, on_progress=seen, cancel=job.cancel)
        except StudioError as exc:
            job.error = str(exc)
        except Exception as exc:  # a worker thread must report, never die silently
            log.exception("run %s failed", job.run_id)
            job.error = f"The run stopped unexpectedly ({type(exc).__name__}: {exc})."
        if job.error is not None:
            job.progress = job.progress.model_copy(update={"status": "failed"})
            try:
                mark_failed(run_id=job.run_id, error=job.error)
            except Exception:
                log.exception("could not record that run %s failed", job.run_id)


_JOBS = RunJobs()


def run_jobs() -> RunJobs:
    """The process-wide registry (one studio process serves every browser tab)."""
    return _JOBS
