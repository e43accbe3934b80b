"""Fine-tuning jobs: a dataset version and a base model become a new model in the base
model's group, with its lineage.

A job is a :class:`~studio.store.tables.Job` of kind ``finetuning``: ``params`` hold what
it was asked to do (base model, columns, hyperparameters) and what it planned (rows, steps,
the backend); :class:`~studio.store.tables.FineTuneMetric` rows hold its losses per step,
:class:`~studio.store.tables.FineTuneLog` rows its log. Its state moves queued → running →
succeeded, failed (with the reason) or cancelled.

Two backends:

* ``local``: a LoRA adapter trained on the built-in SmolLM2 on this machine's CPU
  (:mod:`studio.services.finetune_local`);
* ``openai``: the fine-tuning API of an OpenAI-kind connection (upload, create, follow,
  cancel; :mod:`studio.services.finetune_openai`).

Either way the work runs in a separate worker process (:mod:`studio.services.finetune_worker`),
never in the UI or gateway process; the process that starts a job may end at once. A worker
that died (a crash, SIGKILL, a reboot) leaves its job running without a heartbeat: the job
shows as stalled and :func:`resume_job` starts a new worker, which goes on from the last
checkpoint (local) or follows the provider's job again (openai).

Everything is checked before a job is queued (:mod:`studio.services.finetune_data`), and the
resulting model is registered in one transaction with its lineage, so a failed or cancelled
job never leaves a half-registered model.

Rules: a job is its app's (:mod:`studio.services.app_access`): reading needs access to the
app; starting, cancelling and resuming also the admin or member role.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, col, select

from studio.core.errors import ConflictError, DatasetError, NotFoundError
from studio.core.settings import get_settings
from studio.services.app_access import check_app, visible_apps
from studio.services.datasets import get_version, load_rows
from studio.services.finetune_base import DEFAULT_LEARNING_RATE, resolve_base, token_counter
from studio.services.finetune_data import check_examples, examples_from_rows, split_examples
from studio.services.jobs import aware_utc, elapsed_seconds
from studio.services.members import require_member_role
from studio.store import session_scope
from studio.store.tables import (
    Dataset,
    FineTunedModel,
    FineTuneLog,
    FineTuneMetric,
    Job,
    Model,
    utcnow,
)

__all__ = [
    "ACTIVE",
    "FINAL",
    "KIND",
    "FineTuneCreate",
    "FineTuneView",
    "cancel_job",
    "create_job",
    "get_job",
    "job_logs",
    "job_metrics",
    "list_jobs",
    "resume_job",
    "start_worker",
    "wait_job",
]

KIND = "finetuning"
ACTIVE = ("queued", "running")
FINAL = ("succeeded", "failed", "cancelled")
LOCAL_MAX_ROWS = 2_000  # a CPU trains a few steps a second: more would take hours
STALLED_AFTER_S = 90.0  # a worker beats every few seconds; this long without a beat: gone


class FineTuneCreate(BaseModel):
    """What a person asks for; the defaults suit a few hundred rows on a small model."""

    model_config = ConfigDict(extra="forbid")

    base_model: str = Field(
        min_length=1,
        max_length=300,
        description="The model to start from: builtin/smollm2-135m-instruct (trained here, on "
        "the CPU) or a model of an OpenAI-kind connection (trained by its server).",
    )
    dataset_version_id: int = Field(ge=1, description="The dataset version to learn from.")
    prompt_column: str | None = Field(default=None, description="Column with the prompts.")
    completion_column: str | None = Field(
        default=None, description="Column with the answers the model should learn to give."
    )
    messages_column: str | None = Field(
        default=None,
        description="Instead of prompt and completion: a column of chat conversations "
        "(JSON Lines chat format) whose last message is the assistant's answer.",
    )
    validation_share: float = Field(
        default=0.1,
        ge=0.0,
        le=0.5,
        description="Share of the rows kept out of training to measure the validation loss.",
    )
    epochs: int = Field(
        default=3, ge=1, le=20, description="Passes over the training rows (3 is typical)."
    )
    learning_rate: float = Field(
        default=DEFAULT_LEARNING_RATE,
        gt=0.0,
        le=0.1,
        description="Step size of the optimiser. 1e-3 lets a LoRA adapter learn from tens of "
        "rows in a few epochs; lower it for thousands of rows. An OpenAI server keeps its own "
        "default unless this is changed (then it gets the ratio as its multiplier).",
    )
    lora_rank: int = Field(
        default=8,
        ge=1,
        le=64,
        description="Size of the LoRA adapter: higher learns more and trains slower "
        "(local jobs only).",
    )
    batch_size: int = Field(default=4, ge=1, le=64, description="Examples per training step.")
    seed: int = Field(default=0, ge=0, description="Seeds the split and the training.")
    checkpoint_every: int = Field(
        default=10,
        ge=1,
        le=10_000,
        description="Steps between checkpoints of a local job (a crashed job resumes there).",
    )
    name: str | None = Field(
        default=None,
        max_length=200,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$",
        description="Name of the resulting model (default: the base's name and the job id).",
    )


class FineTuneView(BaseModel):
    """What a face shows of a fine-tuning job."""

    id: int
    app_id: int | None
    state: str
    backend: str
    base_model: str
    dataset_version_id: int
    columns: dict[str, str]
    hyperparameters: dict[str, Any]
    train_rows: int
    validation_rows: int
    step: int
    total_steps: int
    train_loss: float | None
    val_loss: float | None
    error: str | None
    cancel_requested: bool
    stalled: bool
    model: str | None
    remote_id: str | None
    actor: str
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
    def eta_s(self) -> float | None:
        """Seconds left at the pace so far (None before the first step)."""
        if not self.active or self.step <= 0 or self.total_steps <= self.step:
            return None
        return self.elapsed_s / self.step * (self.total_steps - self.step)


# -- views -----------------------------------------------------------------------------


def _stalled(job: Job) -> bool:
    """A job no worker is beating for: its worker died, or never started."""
    if job.state not in ACTIVE:
        return False
    beat = job.heartbeat_at or job.started_at or job.created_at
    return datetime.now(UTC) - aware_utc(beat) > timedelta(seconds=STALLED_AFTER_S)


def _view(session: Session, job: Job) -> FineTuneView:
    assert job.id is not None
    p = job.params
    last = session.exec(
        select(FineTuneMetric)
        .where(FineTuneMetric.job_id == job.id)
        .order_by(col(FineTuneMetric.step).desc())
        .limit(1)
    ).first()
    val = session.exec(
        select(FineTuneMetric.val_loss)
        .where(FineTuneMetric.job_id == job.id, col(FineTuneMetric.val_loss).is_not(None))
        .order_by(col(FineTuneMetric.step).desc())
        .limit(1)
    ).first()
    made = session.exec(select(FineTunedModel).where(FineTunedModel.job_id == job.id)).first()
    model = session.get(Model, made.model_id) if made is not None else None
    return FineTuneView(
        id=job.id,
        app_id=job.app_id,
        state=job.state,
        backend=p.get("backend", "local"),
        base_model=p.get("base_model", ""),
        dataset_version_id=p.get("dataset_version_id", job.subject_id or 0),
        columns=p.get("columns", {}),
        hyperparameters=p.get("hyperparameters", {}),
        train_rows=p.get("train_rows", 0),
        validation_rows=p.get("validation_rows", 0),
        step=last.step if last is not None else 0,
        total_steps=job.total,
        train_loss=last.train_loss if last is not None else None,
        val_loss=val,
        error=job.error,
        cancel_requested=job.cancel_requested,
        stalled=_stalled(job),
        model=model.name if model is not None else None,
        remote_id=p.get("remote_job_id"),
        actor=job.actor,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


def _job(session: Session, job_id: int, action: str) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.kind != KIND:
        raise NotFoundError(
            f"No fine-tuning job {job_id}.", hint="See the jobs with `studio finetune list`."
        )
    check_app(session=session, app_id=job.app_id, action=action, what="fine-tuning job")
    return job


# -- the service -----------------------------------------------------------------------


def create_job(*, data: FineTuneCreate, actor: str, start: bool = True) -> FineTuneView:
    """Check everything, then queue the job and start its worker (unless ``start`` is false)."""
    require_member_role("start fine-tuning jobs")
    with session_scope() as session:
        version = get_version(session=session, version_id=data.dataset_version_id)
        dataset = session.get(Dataset, version.dataset_id)
        assert dataset is not None
        check_app(
            session=session,
            app_id=dataset.app_id,
            action="start fine-tuning jobs",
            what="dataset version",
        )
        backend = resolve_base(session, data.base_model)
        rows = load_rows(session=session, version_id=version.id or 0)
        examples = examples_from_rows(
            rows,
            version.columns,
            prompt_column=data.prompt_column,
            completion_column=data.completion_column,
            messages_column=data.messages_column,
        )
        counts = check_examples(
            examples,
            context_window=backend.context_window,
            count_tokens=token_counter(session, backend),
            max_rows=LOCAL_MAX_ROWS if backend.kind == "local" else 50_000,
        )
        if data.name and session.exec(select(Model).where(Model.name == data.name)).first():
            raise ConflictError(
                f"A model named '{data.name}' already exists.",
                hint="Pick another name for the fine-tuned model, or leave it empty.",
            )
        split = split_examples(examples, validation_share=data.validation_share, seed=data.seed)
        if backend.kind == "local" and not split.validation and data.validation_share > 0:
            raise DatasetError("There are too few rows to keep some for validation.")
        steps_per_epoch = -(-len(split.train) // data.batch_size)
        columns = (
            {"messages": data.messages_column}
            if data.messages_column
            else {"prompt": data.prompt_column or "", "completion": data.completion_column or ""}
        )
        hyper = data.model_dump(
            include={
                "epochs",
                "learning_rate",
                "lora_rank",
                "batch_size",
                "validation_share",
                "checkpoint_every",
            }
        )
        hyper["seed"] = data.seed
        job = Job(
            kind=KIND,
            subject_id=version.id,
            app_id=dataset.app_id,
            actor=actor,
            executor="worker",
            total=steps_per_epoch * data.epochs if backend.kind == "local" else 0,
            parts=0,
            params={
                "backend": backend.kind,
                "base_model": backend.base_model,
                "connection": backend.connection,
                "provider_model": backend.provider_model,
                "prompt_kind": backend.prompt_kind,
                "group": backend.group,
                "dataset_version_id": version.id,
                "columns": columns,
                "hyperparameters": hyper,
                "name": data.name,
                "train_rows": len(split.train),
                "validation_rows": len(split.validation),
                "tokens": sum(counts),
            },
        )
        session.add(job)
        session.flush()
        assert job.id is not None
        session.add(
            FineTuneLog(
                job_id=job.id,
                message=f"Queued: {len(split.train)} training rows and {len(split.validation)} "
                f"validation rows ({sum(counts):,} tokens) from dataset version {version.id}, "
                f"on {backend.base_model}.",
            )
        )
        job_id = job.id
    if start:
        start_worker(job_id)
    return get_job(job_id=job_id)


def start_worker(job_id: int) -> int:
    """Start the job's worker process (detached: it outlives the caller); its pid."""
    home = get_settings().ensure_home() / "finetune"
    home.mkdir(parents=True, exist_ok=True)
    with (home / f"job-{job_id}.log").open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "studio.services.finetune_worker", str(job_id)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=os.environ.copy(),
        )
    return process.pid


def get_job(*, job_id: int) -> FineTuneView:
    with session_scope() as session:
        return _view(session, _job(session, job_id, "see fine-tuning jobs"))


def list_jobs(*, app_id: int | None = None, limit: int = 100) -> list[FineTuneView]:
    """Fine-tuning jobs newest first, of the apps the caller may use."""
    with session_scope() as session:
        visible = visible_apps(session=session, action="list fine-tuning jobs")
        query = select(Job).where(Job.kind == KIND).order_by(col(Job.id).desc()).limit(limit)
        if visible is not None:
            query = query.where(col(Job.app_id).in_(visible))
        if app_id is not None:
            query = query.where(Job.app_id == app_id)
        return [_view(session, job) for job in session.exec(query).all()]


def job_metrics(*, job_id: int) -> list[FineTuneMetric]:
    """The job's losses, step by step."""
    with session_scope() as session:
        _job(session, job_id, "see fine-tuning jobs")
        rows = session.exec(
            select(FineTuneMetric)
            .where(FineTuneMetric.job_id == job_id)
            .order_by(col(FineTuneMetric.step))
        ).all()
        return [FineTuneMetric.model_validate(r.model_dump()) for r in rows]


def job_logs(*, job_id: int, after_id: int = 0) -> list[FineTuneLog]:
    """The job's log lines (those after ``after_id``, to follow a log)."""
    with session_scope() as session:
        _job(session, job_id, "see fine-tuning jobs")
        rows = session.exec(
            select(FineTuneLog)
            .where(FineTuneLog.job_id == job_id, col(FineTuneLog.id) > after_id)
            .order_by(col(FineTuneLog.id))
        ).all()
        return [FineTuneLog.model_validate(r.model_dump()) for r in rows]


def cancel_job(*, job_id: int) -> FineTuneView:
    """Ask the job to stop. Its worker stops within seconds (and cancels the provider's
    job); a job no worker is running (queued, or stalled) is cancelled at once."""
    require_member_role("cancel fine-tuning jobs")
    with session_scope() as session:
        job = _job(session, job_id, "cancel fine-tuning jobs")
        if job.state in ACTIVE:
            job.cancel_requested = True
            if _stalled(job):
                job.state, job.finished_at = "cancelled", utcnow()
                session.add(
                    FineTuneLog(job_id=job_id, message="Cancelled (no worker was running).")
                )
            session.add(job)
    return get_job(job_id=job_id)


def resume_job(*, job_id: int) -> FineTuneView:
    """Start a new worker for a job whose worker died; it goes on from the last checkpoint."""
    require_member_role("resume fine-tuning jobs")
    with session_scope() as session:
        job = _job(session, job_id, "resume fine-tuning jobs")
        if job.state in FINAL:
            raise ConflictError(
                f"Fine-tuning job {job_id} has {job.state} already.",
                hint="Start a new job to train again.",
            )
        if not _stalled(job):
            raise ConflictError(
                f"Fine-tuning job {job_id} is {job.state}: {_beat(job)}.",
                hint="Wait for it, or cancel it.",
            )
        job.heartbeat_at = utcnow()  # the new worker has a while to start
        session.add(job)
        session.add(FineTuneLog(job_id=job_id, message="Resumed: a new worker takes over."))
    start_worker(job_id)
    return get_job(job_id=job_id)


def _beat(job: Job) -> str:
    if job.heartbeat_at is None:
        return "its worker is starting"
    seconds = (datetime.now(UTC) - aware_utc(job.heartbeat_at)).total_seconds()
    return f"its worker reported {seconds:.0f} s ago"


def wait_job(*, job_id: int, timeout: float | None = None, every: float = 0.5) -> FineTuneView:
    """Poll until the job ends (or ``timeout`` passes); its latest view."""
    import time

    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        view = get_job(job_id=job_id)
        if not view.active or (deadline is not None and time.monotonic() >= deadline):
            return view
        time.sleep(every)
