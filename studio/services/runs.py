"""The run engine: one prompt configuration over every row of a dataset version.

Rows run concurrently at the run's concurrency (default: the connection's
limit if it has one, else the studio's default). A connection's own limit, when
the user set one, caps the calls in flight underneath (see
:func:`concurrency_note`). A row's latency is its model call alone, not the
time it queued behind that limit. Each finished row is written at once, so a crash loses nothing
already answered; the ``(run, row, sample)`` unique key means a resumed run
only fills the gaps and never answers a row twice. Cancelling stops new calls
and keeps finished rows. Identical calls (same model, parameters and rendered
prompt) are answered from the response cache unless the run asks for fresh
samples. A run references a stored model by id (``RunConfig.model_id``, filled by
:func:`create_run`), and so does its cache key: renaming the model keeps the run
resumable and its cached answers in use. A run with a retrieval step
(:mod:`studio.services.retrieval`; a variant version's run always has the version's)
searches the knowledge base for each row before rendering it, stores the chunks with the
row, and makes a failed search that row's error; finished rows (written by
:mod:`studio.services.run_writes`) are never searched or asked again.

Rules: reading a run needs access to its app, changing it also the admin or member role.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel, Field
from sqlmodel import Session, col, func, select

from studio.core.errors import NotFoundError, StudioError
from studio.core.identity import current_actor, set_actor
from studio.core.prompting import build_payload, output_text
from studio.core.settings import get_settings
from studio.core.templates import PromptTemplate, render
from studio.models import registry
from studio.models.registry import models as registry_models
from studio.models.usage import Price
from studio.providers.base import Provider, call_clock
from studio.services.app_access import check_app
from studio.services.datasets import get_version
from studio.services.members import require_member_role
from studio.services.retrieval_spec import RetrievalSpec, parse_retrieval, require_prompt_columns
from studio.services.run_notes import concurrency_note
from studio.services.run_part import RunPart
from studio.services.run_writes import Call as _Call
from studio.services.run_writes import model_prices as _prices
from studio.services.run_writes import persist as _persist
from studio.store import session_scope
from studio.store.tables import DatasetRow, ResponseCache, Run, RunResult, VariantVersion, utcnow

__all__ = [
    "RunConfig",
    "RunProgress",
    "cancel_run",
    "concurrency_note",
    "create_run",
    "execute_run",
    "list_results",
    "retry_failed",
    "run_sync",
]

PAGE_SIZE = 500  # dataset rows read at a time
MAX_BATCH = 256  # finished rows written in one transaction, at most


class RunConfig(BaseModel):
    model: str
    model_id: str | None = Field(
        default=None,
        description="The stored model's id (filled by create_run); None for built-in and "
        "connection/model names, whose name is the reference",
    )
    prompt: PromptTemplate
    parameters: dict[str, Any] = Field(default_factory=dict)
    concurrency: int | None = Field(default=None, ge=1, le=512)
    samples: int = Field(default=1, ge=1, le=20)
    use_cache: bool = True
    retrieval: RetrievalSpec | None = Field(
        default=None,
        description="The retrieval step each row runs before its prompt is rendered (for a "
        "variant version's run, the version's own when not given)",
    )


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
    require_member_role("start runs")
    check_app(session=session, app_id=app_id, action="start runs")
    version = get_version(session=session, version_id=dataset_version_id)
    config = _with_retrieval(session, app_id, config, variant_version_id)
    require_prompt_columns(config.prompt, config.retrieval, list(version.columns))
    if config.model_id is None:
        config = config.model_copy(
            update={"model_id": registry_models.stored_model_id(session=session, ref=config.model)}
        )
    registry.model_type(session=session, ref=_model_ref(session, config))  # must exist first
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


def _with_retrieval(
    session: Session, app_id: int, config: RunConfig, variant_version_id: int | None
) -> RunConfig:
    """``config`` with its retrieval step checked; a variant version's run takes the
    version's step when the config names none (the run's snapshot records it)."""
    from studio.services.retrieval import check_retrieval  # the search machinery: lazily

    spec = config.retrieval
    stored = session.get(VariantVersion, variant_version_id) if variant_version_id else None
    if spec is None and stored is not None:
        spec = parse_retrieval(stored.retrieval or None)
    spec = check_retrieval(session=session, spec=spec, app_id=app_id)
    return config.model_copy(update={"retrieval": spec})


def _model_ref(session: Session, config: RunConfig) -> str:
    """The model to call: by id for a stored model (a deleted one says so), else by name."""
    return registry_models.referenced_model(
        session=session, model_id=config.model_id, name=config.model
    )


def _cache_key(model: str, payload: Any, sample: int) -> str:
    raw = json.dumps([model, payload, sample], sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def _cache_keys(config: RunConfig, payload: Any, sample: int) -> tuple[str, ...]:
    """The call's cache key (the model's id, or its name), then the key by name that
    answers cached before models were referenced by id were stored under."""
    key = _cache_key(config.model_id or config.model, payload, sample)
    if config.model_id is None:
        return (key,)
    return key, _cache_key(config.model, payload, sample)


def _workers(config: RunConfig, provider: Provider) -> int:
    """Calls the run keeps in flight: its own number, else the connection's limit, else the
    studio's default."""
    return config.concurrency or provider.options.concurrency or get_settings().default_concurrency


def _open_run(
    run_id: int, part: RunPart | None = None
) -> tuple[RunConfig, int, list[str], int, set[tuple[int, int]]]:
    """Mark the run running; (config, dataset version, columns, row count, answered keys)."""
    with session_scope() as session:
        run = session.get(Run, run_id)
        if run is None:
            raise NotFoundError(f"No run {run_id}.")
        config = RunConfig.model_validate(run.config)
        version = get_version(session=session, version_id=run.dataset_version_id)
        assert version.id is not None
        rows = session.exec(
            select(func.count()).where(DatasetRow.dataset_version_id == version.id)
        ).one()
        keys = select(RunResult.row_index, RunResult.sample_index).where(RunResult.run_id == run_id)
        answered = {(int(i), int(s)) for i, s in session.exec(part.only(keys) if part else keys)}
        run.status, run.started_at, run.error = "running", run.started_at or utcnow(), None
        session.add(run)
        return config, version.id, list(version.columns), int(rows), answered


def _prepare(config: RunConfig) -> tuple[registry.PreparedModel, Price]:
    """Resolve the run's model and its prices once: no row holds a session while it waits."""
    with session_scope() as session:
        ref = _model_ref(session, config)
        mtype = registry.model_type(session=session, ref=ref)
        sample = build_payload(mtype, "", config.parameters)
        prepared = registry.prepare_model(session=session, ref=ref, payload=sample)
        return prepared, _prices(session, prepared)


def _page(
    version_id: int, columns: list[str], after: int, size: int
) -> list[tuple[int, dict[str, str]]]:
    """Up to ``size`` rows whose stored index is above ``after``: (stored index, row)."""
    with session_scope() as session:
        stored = session.exec(
            select(DatasetRow.row_index, DatasetRow.data)
            .where(DatasetRow.dataset_version_id == version_id, DatasetRow.row_index > after)
            .order_by(col(DatasetRow.row_index))
            .limit(size)
        ).all()
    return [(int(i), {c: str(data.get(c, "")) for c in columns}) for i, data in stored]


async def execute_run(
    *,
    run_id: int,
    on_progress: Callable[[RunProgress], None] | None = None,
    cancel: threading.Event | None = None,
    part: RunPart | None = None,
) -> RunProgress:
    """Answer every missing (row, sample) of a run, or of a ``part`` of it (at the part's
    concurrency, leaving the run's status to its job); safe to call again to resume.

    Rows are read a page at a time and fed to ``concurrency`` workers, so memory
    stays flat however large the dataset. All database work goes through one
    thread. It writes each finished row as soon as it is free (the row's result,
    usage and cache entry together); rows that finish while it writes are
    written together next (group commit), so nothing waits on a timer and a
    crash loses only calls still in flight.
    """
    loop = asyncio.get_running_loop()
    config, version_id, columns, rows, answered = _open_run(run_id, part)
    prepared, prices = _prepare(config)
    samples = config.samples
    workers = part.concurrency if part else _workers(config, prepared.provider)
    rows = part.rows(rows) if part else rows
    progress = RunProgress(run_id=run_id, total=rows * samples, done=len(answered))
    started = time.perf_counter()
    queue: asyncio.Queue[tuple[int, int, dict[str, str]] | None] = asyncio.Queue(workers * 2)
    db = ThreadPoolExecutor(  # the database thread acts as the run's caller
        1, thread_name_prefix=f"run-{run_id}-db", initializer=set_actor, initargs=(current_actor(),)
    )
    # Answered rows on their way to the writer (None: the workers are done).
    finished: asyncio.Queue[tuple[RunResult, _Call | None] | None] = asyncio.Queue(workers * 4)
    working = [workers]

    def cancelled() -> bool:
        return cancel is not None and cancel.is_set()

    async def produce() -> None:
        position, after = (part.start, part.after) if part else (0, -1)
        end = part.stop if part else None
        while not cancelled() and (end is None or position < end):
            size = PAGE_SIZE if end is None else min(PAGE_SIZE, end - position)
            page = await loop.run_in_executor(db, _page, version_id, columns, after, size)
            if not page:
                break
            for stored_index, row in page:
                after = stored_index
                for sample in range(samples):
                    if (position, sample) not in answered and not cancelled():
                        await queue.put((position, sample, row))
                position += 1
        answered.clear()
        for _ in range(workers):
            await queue.put(None)

    async def write() -> None:
        done = False
        while not done:
            first = await finished.get()
            batch = [] if first is None else [first]
            done = first is None
            while not done and not finished.empty() and len(batch) < MAX_BATCH:
                item = finished.get_nowait()
                done = item is None
                batch += [] if item is None else [item]
            if not batch:
                continue
            written = await loop.run_in_executor(db, _persist, batch, prepared, prices)
            for (result, _), ok in zip(batch, written, strict=True):
                if ok:  # counted once written: a crash loses only rows not yet counted
                    count(result)
            progress.elapsed_s = time.perf_counter() - started
            if on_progress is not None:
                on_progress(progress)

    def count(result: RunResult) -> None:
        progress.done += 1
        progress.errors += 1 if result.error else 0
        progress.cached += 1 if result.cached else 0
        progress.prompt_tokens += result.prompt_tokens or 0
        progress.response_tokens += result.response_tokens or 0
        progress.cost += result.cost or 0.0

    async def work() -> None:
        while (item := await queue.get()) is not None:
            if cancelled():
                continue
            row_index, sample, row = item
            result, call = await _answer(run_id, config, prepared, db, row, row_index, sample)
            # Hand the row to the writer and take the next one: a worker never waits for
            # the database (only when the writer is a whole queue behind).
            await finished.put((result, call))
        working[0] -= 1
        if working[0] == 0:
            await finished.put(None)

    writer = asyncio.ensure_future(write())
    tasks = [asyncio.ensure_future(produce())]
    tasks += [asyncio.ensure_future(work()) for _ in range(workers)]
    try:
        await asyncio.gather(*tasks, writer)  # the writer ends once every row is written
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        db.shutdown(wait=True)
    cancelled_early = cancelled() and progress.done < progress.total
    progress.status = "cancelled" if cancelled_early else "done"
    progress.elapsed_s = time.perf_counter() - started
    with session_scope() as session:
        run = session.get(Run, run_id)
        assert run is not None
        if part is None:  # a part's run is settled by its job, when its last part ends
            run.status, run.finished_at = progress.status, utcnow()
            session.add(run)
    if on_progress is not None:
        on_progress(progress)
    return progress


async def _answer(
    run_id: int,
    config: RunConfig,
    prepared: registry.PreparedModel,
    db: ThreadPoolExecutor,
    row: dict[str, str],
    row_index: int,
    sample: int,
) -> tuple[RunResult, _Call | None]:
    """One row's result, and the model call to record with it (none if cached or unrendered)."""
    from studio.services.retrieval import arow_with_retrieval

    result = RunResult(run_id=run_id, row_index=row_index, sample_index=sample)
    try:  # the retrieval step first: its chunks are the prompt's {{context}}
        values, result.retrieval = await arow_with_retrieval(config.retrieval, row)
        rendered = render(config.prompt, values)
    except StudioError as exc:
        result.error = str(exc)
        return result, None
    result.rendered_prompt = (
        rendered
        if isinstance(rendered, str)
        else "\n".join(f"[{m.role}] {m.content}" for m in rendered)
    )
    payload = build_payload(prepared.model_type, rendered, config.parameters)
    keys = _cache_keys(config, payload, sample)
    key = keys[0]
    if config.use_cache:
        cached = await asyncio.get_running_loop().run_in_executor(db, _cached, keys)
        if cached is not None:
            result.output, result.cached = output_text(cached), True
            result.latency_ms = 0.0
            return result, None
    with call_clock() as clock:  # the call alone: queueing behind a connection limit is left out
        try:
            response = await registry.acall_prepared(prepared, payload)
        except StudioError as exc:
            error: str | None = str(exc)
        else:
            error = None
    result.latency_ms = clock.elapsed_ms
    if error is not None:
        result.error = error
        return result, _Call(latency_ms=result.latency_ms, error=error)
    data = response.model_dump(mode="json")
    result.output = output_text(data)
    result.prompt_tokens = data.get("prompt_tokens")
    result.response_tokens = data.get("response_tokens")
    cache_key = key if config.use_cache else None
    return result, _Call(latency_ms=result.latency_ms, response=response, cache_key=cache_key)


def _cached(keys: tuple[str, ...]) -> dict[str, Any] | None:
    with session_scope() as session:
        for key in keys:
            row = session.get(ResponseCache, key)
            if row is not None:
                return dict(row.response)
        return None


def run_sync(
    *,
    run_id: int,
    on_progress: Callable[[RunProgress], None] | None = None,
    cancel: threading.Event | None = None,
) -> RunProgress:
    return asyncio.run(execute_run(run_id=run_id, on_progress=on_progress, cancel=cancel))


def _checked_run(session: Session, run_id: int, action: str) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFoundError(f"No run {run_id}.")
    check_app(session=session, app_id=run.app_id, action=action, what="run")
    return run


def cancel_run(*, session: Session, run_id: int) -> None:
    require_member_role("cancel runs")
    run = _checked_run(session, run_id, "cancel runs")
    run.status = "cancelled"
    session.add(run)


def retry_failed(*, session: Session, run_id: int) -> int:
    """Forget failed rows so the next execute_run answers them again; returns how many."""
    require_member_role("retry runs")
    _checked_run(session, run_id, "retry runs")
    failed = session.exec(
        select(RunResult).where(RunResult.run_id == run_id, col(RunResult.error).is_not(None))
    ).all()
    for row in failed:
        session.delete(row)
    session.flush()
    return len(failed)


def list_results(*, session: Session, run_id: int) -> list[RunResult]:
    _checked_run(session, run_id, "read runs")
    return list(
        session.exec(
            select(RunResult)
            .where(RunResult.run_id == run_id)
            .order_by(col(RunResult.row_index), col(RunResult.sample_index))
        ).all()
    )
