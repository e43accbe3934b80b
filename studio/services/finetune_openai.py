"""Fine-tuning on an OpenAI-compatible server: the worker's side of an ``openai`` job.

The worker writes the training and validation rows as chat-format JSON Lines, uploads
them (``POST /files``), creates the provider's job (``POST /fine_tuning/jobs``) and saves
its id at once, so a resumed worker follows the same job instead of starting another.
It then polls the job and its events with a growing pause (a 429's Retry-After is waited
out by the connection's retries, and a rate limit that outlasts them only lengthens the
pause), turns ``metrics`` events into loss points and the others into log lines, and
cancels the provider's job when someone presses Cancel. When the job succeeds, the
``fine_tuned_model`` id is registered as a model of the connection in the base model's
group.

Rules: no check here; the worker acts as WORKER for a job that
:mod:`studio.services.finetune` checked when it was queued.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from studio.core.errors import ConfigError, ProviderError, ProviderRateLimitError
from studio.core.schemas import ModelType
from studio.models.connections import get_provider
from studio.models.specs import ModelCreate
from studio.providers.openai import OpenAIProvider
from studio.providers.openai_finetune import FineTuningClient, RemoteEvent, RemoteJob
from studio.services.finetune_base import DEFAULT_LEARNING_RATE
from studio.services.finetune_data import Example
from studio.services.finetune_records import (
    Heartbeat,
    JobCancelled,
    finish,
    load_split,
    log_line,
    record_metric,
    register_model,
    update_params,
)
from studio.store import session_scope

__all__ = ["POLL_FIRST_S", "POLL_MAX_S", "jsonl", "run_openai_job"]

POLL_FIRST_S = 2.0
POLL_MAX_S = 30.0
MAX_FAULTS = 8  # polls in a row that failed (other than rate limits) before giving up
_DONE = {"succeeded", "failed", "cancelled"}


def jsonl(examples: list[Example]) -> bytes:
    """Chat-format JSON Lines, one conversation per line, the answer last."""
    lines = []
    for e in examples:
        messages = [m.model_dump(exclude_none=True) for m in e.messages]
        messages.append({"role": "assistant", "content": e.completion})
        lines.append(json.dumps({"messages": messages}, ensure_ascii=False))
    return ("\n".join(lines) + "\n").encode()


def _client(params: dict[str, Any]) -> FineTuningClient:
    with session_scope() as session:
        provider = get_provider(session=session, name=params["connection"])
    if not isinstance(provider, OpenAIProvider):
        raise ConfigError(f"Connection '{params['connection']}' is not an OpenAI-kind connection.")
    return FineTuningClient(provider)


def _remote_hyperparameters(hyper: dict[str, Any]) -> dict[str, Any]:
    """The provider's own names; the learning rate is sent only when it was changed, as a
    multiplier of the provider's default (which is what the API takes)."""
    out: dict[str, Any] = {"n_epochs": hyper["epochs"], "batch_size": hyper["batch_size"]}
    if hyper.get("learning_rate") not in (None, DEFAULT_LEARNING_RATE):
        out["learning_rate_multiplier"] = round(hyper["learning_rate"] / DEFAULT_LEARNING_RATE, 4)
    return out


async def _start(client: FineTuningClient, job_id: int, params: dict[str, Any]) -> str:
    train, validation = load_split(params)
    training_file = await client.upload(f"studio-job-{job_id}-train.jsonl", jsonl(train))
    validation_file = (
        await client.upload(f"studio-job-{job_id}-validation.jsonl", jsonl(validation))
        if validation
        else None
    )
    log_line(job_id, f"Uploaded {len(train)} training and {len(validation)} validation rows.")
    remote = await client.create_job(
        model=params["provider_model"],
        training_file=training_file,
        validation_file=validation_file,
        hyperparameters=_remote_hyperparameters(params["hyperparameters"]),
        suffix=f"studio-{job_id}",
        seed=params["hyperparameters"].get("seed"),
    )
    update_params(job_id, remote_job_id=remote.id, training_file=training_file)
    log_line(job_id, f"The provider created job {remote.id} ({remote.status}).")
    return remote.id


def _take(job_id: int, events: list[RemoteEvent], seen: set[str]) -> bool:
    """Record the events not seen yet; True if there were any."""
    new = [e for e in events if e.id not in seen]
    for event in new:
        seen.add(event.id)
        data = event.data or {}
        if event.type == "metrics" and "step" in data:
            total = data.get("total_steps")
            record_metric(
                job_id,
                step=int(data["step"]),
                epoch=float(data.get("epoch") or 0.0),
                train_loss=data.get("train_loss"),
                val_loss=data.get("valid_loss", data.get("full_valid_loss")),
            )
            if total:
                update_params(job_id, total_steps=int(total))
        else:
            level = event.level if event.level in ("info", "warning", "error") else "info"
            log_line(job_id, event.message or event.type or "event", level)
    if new:
        update_params(job_id, seen_events=sorted(seen)[-1000:])
    return bool(new)


async def _follow(
    client: FineTuningClient, job_id: int, remote_id: str, beat: Heartbeat, seen: set[str]
) -> RemoteJob:
    pause, faults = POLL_FIRST_S, 0
    while True:
        if beat.stop_requested:
            await client.cancel(remote_id)
            raise JobCancelled
        try:
            remote = await client.get_job(remote_id)
            fresh = _take(job_id, await client.events(remote_id), seen)
            faults = 0
        except ProviderRateLimitError:
            log_line(job_id, f"The provider is rate limiting; next poll in {pause * 2:.0f} s.")
            fresh, pause = False, min(POLL_MAX_S, pause * 2)
            remote = None
        except ProviderError as exc:
            faults += 1
            if faults >= MAX_FAULTS:
                raise
            log_line(job_id, f"Polling failed ({exc}); trying again.", "warning")
            fresh, remote = False, None
        if remote is not None and remote.status in _DONE:
            return remote
        pause = POLL_FIRST_S if fresh else min(POLL_MAX_S, pause * 1.5)
        await _sleep(pause, beat)


async def _sleep(seconds: float, beat: Heartbeat) -> None:
    """Sleep, waking early when someone presses Cancel."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end and not beat.stop_requested:
        await asyncio.sleep(min(0.2, end - loop.time()))


async def _run(job_id: int, params: dict[str, Any], beat: Heartbeat) -> None:
    client = _client(params)
    try:
        remote_id = params.get("remote_job_id") or await _start(client, job_id, params)
        remote = await _follow(client, job_id, remote_id, beat, set(params.get("seen_events", [])))
    finally:
        await client.provider.aclose()
    if remote.status == "cancelled":
        finish(job_id, "cancelled")
        return
    if remote.status == "failed" or not remote.fine_tuned_model:
        finish(job_id, "failed", f"The provider's job {remote.id} failed: {remote.reason}")
        return
    metrics = _last_losses(job_id)
    connection = params["connection"]
    name = params.get("name") or f"{connection}/{remote.fine_tuned_model}"
    register_model(
        job_id,
        model=ModelCreate(
            name=name,
            model_type=ModelType.CHAT_COMPLETION,
            description=f"Fine-tuned from {params['base_model']} by fine-tuning job {job_id}.",
            connection=connection,
            provider_model=remote.fine_tuned_model,
            model_group=params.get("group"),
        ),
        final_train_loss=metrics[0],
        final_val_loss=metrics[1],
    )


def _last_losses(job_id: int) -> tuple[float | None, float | None]:
    from sqlmodel import col, select

    from studio.store.tables import FineTuneMetric

    with session_scope() as session:
        rows = session.exec(
            select(FineTuneMetric)
            .where(FineTuneMetric.job_id == job_id)
            .order_by(col(FineTuneMetric.step))
        ).all()
    train = next((r.train_loss for r in reversed(rows) if r.train_loss is not None), None)
    val = next((r.val_loss for r in reversed(rows) if r.val_loss is not None), None)
    return train, val


def run_openai_job(job_id: int, params: dict[str, Any]) -> None:
    """Carry out an ``openai`` job (the worker process calls this after its claim)."""
    with Heartbeat(job_id) as beat:
        asyncio.run(_run(job_id, params, beat))
