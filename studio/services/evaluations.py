"""Evaluations: runs of one dataset version (the contenders) scored by evaluators.

An evaluation stores its contenders (runs), its evaluators (id, options and a
version: a hash of both) and one :class:`~studio.store.tables.EvaluationScore`
per output and evaluator. Executing it scores what is not stored yet, so a
crash in the middle loses nothing and a resume scores each output once; after
one evaluator's options change (:func:`set_evaluators`), only that evaluator's
scores are recomputed. Scores where the evaluator could not judge (its model
call failed, the judge gave no verdict) are tried again by the next execution.
A generation that failed is a failed row for every evaluator ("No output:
..."), not an evaluator error. Model-backed evaluators (the LLM judge, semantic
similarity) call models through the model layer, with its retries, connection
limits and usage records, at most ``concurrency`` at a time. Each item carries what
the run's retrieval step gave its row (the query and the chunks, in rank order), for
the RAG evaluators.

Rules: an evaluation is its app's (:mod:`studio.services.app_access`): reading needs access
to the app, creating and changing also the admin or member role; reviewers none.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from studio.core.errors import ConflictError, NotFoundError, StudioError
from studio.evaluators import EvalItem, Evaluator, ModelCaller, Verdict, build
from studio.evaluators.base import retrieved_chunks
from studio.evaluators.report import ReportCard, Score, report_card, score_items
from studio.services.app_access import check_app, visible_apps
from studio.services.evaluation_models import LayerModels
from studio.services.evaluation_writer import ScoreWriter
from studio.services.members import require_member_role
from studio.store import session_scope
from studio.store.tables import (
    DatasetRow,
    DatasetVersion,
    Evaluation,
    EvaluationScore,
    Run,
    RunResult,
    VariantVersion,
    utcnow,
)

__all__ = [
    "EvaluationCancelled",
    "EvaluationData",
    "EvaluatorConfig",
    "LayerModels",
    "contender_key",
    "contender_label",
    "create_evaluation",
    "evaluate_sync",
    "evaluation_data",
    "execute_evaluation",
    "get_evaluation",
    "list_evaluations",
    "load_report",
    "set_evaluators",
]


class EvaluationCancelled(StudioError):
    """The evaluation stopped at a Cancel (or a worker's shutdown); its scores are kept."""


class EvaluatorConfig(BaseModel):
    """One evaluator of an evaluation: its catalogue id, options, and a key naming it
    in the report (defaults to the id; two of the same id need different keys)."""

    id: str
    options: dict[str, Any] = Field(default_factory=dict)
    key: str | None = Field(default=None, max_length=100)


def _version(evaluator_id: str, options: dict[str, Any]) -> str:
    raw = json.dumps({"id": evaluator_id, "options": options}, sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _configs(configs: Sequence[EvaluatorConfig], columns: list[str]) -> list[dict[str, Any]]:
    if not configs:
        raise StudioError(
            "An evaluation needs at least one evaluator.",
            hint="Pick one from the catalogue (`studio eval evaluators` lists them).",
        )
    stored: list[dict[str, Any]] = []
    keys: set[str] = set()
    for config in configs:
        evaluator = build(config.id, config.options)
        key = config.key or config.id
        n = 2
        while key in keys and not config.key:
            key, n = f"{config.id}_{n}", n + 1
        if key in keys:
            raise ConflictError(f"Two evaluators are named '{key}'.", hint="Give each its own key.")
        keys.add(key)
        missing = sorted(evaluator.columns() - set(columns))
        if missing:
            raise StudioError(
                f"The {config.id} evaluator names column(s) {', '.join(missing)}, which this "
                "dataset does not have.",
                hint=f"Its columns are: {', '.join(columns)}.",
            )
        options = evaluator.options.model_dump(mode="json")
        stored.append(
            {
                "key": key,
                "id": config.id,
                "options": options,
                "version": _version(config.id, options),
            }
        )
    return stored


def contender_key(index: int) -> str:
    """A, B, C, ... for the contenders in order (C26, C27, ... past Z)."""
    return chr(ord("A") + index) if index < 26 else f"C{index}"


def contender_label(session: Session, run: Run) -> str:
    if run.variant_version_id is not None:
        version = session.get(VariantVersion, run.variant_version_id)
        if version is not None:
            from studio.store.tables import Variant

            variant = session.get(Variant, version.variant_id)
            if variant is not None:
                return f"{variant.name} v{version.version} (run {run.id})"
    return f"{run.model} (run {run.id})"


def create_evaluation(
    *,
    session: Session,
    app_id: int,
    run_ids: Sequence[int],
    evaluators: Sequence[EvaluatorConfig],
    name: str = "",
    actor: str = "",
    commit: bool = True,
) -> Evaluation:
    """Store an evaluation of ``run_ids`` (one dataset version, this app's runs); with
    ``commit=False`` it is only flushed, for a caller that commits it with more."""
    require_member_role("create evaluations")
    check_app(session=session, app_id=app_id, action="create evaluations")
    if not run_ids:
        raise StudioError("An evaluation needs at least one run.", hint="Generate a run first.")
    runs = [session.get(Run, run_id) for run_id in dict.fromkeys(run_ids)]
    for run_id, run in zip(dict.fromkeys(run_ids), runs, strict=True):
        if run is None or run.app_id != app_id:
            raise NotFoundError(f"Run {run_id} is not a run of this app.")
    found = [r for r in runs if r is not None]
    versions = {r.dataset_version_id for r in found}
    if len(versions) > 1:
        raise StudioError(
            "These runs answered different dataset versions, so their rows do not line up.",
            hint="Evaluate runs of one dataset version together.",
        )
    dataset = session.get(DatasetVersion, found[0].dataset_version_id)
    assert dataset is not None
    contenders = [
        {
            "key": contender_key(i),
            "run_id": r.id,
            "label": contender_label(session, r),
        }
        for i, r in enumerate(found)
    ]
    default_name = f"Evaluation of {', '.join(str(c['label']) for c in contenders)}"
    evaluation = Evaluation(
        app_id=app_id,
        name=(name.strip() or default_name)[:200],
        dataset_version_id=dataset.id or 0,
        contenders=contenders,
        evaluators=_configs(evaluators, list(dataset.columns)),
        actor=actor,
    )
    session.add(evaluation)
    if commit:
        session.commit()
    else:
        session.flush()
    session.refresh(evaluation)
    return evaluation


def get_evaluation(
    *, session: Session, evaluation_id: int, app_id: int | None = None
) -> Evaluation:
    evaluation = session.get(Evaluation, evaluation_id)
    if evaluation is None or (app_id is not None and evaluation.app_id != app_id):
        raise NotFoundError(f"No evaluation {evaluation_id}.")
    check_app(
        session=session, app_id=evaluation.app_id, action="read evaluations", what="evaluation"
    )
    return evaluation


def list_evaluations(*, session: Session, app_id: int | None, limit: int = 100) -> list[Evaluation]:
    """The app's evaluations (every app's for ``app_id=None``), newest first, each with its
    headline figures in ``summary``; ``None`` lists only the apps the caller may use."""
    stmt = select(Evaluation)
    if app_id is not None:
        check_app(session=session, app_id=app_id, action="list evaluations")
        stmt = stmt.where(Evaluation.app_id == app_id)
    else:
        visible = visible_apps(session=session, action="list evaluations")
        if visible is not None:
            stmt = stmt.where(col(Evaluation.app_id).in_(visible))
    return list(session.exec(stmt.order_by(col(Evaluation.id).desc()).limit(limit)).all())


def set_evaluators(
    *, session: Session, evaluation_id: int, evaluators: Sequence[EvaluatorConfig]
) -> Evaluation:
    """Replace the evaluators; the next execution recomputes only those that changed."""
    require_member_role("change evaluations")
    evaluation = get_evaluation(session=session, evaluation_id=evaluation_id)
    dataset = session.get(DatasetVersion, evaluation.dataset_version_id)
    assert dataset is not None
    evaluation.evaluators = _configs(evaluators, list(dataset.columns))
    evaluation.status = "pending"
    session.add(evaluation)
    session.commit()
    session.refresh(evaluation)
    return evaluation


@dataclass
class EvaluationData:
    """Everything a report, an export or an execution reads, loaded once."""

    evaluation: Evaluation
    columns: list[str]
    expected_column: str | None
    rows: dict[int, dict[str, str]]
    runs: dict[str, Run]  # by contender key
    results: dict[tuple[str, int, int], RunResult]  # (contender, row, sample)
    scores: list[EvaluationScore]

    def item(self, key: tuple[str, int, int]) -> EvalItem:
        result = self.results[key]
        row = self.rows.get(key[1], {})
        retrieval = result.retrieval if isinstance(result.retrieval, dict) else None
        return EvalItem(
            output=result.output or "",
            row=row,
            reference=row.get(self.expected_column) if self.expected_column else None,
            prompt=result.rendered_prompt or None,
            latency_ms=result.latency_ms,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.response_tokens,
            cost_usd=result.cost,
            query=(str(retrieval.get("query") or "") or None) if retrieval else None,
            retrieved=retrieved_chunks(retrieval),
        )


def evaluation_data(*, session: Session, evaluation_id: int) -> EvaluationData:
    evaluation = get_evaluation(session=session, evaluation_id=evaluation_id)
    dataset = session.get(DatasetVersion, evaluation.dataset_version_id)
    assert dataset is not None
    rows = {
        r.row_index: {c: str(r.data.get(c, "")) for c in dataset.columns}
        for r in session.exec(
            select(DatasetRow).where(DatasetRow.dataset_version_id == dataset.id)
        ).all()
    }
    runs: dict[str, Run] = {}
    results: dict[tuple[str, int, int], RunResult] = {}
    for contender in evaluation.contenders:
        run = session.get(Run, contender["run_id"])
        if run is None:
            raise NotFoundError(f"Run {contender['run_id']} of this evaluation was deleted.")
        runs[contender["key"]] = run
        for result in session.exec(select(RunResult).where(RunResult.run_id == run.id)).all():
            results[(contender["key"], result.row_index, result.sample_index)] = result
    scores = list(
        session.exec(
            select(EvaluationScore).where(EvaluationScore.evaluation_id == evaluation_id)
        ).all()
    )
    return EvaluationData(
        evaluation, list(dataset.columns), dataset.expected_column, rows, runs, results, scores
    )


def _evaluators(evaluation: Evaluation) -> dict[str, Evaluator]:
    return {c["key"]: build(c["id"], c["options"]) for c in evaluation.evaluators}


def load_report(*, session: Session, evaluation_id: int) -> tuple[EvaluationData, ReportCard]:
    """The stored scores summed into a report card (contenders named by their labels)."""
    data = evaluation_data(session=session, evaluation_id=evaluation_id)
    labels = {c["run_id"]: c["key"] for c in data.evaluation.contenders}
    versions = {c["key"]: c["version"] for c in data.evaluation.evaluators}
    scores = [
        Score(
            labels[s.run_id],
            s.row_index,
            s.sample_index,
            s.evaluator_key,
            Verdict(score=s.score, passed=s.passed, reason=s.reason, error=s.error),
        )
        for s in data.scores
        if versions.get(s.evaluator_key) == s.evaluator_version and s.run_id in labels
    ]
    items = {key: data.item(key) for key in data.results}
    return data, report_card(scores, evaluators=_evaluators(data.evaluation), items=items)


def _drop_stale(session: Session, evaluation: Evaluation) -> None:
    versions = {c["key"]: c["version"] for c in evaluation.evaluators}
    for score in session.exec(
        select(EvaluationScore).where(EvaluationScore.evaluation_id == evaluation.id)
    ).all():
        if versions.get(score.evaluator_key) != score.evaluator_version or score.error:
            session.delete(score)  # changed or removed evaluator, or one that could not judge
    session.commit()


def _summary(evaluation: Evaluation, card: ReportCard) -> dict[str, Any]:
    lines = {}
    for contender in evaluation.contenders:
        try:
            line = card.line(contender["key"])
        except KeyError:
            continue
        lines[contender["key"]] = {
            "label": contender["label"],
            "judged": line.judged,
            "passed": line.passed,
            "errors": line.errors,
            "pass_rate": line.pass_rate.as_dict() if line.pass_rate else None,
        }
    return {"overall_pass_rate": card.overall_pass_rate(), "contenders": lines}


async def execute_evaluation(
    *,
    evaluation_id: int,
    concurrency: int = 8,
    models: ModelCaller | None = None,
    cancel: threading.Event | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ReportCard:
    """Score every output not scored yet, then store the headline figures."""
    with session_scope() as session:
        evaluation = get_evaluation(session=session, evaluation_id=evaluation_id)
        _drop_stale(session, evaluation)
        data = evaluation_data(session=session, evaluation_id=evaluation_id)
        evaluation = data.evaluation
        evaluation.status, evaluation.error = "running", None
        session.add(evaluation)
        session.commit()
        session.refresh(evaluation)
        session.expunge_all()
    evaluators = _evaluators(evaluation)
    versions = {c["key"]: c["version"] for c in evaluation.evaluators}
    run_ids = {key: run.id or 0 for key, run in data.runs.items()}
    by_run = {v: k for k, v in run_ids.items()}
    stored = {
        (s.evaluator_key, by_run.get(s.run_id), s.row_index, s.sample_index) for s in data.scores
    }
    writer = ScoreWriter(evaluation_id, run_ids, versions)
    total = len(data.results) * len(evaluators)
    done = [len(stored)]

    def keep(score: Score) -> None:
        writer.add(score)
        done[0] += 1
        if on_progress is not None:
            on_progress(done[0], total)
        if cancel is not None and cancel.is_set():
            raise EvaluationCancelled("The evaluation was cancelled; scored rows are kept.")

    try:
        ready: list[tuple[str, int, int, EvalItem]] = []
        for key in sorted(data.results):
            result = data.results[key]
            if result.error is not None and not result.output:
                for ev_key in evaluators:
                    if (ev_key, *key) not in stored:
                        failed = Verdict.check(False, f"No output: {result.error}")
                        keep(Score(*key, ev_key, failed))
                continue
            ready.append((*key, data.item(key)))
        await score_items(
            evaluators,
            ready,
            models=models or LayerModels(usage=writer.add_usage),
            concurrency=concurrency,
            on_score=keep,
            skip=lambda ev, c, r, s: (ev, c, r, s) in stored,
        )
    except (EvaluationCancelled, asyncio.CancelledError):
        writer.flush()
        _finish(evaluation_id, "cancelled", None)
        raise EvaluationCancelled("The evaluation was cancelled; scored rows are kept.") from None
    except Exception as exc:
        writer.flush()
        _finish(evaluation_id, "failed", f"The evaluation stopped: {exc}")
        raise
    writer.flush()
    with session_scope() as session:
        _, card = load_report(session=session, evaluation_id=evaluation_id)
    _finish(evaluation_id, "done", None, _summary(evaluation, card))
    return card


def _finish(
    evaluation_id: int, status: str, error: str | None, summary: dict[str, Any] | None = None
) -> None:
    with session_scope() as session:
        evaluation = get_evaluation(session=session, evaluation_id=evaluation_id)
        evaluation.status, evaluation.error = status, error
        evaluation.finished_at = utcnow()
        if summary is not None:
            evaluation.summary = summary
        session.add(evaluation)


def evaluate_sync(
    *,
    evaluation_id: int,
    concurrency: int = 8,
    models: ModelCaller | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ReportCard:
    """:func:`execute_evaluation` for synchronous callers (the CLI, a job thread)."""
    return asyncio.run(
        execute_evaluation(
            evaluation_id=evaluation_id,
            concurrency=concurrency,
            models=models,
            on_progress=on_progress,
        )
    )
