"""The run engine: one prompt configuration over every row of a dataset version.

Rows run concurrently, bounded by the run's concurrency (default: the
connection's). Each finished row is written at once, so a crash loses nothing
already answered; the ``(run, row, sample)`` unique key means a resumed run
only fills the gaps and never answers a row twice. Cancelling stops new calls
and keeps finished rows. Identical calls (same model, parameters and rendered
prompt) are answered from the response cache unless the run asks for fresh
samples.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from studio import registry
from studio.connections import get_connection
from studio.errors import NotFoundError, StudioError
from studio.schemas import Message, ModelType
from studio.services.datasets import get_version, load_rows
from studio.store import session_scope
from studio.store.tables import ResponseCache, Run, RunResult, utcnow
from studio.templates import PromptTemplate, render, require_columns
from studio.usage import cost_for

__all__ = [
    "RunConfig",
    "RunProgress",
    "cancel_run",
    "create_run",
    "execute_run",
    "list_results",
    "retry_failed",
    "run_sync",
]

DEFAULT_CONCURRENCY = 8


class RunConfig(BaseModel):
    model: str
    prompt: PromptTemplate
    parameters: dict[str, Any] = Field(default_factory=dict)
    concurrency: int | None = Field(default=None, ge=1, le=512)
    samples: int = Field(default=1, ge=1, le=20)
    use_cache: bool = True


class RunProgress(BaseModel):
    run_id: int
    total: int
    done: int = 0
    errors: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    response_tokens: int = 0
    cost: float = 0.0
    elapsed_s: float = 0.0
    status: str = "running"

    @property
    def eta_s(self) -> float | None:
        if not self.done or self.done >= self.total:
            return None
        return self.elapsed_s / self.done * (self.total - self.done)


def create_run(
    *,
    session: Session,
    app_id: int,
    dataset_version_id: int,
    config: RunConfig,
    variant_version_id: int | None = None,
) -> Run:
    """Check the template against the dataset's columns and the model, then record the run."""
    version = get_version(session=session, version_id=dataset_version_id)
    require_columns(config.prompt, list(version.columns))
    _model_type(session, config.model)  # the model must exist before a run is recorded
    run = Run(
        app_id=app_id,
        variant_version_id=variant_version_id,
        dataset_version_id=dataset_version_id,
        model=config.model,
        config=config.model_dump(mode="json"),
        status="pending",
        concurrency=config.concurrency,
        samples=config.samples,
        use_cache=config.use_cache,
        total_rows=version.row_count,
    )
    session.add(run)
    session.flush()
    return run


def _payload(model_type: ModelType, rendered: str | list[Message], params: dict[str, Any]) -> Any:
    if isinstance(rendered, str):
        if model_type is ModelType.COMPLETION:
            return {"prompts": [rendered], **params}
        return {"prompt": rendered, "chat_history": [], **params}
    messages = [m.model_dump(exclude_none=True) for m in rendered]
    if model_type is ModelType.COMPLETION:
        text = "\n\n".join(m.content for m in rendered)
        return {"prompts": [text], **params}
    return {"messages": messages, **params}


def _output(response: dict[str, Any]) -> str:
    if "message" in response:
        return str(response["message"].get("content") or "")
    if "completions" in response:
        completions = response["completions"]
        return str(completions[0][1][0]) if completions and completions[0][1] else ""
    return json.dumps(response)


def _cache_key(model: str, payload: Any, sample: int) -> str:
    raw = json.dumps([model, payload, sample], sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def _persist(result: RunResult) -> bool:
    """Write one finished row; False if that row was already answered."""
    try:
        with session_scope() as session:
            session.add(result)
        return True
    except IntegrityError:
        return False


async def execute_run(
    *,
    run_id: int,
    on_progress: Callable[[RunProgress], None] | None = None,
    cancel: threading.Event | None = None,
) -> RunProgress:
    """Answer every missing (row, sample) of a run; safe to call again to resume."""
    with session_scope() as session:
        run = session.get(Run, run_id)
        if run is None:
            raise NotFoundError(f"No run {run_id}.")
        config = RunConfig.model_validate(run.config)
        rows = load_rows(session=session, version_id=run.dataset_version_id)
        answered = {
            (r.row_index, r.sample_index)
            for r in session.exec(select(RunResult).where(RunResult.run_id == run_id)).all()
        }
        mtype = ModelType(_model_type(session, config.model))
        run.status, run.started_at, run.error = "running", run.started_at or utcnow(), None
        session.add(run)
    todo = [
        (i, s) for i in range(len(rows)) for s in range(config.samples) if (i, s) not in answered
    ]
    progress = RunProgress(run_id=run_id, total=len(rows) * config.samples, done=len(answered))
    started = time.perf_counter()
    limit = asyncio.Semaphore(config.concurrency or DEFAULT_CONCURRENCY)
    lock = asyncio.Lock()

    async def one(row_index: int, sample: int) -> None:
        if cancel is not None and cancel.is_set():
            return
        async with limit:
            if cancel is not None and cancel.is_set():
                return
            result = await _answer(run_id, config, mtype, rows[row_index], row_index, sample)
            written = await asyncio.to_thread(_persist, result)
        async with lock:
            if written:
                progress.done += 1
                progress.errors += 1 if result.error else 0
                progress.cached += 1 if result.cached else 0
                progress.prompt_tokens += result.prompt_tokens or 0
                progress.response_tokens += result.response_tokens or 0
                progress.cost += result.cost or 0.0
            progress.elapsed_s = time.perf_counter() - started
            if on_progress is not None:
                on_progress(progress)

    await asyncio.gather(*(one(i, s) for i, s in todo))
    cancelled = cancel is not None and cancel.is_set() and progress.done < progress.total
    progress.status = "cancelled" if cancelled else "done"
    progress.elapsed_s = time.perf_counter() - started
    with session_scope() as session:
        run = session.get(Run, run_id)
        assert run is not None
        run.status = progress.status
        run.finished_at = utcnow()
        session.add(run)
    if on_progress is not None:
        on_progress(progress)
    return progress


def _model_type(session: Session, ref: str) -> str:
    """The model's type; ``connection/model`` names of a known connection count as chat."""
    try:
        return registry.resolve_model(session=session, ref=ref).model.model_type
    except NotFoundError:
        if "/" not in ref:
            raise
        get_connection(session=session, name=ref.split("/", 1)[0])
        return ModelType.CHAT_COMPLETION.value


async def _answer(
    run_id: int,
    config: RunConfig,
    mtype: ModelType,
    row: dict[str, str],
    row_index: int,
    sample: int,
) -> RunResult:
    result = RunResult(run_id=run_id, row_index=row_index, sample_index=sample)
    try:
        rendered = render(config.prompt, row)
    except StudioError as exc:
        result.error = str(exc)
        return result
    result.rendered_prompt = (
        rendered
        if isinstance(rendered, str)
        else "\n".join(f"[{m.role}] {m.content}" for m in rendered)
    )
    payload = _payload(mtype, rendered, config.parameters)
    key = _cache_key(config.model, payload, sample)
    if config.use_cache:
        cached = await asyncio.to_thread(_cached, key)
        if cached is not None:
            result.output, result.cached = _output(cached), True
            result.latency_ms = 0.0
            return result
    started = time.perf_counter()
    try:
        with session_scope() as session:
            response = await registry.aexecute(
                session=session, ref=config.model, payload=payload, source="run"
            )
    except StudioError as exc:
        result.error = str(exc)
        result.latency_ms = (time.perf_counter() - started) * 1000
        return result
    data = response.model_dump(mode="json")
    result.latency_ms = (time.perf_counter() - started) * 1000
    result.output = _output(data)
    result.prompt_tokens = data.get("prompt_tokens")
    result.response_tokens = data.get("response_tokens")
    with session_scope() as session:
        result.cost = cost_for(
            session=session,
            names=[config.model, config.model.split("/", 1)[-1]],
            prompt_tokens=result.prompt_tokens or 0,
            response_tokens=result.response_tokens or 0,
        )
    await asyncio.to_thread(_store_cache, key, config.model, data)
    return result


def _cached(key: str) -> dict[str, Any] | None:
    with session_scope() as session:
        row = session.get(ResponseCache, key)
        return dict(row.response) if row is not None else None


def _store_cache(key: str, model: str, data: dict[str, Any]) -> None:
    try:
        with session_scope() as session:
            if session.get(ResponseCache, key) is None:
                session.add(ResponseCache(key=key, model=model, response=data))
    except IntegrityError:
        pass  # another worker cached the same call first


def run_sync(
    *,
    run_id: int,
    on_progress: Callable[[RunProgress], None] | None = None,
    cancel: threading.Event | None = None,
) -> RunProgress:
    return asyncio.run(execute_run(run_id=run_id, on_progress=on_progress, cancel=cancel))


def cancel_run(*, session: Session, run_id: int) -> None:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFoundError(f"No run {run_id}.")
    run.status = "cancelled"
    session.add(run)


def retry_failed(*, session: Session, run_id: int) -> int:
    """Forget failed rows so the next execute_run answers them again; returns how many."""
    failed = session.exec(
        select(RunResult).where(RunResult.run_id == run_id, col(RunResult.error).is_not(None))
    ).all()
    for row in failed:
        session.delete(row)
    session.flush()
    return len(failed)


def list_results(*, session: Session, run_id: int) -> list[RunResult]:
    return list(
        session.exec(
            select(RunResult)
            .where(RunResult.run_id == run_id)
            .order_by(col(RunResult.row_index), col(RunResult.sample_index))
        ).all()
    )
