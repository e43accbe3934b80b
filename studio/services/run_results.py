"""Reading runs back: the runs of an app, their results next to the dataset's cells,
summaries, exports, and a one-row try that answers exactly as a run would.

Rules: reading a run needs access to its app (:mod:`studio.services.app_access`); a try
calls a model, so it needs the admin or member role; reviewers and anonymous none.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from studio.core.errors import NotFoundError, StudioError
from studio.core.export import to_csv, to_jsonl
from studio.core.prompting import build_payload, output_text
from studio.core.templates import render
from studio.models import registry
from studio.services.app_access import check_app
from studio.services.datasets import get_version, load_rows
from studio.services.members import require_member_role
from studio.services.runs import RunConfig, list_results
from studio.store import session_scope
from studio.store.tables import Dataset, DatasetVersion, Run, RunResult, utcnow

__all__ = [
    "RESULT_COLUMNS",
    "RETRIEVAL_COLUMNS",
    "ResultTable",
    "RunSummary",
    "TryResult",
    "TryStream",
    "export_results",
    "get_run",
    "list_runs",
    "mark_failed",
    "result_table",
    "retrieval_cells",
    "start_try_row",
    "summarize",
    "try_row",
]

RESULT_COLUMNS = ["output", "error", "latency_ms", "prompt_tokens", "response_tokens", "cost"]
# A run with a retrieval step also shows, per row, what it retrieved (best first).
RETRIEVAL_COLUMNS = ["retrieved_documents", "retrieved_chunk_ids", "retrieval_scores"]


class RunSummary(BaseModel):
    id: int
    status: str
    model: str
    dataset: str
    dataset_version: int
    variant_version_id: int | None
    rows: int
    total: int
    errors: int
    prompt_tokens: int
    response_tokens: int
    cost: float
    created_at: datetime


class ResultTable(BaseModel):
    """A run's results: the dataset's columns, then the result columns, one record per answer."""

    columns: list[str]
    records: list[dict[str, Any]]


class TryResult(BaseModel):
    rendered: str
    retrieval: dict[str, Any] | None = None  # {query, chunks} when the config retrieves
    output: str | None = None
    error: str | None = None
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    response_tokens: int | None = None


def get_run(*, session: Session, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFoundError(f"No run {run_id}.", hint="Pick one from the app's runs.")
    check_app(session=session, app_id=run.app_id, action="read runs", what="run")
    return run


def summarize(*, session: Session, run: Run) -> RunSummary:
    """The run's figures, added up by the database (a run may hold 100,000 results)."""
    assert run.id is not None
    rows, errors, prompt_tokens, response_tokens, cost = session.execute(
        sa_select(
            func.count(col(RunResult.id)),
            func.count(col(RunResult.error)),
            func.coalesce(func.sum(RunResult.prompt_tokens), 0),
            func.coalesce(func.sum(RunResult.response_tokens), 0),
            func.coalesce(func.sum(RunResult.cost), 0.0),
        ).where(col(RunResult.run_id) == run.id)
    ).one()
    version = session.get(DatasetVersion, run.dataset_version_id)
    dataset = session.get(Dataset, version.dataset_id) if version is not None else None
    return RunSummary(
        id=run.id,
        status=run.status,
        model=run.model,
        dataset=dataset.name if dataset is not None else "(deleted)",
        dataset_version=version.version if version is not None else 0,
        variant_version_id=run.variant_version_id,
        rows=rows,
        total=run.total_rows * run.samples,
        errors=errors,
        prompt_tokens=int(prompt_tokens),
        response_tokens=int(response_tokens),
        cost=float(cost),
        created_at=run.created_at,
    )


def list_runs(*, session: Session, app_id: int, limit: int = 50) -> list[Run]:
    """The app's most recent runs, newest first."""
    check_app(session=session, app_id=app_id, action="list runs")
    return list(
        session.exec(
            select(Run).where(Run.app_id == app_id).order_by(col(Run.id).desc()).limit(limit)
        ).all()
    )


def mark_failed(*, run_id: int, error: str) -> None:
    """Record that a run stopped on an error (its finished rows stay saved)."""
    with session_scope() as session:
        run = session.get(Run, run_id)
        if run is not None:
            run.status, run.error, run.finished_at = "failed", error, utcnow()
            session.add(run)


def retrieval_cells(retrieval: dict[str, Any] | None) -> dict[str, str]:
    """The retrieval columns of one row: documents, chunk ids and scores, best first
    (``; ``-separated; empty when nothing was retrieved)."""
    chunks = (retrieval or {}).get("chunks") or []
    return {
        "retrieved_documents": "; ".join(str(c.get("document", "")) for c in chunks),
        "retrieved_chunk_ids": "; ".join(str(c.get("id", "")) for c in chunks),
        "retrieval_scores": "; ".join(f"{float(c.get('score') or 0):.3f}" for c in chunks),
    }


def _result_record(
    row: dict[str, str], result: RunResult, samples: int, retrieves: bool = False
) -> dict[str, Any]:
    record: dict[str, Any] = {"row": result.row_index + 1}
    if samples > 1:
        record["sample"] = result.sample_index + 1
    record.update(row)
    for column in RESULT_COLUMNS:
        record[column] = getattr(result, column)
    if retrieves:
        record.update(retrieval_cells(result.retrieval))
    return record


def result_table(*, session: Session, run_id: int) -> ResultTable:
    """Each answer beside the cells of the row it answered, in row order."""
    run = get_run(session=session, run_id=run_id)
    version = get_version(session=session, version_id=run.dataset_version_id)
    rows = load_rows(session=session, version_id=run.dataset_version_id)
    retrieves = bool((run.config or {}).get("retrieval"))
    added = RESULT_COLUMNS + (RETRIEVAL_COLUMNS if retrieves else [])
    inputs = [c for c in version.columns if c not in added and c not in ("row", "sample")]
    head = ["row", "sample"] if run.samples > 1 else ["row"]
    records = [
        _result_record(rows[r.row_index], r, run.samples, retrieves)
        for r in list_results(session=session, run_id=run_id)
        if r.row_index < len(rows)
    ]
    return ResultTable(columns=head + inputs + added, records=records)


def export_results(*, session: Session, run_id: int, fmt: Literal["csv", "jsonl"]) -> bytes:
    """The results as CSV (formula cells escaped) or JSON Lines."""
    table = result_table(session=session, run_id=run_id)
    if fmt == "jsonl":
        return to_jsonl(table.records, table.columns)
    return to_csv(table.records, table.columns)


def _try_payload(
    *, session: Session, config: RunConfig, row: dict[str, str]
) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
    """The row's rendered prompt (as text to show), the model request of a try, and what
    its retrieval step found (None without one)."""
    require_member_role("try prompts on models")
    from studio.services.retrieval import row_with_retrieval  # the search machinery: lazily

    values, got = row_with_retrieval(session=session, spec=config.retrieval, row=row)
    rendered = render(config.prompt, values)
    text = (
        rendered
        if isinstance(rendered, str)
        else "\n".join(f"[{m.role}] {m.content}" for m in rendered)
    )
    mtype = registry.model_type(session=session, ref=config.model)
    stored = got.stored() if got is not None else None
    return text, build_payload(mtype, rendered, config.parameters), stored


class TryStream:
    """One row tried with its answer streamed: iterate :meth:`texts` as the model writes,
    then read :attr:`result` (the same :class:`TryResult` :func:`try_row` gives)."""

    def __init__(
        self,
        rendered: str,
        stream: registry.ModelStream,
        retrieval: dict[str, Any] | None = None,
    ) -> None:
        self.rendered = rendered
        self.retrieval = retrieval
        self._stream = stream
        self._error: str | None = None

    def texts(self) -> Iterator[str]:
        """The answer's text pieces; an error ends them and goes into :attr:`result`."""
        try:
            yield from self._stream.texts()
        except StudioError as exc:
            self._error = str(exc)

    @property
    def result(self) -> TryResult:
        stream = self._stream
        data = stream.response.model_dump(mode="json") if stream.response is not None else {}
        error = self._error or stream.error
        return TryResult(
            rendered=self.rendered,
            retrieval=self.retrieval,
            output=None if error else output_text(data),
            error=error,
            latency_ms=stream.latency_ms,
            prompt_tokens=data.get("prompt_tokens"),
            response_tokens=data.get("response_tokens"),
        )


def start_try_row(*, session: Session, config: RunConfig, row: dict[str, str]) -> TryStream:
    """:func:`try_row` with the answer streamed as the model writes it (chat and
    completion models). ``session`` is used only here: none is
    held while the answer streams, and usage is written once it ends."""
    text, payload, got = _try_payload(session=session, config=config, row=row)
    stream = registry.ModelStream(ref=config.model, payload=payload, source="ui")
    return TryStream(text, stream, got)


def try_row(*, session: Session, config: RunConfig, row: dict[str, str]) -> TryResult:
    """Answer one row the way a run would (fresh, never from the cache), without saving it."""
    text, payload, got = _try_payload(session=session, config=config, row=row)
    started = time.perf_counter()
    try:
        response = registry.execute(session=session, ref=config.model, payload=payload, source="ui")
    except StudioError as exc:
        return TryResult(
            rendered=text,
            retrieval=got,
            error=str(exc),
            latency_ms=(time.perf_counter() - started) * 1000,
        )
    data = response.model_dump(mode="json")
    return TryResult(
        rendered=text,
        retrieval=got,
        output=output_text(data),
        latency_ms=(time.perf_counter() - started) * 1000,
        prompt_tokens=data.get("prompt_tokens"),
        response_tokens=data.get("response_tokens"),
    )
