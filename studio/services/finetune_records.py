"""What a fine-tuning worker writes: its claim on the job, heartbeats, losses, log lines,
and the job's end, with the resulting model registered in the same transaction as its
lineage and the job's success (so a failure at any point registers nothing).

Rules: no check here; a worker acts as :data:`~studio.core.identity.WORKER` for a job that
:mod:`studio.services.finetune` checked when it was queued.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from sqlmodel import Session, select

from studio.core.errors import ConfigError, StudioError
from studio.models.registry import create_model
from studio.models.specs import ModelCreate
from studio.services.datasets import load_rows
from studio.services.finetune_data import Example, examples_from_rows, split_examples
from studio.store import session_scope
from studio.store.tables import (
    DatasetVersion,
    FineTunedModel,
    FineTuneLog,
    FineTuneMetric,
    Job,
    ModelDeployment,
    utcnow,
)

__all__ = [
    "BEAT_EVERY_S",
    "Heartbeat",
    "JobCancelled",
    "claim",
    "finish",
    "load_split",
    "log_line",
    "record_metric",
    "register_model",
    "update_params",
]

log = logging.getLogger(__name__)
BEAT_EVERY_S = 2.0


class JobCancelled(Exception):
    """Someone pressed Cancel: the worker stops and the job ends cancelled."""


def _lock(session: Session, job_id: int) -> Job | None:
    return session.exec(select(Job).where(Job.id == job_id).with_for_update()).first()


def claim(job_id: int) -> dict[str, Any] | None:
    """Mark the job running for this process; its params, or None if there is nothing to
    do (finished, cancelled, gone)."""
    with session_scope() as session:
        job = _lock(session, job_id)
        if job is None or job.state not in ("queued", "running"):
            return None
        if job.cancel_requested:
            job.state, job.finished_at = "cancelled", utcnow()
            session.add(job)
            session.add(FineTuneLog(job_id=job_id, message="Cancelled before it started."))
            return None
        now = utcnow()
        job.state, job.started_at, job.heartbeat_at = "running", job.started_at or now, now
        job.params = {**job.params, "worker_pid": os.getpid()}
        session.add(job)
        return dict(job.params)


def update_params(job_id: int, **changes: Any) -> None:
    with session_scope() as session:
        job = _lock(session, job_id)
        if job is not None:
            job.params = {**job.params, **changes}
            if "total_steps" in changes:
                job.total = int(changes["total_steps"])
            session.add(job)


def log_line(job_id: int, message: str, level: str = "info") -> None:
    with session_scope() as session:
        session.add(FineTuneLog(job_id=job_id, message=message, level=level))


def record_metric(
    job_id: int,
    *,
    step: int,
    epoch: float,
    train_loss: float | None = None,
    val_loss: float | None = None,
) -> None:
    """Store a step's losses; a step seen again (a resumed job) is overwritten, and a value
    given as None keeps the stored one."""
    with session_scope() as session:
        row = session.exec(
            select(FineTuneMetric).where(
                FineTuneMetric.job_id == job_id, FineTuneMetric.step == step
            )
        ).first()
        if row is None:
            row = FineTuneMetric(job_id=job_id, step=step, epoch=epoch)
        row.epoch, row.at = epoch, utcnow()
        if train_loss is not None:
            row.train_loss = float(train_loss)
        if val_loss is not None:
            row.val_loss = float(val_loss)
        session.add(row)
        job = session.get(Job, job_id)
        if job is not None and step > job.done:  # the Jobs page shows done of total
            job.done = step
            session.add(job)


def _stop_asked(job_id: int) -> bool:
    with session_scope() as session:
        job = session.get(Job, job_id)
        if job is None:
            return True
        job.heartbeat_at = utcnow()
        session.add(job)
        return job.cancel_requested or job.state != "running"


class Heartbeat:
    """Beats the job's heartbeat from a thread and notices a Cancel (``stop_requested``)."""

    def __init__(self, job_id: int, every: float = BEAT_EVERY_S) -> None:
        self.job_id, self.every = job_id, every
        self.stop_requested = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"beat-{job_id}", daemon=True)

    def _loop(self) -> None:
        while not self._done.wait(self.every):
            try:
                self.stop_requested = self.stop_requested or _stop_asked(self.job_id)
            except Exception:  # a database hiccup must not kill the training
                log.exception("heartbeat of fine-tuning job %s failed", self.job_id)

    def check(self) -> None:
        """Raise :class:`JobCancelled` when the job was asked to stop."""
        if self.stop_requested:
            raise JobCancelled

    def __enter__(self) -> Heartbeat:
        self.stop_requested = _stop_asked(self.job_id)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._done.set()
        self._thread.join(timeout=self.every + 1)


def finish(job_id: int, state: str, error: str | None = None) -> None:
    """End the job (failed with ``error``, or cancelled); an ended job stays as it is."""
    with session_scope() as session:
        job = _lock(session, job_id)
        if job is None or job.state not in ("queued", "running"):
            return
        job.state, job.finished_at, job.error = state, utcnow(), error
        session.add(job)
        message = {"cancelled": "Cancelled.", "failed": f"Failed: {error}"}.get(state, state)
        session.add(FineTuneLog(job_id=job_id, message=message, level="error" if error else "info"))


def register_model(
    job_id: int,
    *,
    model: ModelCreate,
    final_train_loss: float | None,
    final_val_loss: float | None,
    artifact: str | None = None,
    prepare: Callable[[Session], None] | None = None,
) -> str | None:
    """Register the model, its lineage and the job's success in one transaction; the
    model's name, or None when the job was cancelled meanwhile. A refusal (a name taken
    since) fails the job and registers nothing."""
    try:
        with session_scope() as session:
            job = _lock(session, job_id)
            if job is None or job.state != "running":
                return None
            if job.cancel_requested:
                job.state, job.finished_at = "cancelled", utcnow()
                session.add(job)
                session.add(FineTuneLog(job_id=job_id, message="Cancelled; no model registered."))
                return None
            if prepare is not None:
                prepare(session)
            row = create_model(session=session, data=model, local=True)
            deployment = session.exec(
                select(ModelDeployment).where(ModelDeployment.model_id == row.id)
            ).first()
            if deployment is not None and deployment.status == "FAILED":
                raise ConfigError(f"the model does not load: {deployment.status_reason}")
            p = job.params
            session.add(
                FineTunedModel(
                    job_id=job_id,
                    model_id=row.id,
                    app_id=job.app_id,
                    base_model=p.get("base_model", ""),
                    dataset_version_id=p.get("dataset_version_id", job.subject_id or 0),
                    columns=p.get("columns", {}),
                    hyperparameters=p.get("hyperparameters", {}),
                    final_train_loss=final_train_loss,
                    final_val_loss=final_val_loss,
                    artifact=artifact,
                )
            )
            job.state, job.finished_at = "succeeded", utcnow()
            session.add(job)
            session.add(FineTuneLog(job_id=job_id, message=f"Succeeded: model {row.name}."))
            return row.name
    except StudioError as exc:
        finish(job_id, "failed", f"The model could not be registered: {exc}")
        return None


def load_split(params: dict[str, Any]) -> tuple[list[Example], list[Example]]:
    """The job's training and validation examples (the same split every time)."""
    columns, hyper = params["columns"], params["hyperparameters"]
    with session_scope() as session:
        version = session.get(DatasetVersion, params["dataset_version_id"])
        if version is None:
            raise ConfigError("The job's dataset version no longer exists.")
        rows = load_rows(session=session, version_id=version.id or 0)
        examples = examples_from_rows(
            rows,
            version.columns,
            prompt_column=columns.get("prompt"),
            completion_column=columns.get("completion"),
            messages_column=columns.get("messages"),
        )
    split = split_examples(examples, validation_share=hyper["validation_share"], seed=hyper["seed"])
    return split.train, split.validation
