"""The evaluation read API: lists with headline numbers, records, report cards, CSV results.

The same services as ``studio eval list|show|export`` and the Evaluations page. Who may
read what is decided by :mod:`studio.services.access`: an app's key reads its own app's
evaluations, a member's token their apps' (another app's evaluation is not found, and
naming another app in the list is refused), an administrator's key or token every app's.
All routes are plain ``def``: they run in the threadpool, never on the event loop.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from studio.gateway.deps import ApiKeyDep, SessionDep
from studio.services.access import evaluations_scope, readable_evaluation
from studio.services.evaluation_export import export_evaluation
from studio.services.evaluations import list_evaluations, load_report
from studio.store.tables import Evaluation

__all__ = ["EvaluationPublic", "EvaluationSummary", "router"]

router = APIRouter(prefix="/api/v1/evaluations", tags=["evaluations"])


class Contender(BaseModel):
    key: str = Field(description="The contender's letter in reports and CSV columns (A, B, …).")
    run_id: int
    label: str = Field(description="Variant and version (or model) and the run it scores.")


class EvaluatorRef(BaseModel):
    key: str = Field(description="The evaluator's name in reports and CSV columns.")
    id: str = Field(description="The catalogue id (`studio eval evaluators`).")
    version: str = Field(description="A hash of id and options; scores of another are stale.")


class EvaluatorConfigPublic(EvaluatorRef):
    options: dict[str, Any] = Field(description="Every option, defaults filled in.")


class EvaluationSummary(BaseModel):
    """One line of the list: what was evaluated and its headline figures."""

    id: int
    app_id: int
    name: str
    status: str = Field(description="pending, running, done, failed or cancelled")
    dataset_version_id: int
    contenders: list[Contender]
    evaluators: list[EvaluatorRef]
    overall_pass_rate: float | None = Field(
        description="Rows passing every evaluator over rows judged, across contenders "
        "(the CI gate's figure); null until the evaluation has finished once."
    )
    summary: dict[str, Any] = Field(
        description="Per contender: rows judged, passed, evaluator errors and the pass rate "
        "with its Wilson 95% interval."
    )
    created_at: datetime
    finished_at: datetime | None


class EvaluationPublic(EvaluationSummary):
    """The whole record: the evaluators with their options, who started it, its error."""

    evaluators: list[EvaluatorConfigPublic]  # type: ignore[assignment]
    actor: str
    error: str | None


def _fields(evaluation: Evaluation) -> dict[str, Any]:
    data = evaluation.model_dump()
    data["overall_pass_rate"] = (evaluation.summary or {}).get("overall_pass_rate")
    return data


@router.get("", summary="Evaluations with their headline numbers, newest first")
def evaluation_list(
    key: ApiKeyDep,
    session: SessionDep,
    app: str | None = Query(
        None, description="App name or id; default: every app the caller may read"
    ),
    limit: int = Query(100, ge=1, le=1000),
) -> list[EvaluationSummary]:
    app_ids = evaluations_scope(session=session, key=key, app=app)
    if app_ids is None:
        found = list_evaluations(session=session, app_id=None, limit=limit)
    else:  # each readable app's newest, then the newest of them all
        found = [
            e for a in app_ids for e in list_evaluations(session=session, app_id=a, limit=limit)
        ]
        found = sorted(found, key=lambda e: e.id or 0, reverse=True)[:limit]
    return [EvaluationSummary.model_validate(_fields(e)) for e in found]


@router.get("/{evaluation_id}", summary="One evaluation: contenders, evaluators, status")
def evaluation_record(evaluation_id: int, key: ApiKeyDep, session: SessionDep) -> EvaluationPublic:
    evaluation = readable_evaluation(session=session, key=key, evaluation_id=evaluation_id)
    return EvaluationPublic.model_validate(_fields(evaluation))


@router.get("/{evaluation_id}/report", summary="The report card, as `studio eval show --json`")
def evaluation_report(evaluation_id: int, key: ApiKeyDep, session: SessionDep) -> dict[str, Any]:
    """Per contender and evaluator (and ``overall``, the row verdict): rows judged and
    passed, evaluator errors, the pass rate with its Wilson 95% interval (the range that
    holds the true pass rate 95 times in 100), the mean score with a bootstrap interval,
    failing rows with reasons, and pass@k / pass^k with several samples per row."""
    readable_evaluation(session=session, key=key, evaluation_id=evaluation_id)
    data, card = load_report(session=session, evaluation_id=evaluation_id)
    labels = {c["key"]: c["label"] for c in data.evaluation.contenders}
    return {
        "evaluation_id": evaluation_id,
        "status": data.evaluation.status,
        "contenders": labels,
        **card.as_dict(),
    }


@router.get(
    "/{evaluation_id}/results",
    summary="Every verdict as CSV, as `studio eval export`",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "UTF-8 CSV with a BOM"}},
)
def evaluation_results(
    evaluation_id: int,
    key: ApiKeyDep,
    session: SessionDep,
    shape: Literal["wide", "long"] = Query(
        "wide",
        alias="format",
        description="wide: one line per dataset row; long: one per row, contender, "
        "evaluator and sample",
    ),
) -> Response:
    readable_evaluation(session=session, key=key, evaluation_id=evaluation_id)
    body = export_evaluation(session=session, evaluation_id=evaluation_id, shape=shape)
    filename = f"evaluation-{evaluation_id}-{shape}.csv"
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
