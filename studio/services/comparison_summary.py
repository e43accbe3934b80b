"""A comparison's summary and grid: per contender its figures, against the baseline its tests.

Per contender: rows answered and failed, pass rates with intervals (overall and
per evaluator, from the comparison's evaluation), latency p50 and p95, cost per
1,000 rows. Against the baseline, on the rows both were judged on: McNemar's
exact test on the overall verdicts with the paired difference and a sentence,
Holm-adjusted when there are several contenders; per evaluator the paired mean
score difference with Wilcoxon's test. The grid pages the dataset's rows with
each contender's output, latency, tokens, cost and verdict.

Rules: access to the comparison's app (:mod:`studio.services.app_access`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, case, func, or_
from sqlalchemy import select as select_columns
from sqlmodel import Session, col, select

from studio.evaluators.paired import (
    holm,
    median_interval,
    paired_scores,
    paired_verdicts,
    verdict_sentence,
)
from studio.services.comparisons import cost_per_1000, get_comparison
from studio.store.tables import (
    Comparison,
    DatasetRow,
    DatasetVersion,
    Evaluation,
    EvaluationScore,
    RunResult,
)

__all__ = ["ComparisonSummary", "GridPage", "comparison_summary", "grid_page"]


@dataclass
class ComparisonSummary:
    comparison: Comparison
    contenders: list[dict[str, Any]]  # per contender: figures
    tests: list[dict[str, Any]]  # per non-baseline contender: tests against the baseline
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "comparison_id": self.comparison.id,
            "baseline": self.comparison.baseline,
            "contenders": self.contenders,
            "tests": self.tests,
            "notes": self.notes,
        }


# The grid and the summary read only the columns they show (not the rendered prompts, not
# the report card of the whole evaluation): 10,000 rows x 4 contenders stay well under 1 s.
_RESULT_COLUMNS = [
    col(c)
    for c in (
        RunResult.run_id, RunResult.row_index, RunResult.output, RunResult.error,
        RunResult.latency_ms, RunResult.prompt_tokens, RunResult.response_tokens, RunResult.cost,
    )
]  # fmt: skip


def _results(
    session: Session, comparison: Comparison, rows: Sequence[int] | None = None
) -> dict[str, dict[int, Any]]:
    """Per contender key, its results by row (all rows, or only ``rows``)."""
    by_run = {c["run_id"]: c["key"] for c in comparison.contenders}
    out: dict[str, dict[int, Any]] = {c["key"]: {} for c in comparison.contenders}
    query = select_columns(*_RESULT_COLUMNS).where(
        col(RunResult.run_id).in_(list(by_run)), col(RunResult.sample_index) == 0
    )
    if rows is not None:
        query = query.where(col(RunResult.row_index).in_(list(rows)))
    for r in session.execute(query).all():
        out[by_run[r.run_id]][r.row_index] = r
    return out


def _verdict_query(
    session: Session, comparison: Comparison, rows: Sequence[int] | None = None
) -> tuple[Any, list[Any]] | None:
    """A select of (run_id, row_index, verdict: 1 pass, 0 fail, NULL not fully judged) per
    contender and row, and the filters on the scores; None without an evaluation."""
    if comparison.evaluation_id is None:
        return None
    evaluation = session.get(Evaluation, comparison.evaluation_id)
    versions = {e["key"]: e["version"] for e in evaluation.evaluators} if evaluation else {}
    if not versions:
        return None
    current = or_(
        *(
            and_(
                col(EvaluationScore.evaluator_key) == k, col(EvaluationScore.evaluator_version) == v
            )
            for k, v in versions.items()
        )
    )
    where = [
        col(EvaluationScore.evaluation_id) == comparison.evaluation_id,
        col(EvaluationScore.sample_index) == 0,
        col(EvaluationScore.run_id).in_([c["run_id"] for c in comparison.contenders]),
        current,
    ]
    if rows is not None:
        where.append(col(EvaluationScore.row_index).in_(list(rows)))
    judged = col(EvaluationScore.error).is_(None)
    # failed by any evaluator that judged it: fail; passed by every evaluator: pass
    judged_count = func.sum(case((judged, 1), else_=0))
    failed_count = func.sum(case((and_(judged, ~col(EvaluationScore.passed)), 1), else_=0))
    verdict = case((failed_count > 0, 0), (judged_count == len(versions), 1), else_=None)
    query = (
        select_columns(
            col(EvaluationScore.run_id), col(EvaluationScore.row_index), verdict.label("verdict")
        )
        .where(*where)
        .group_by(col(EvaluationScore.run_id), col(EvaluationScore.row_index))
    )
    return query, [*where, judged]


def _verdicts(
    session: Session,
    comparison: Comparison,
    rows: Sequence[int] | None = None,
    with_scores: bool = True,
) -> tuple[Any, Any]:
    """(overall verdict by contender and row, mean score by contender, evaluator and row)."""
    overall: dict[str, dict[int, bool]] = defaultdict(dict)
    scores: dict[str, dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    found = _verdict_query(session, comparison, rows)
    if found is None:
        return overall, scores
    query, judged_scores = found
    by_run = {c["run_id"]: c["key"] for c in comparison.contenders}
    for r in session.execute(query).all():
        if r.verdict is not None:
            overall[by_run[r.run_id]][r.row_index] = bool(r.verdict)
    if with_scores:
        for r in session.execute(
            select_columns(
                col(EvaluationScore.run_id),
                col(EvaluationScore.row_index),
                col(EvaluationScore.evaluator_key),
                col(EvaluationScore.score),
            ).where(*judged_scores)
        ).all():
            scores[by_run[r.run_id]][r.evaluator_key][r.row_index] = r.score
    return overall, scores


def _verdict_filter(
    session: Session, comparison: Comparison, disagree: bool, baseline_fails: bool
) -> set[int]:
    """The rows where judged contenders disagree and/or the baseline fails, counted in SQL."""
    found = _verdict_query(session, comparison)
    if found is None:
        return set()
    per_row = found[0].subquery()
    keep: set[int] | None = None
    if disagree:
        query = (
            select_columns(per_row.c.row_index)
            .where(per_row.c.verdict.is_not(None))
            .group_by(per_row.c.row_index)
            .having(func.min(per_row.c.verdict) != func.max(per_row.c.verdict))
        )
        keep = set(session.execute(query).scalars().all())
    if baseline_fails:
        base_run = next(
            c["run_id"] for c in comparison.contenders if c["key"] == comparison.baseline
        )
        query = select_columns(per_row.c.row_index).where(
            per_row.c.run_id == base_run, per_row.c.verdict == 0
        )
        fails = set(session.execute(query).scalars().all())
        keep = fails if keep is None else keep & fails
    return keep or set()


def comparison_summary(*, session: Session, comparison_id: int) -> ComparisonSummary:
    comparison = get_comparison(session=session, comparison_id=comparison_id)
    results = _results(session, comparison)
    overall, scores = _verdicts(session, comparison)
    version = session.get(DatasetVersion, comparison.dataset_version_id)
    total = version.row_count if version else 0
    figures = []
    from studio.evaluators.stats import wilson_interval

    for c in comparison.contenders:
        mine = results[c["key"]]
        ok = [r for r in mine.values() if r.error is None or r.output]
        latency = median_interval([r.latency_ms for r in ok if r.latency_ms is not None])
        sorted_latency = sorted(r.latency_ms for r in ok if r.latency_ms is not None)
        p95 = (
            sorted_latency[min(len(sorted_latency) - 1, int(0.95 * len(sorted_latency)))]
            if (sorted_latency)
            else None
        )
        verdicts = overall.get(c["key"], {})
        rate = wilson_interval(sum(verdicts.values()), len(verdicts))
        figures.append(
            {
                "key": c["key"], "label": c["label"], "run_id": c["run_id"],
                "rows": len(mine), "of": total, "failed_calls": len(mine) - len(ok),
                "judged": len(verdicts), "passed": sum(verdicts.values()),
                "pass_rate": rate.as_dict() if rate else None,
                "latency_p50_ms": latency.as_dict() if latency else None,
                "latency_p95_ms": p95,
                "cost_per_1000_rows": cost_per_1000([r.cost for r in ok]),
            }
        )  # fmt: skip
    base = comparison.baseline
    tests: list[dict[str, Any]] = []
    labels = {c["key"]: c["label"] for c in comparison.contenders}
    for c in comparison.contenders:
        if c["key"] == base:
            continue
        shared = sorted(set(overall.get(base, {})) & set(overall.get(c["key"], {})))
        result = paired_verdicts(
            [overall[base][r] for r in shared], [overall[c["key"]][r] for r in shared]
        )
        evaluator_tests = {}
        for evaluator, by_row in scores.get(c["key"], {}).items():
            base_rows = scores.get(base, {}).get(evaluator, {})
            rows = sorted(set(by_row) & set(base_rows))
            paired = paired_scores([base_rows[r] for r in rows], [by_row[r] for r in rows])
            if paired is not None:
                evaluator_tests[evaluator] = paired.as_dict()
        tests.append(
            {"key": c["key"], "label": c["label"], "shared_rows": len(shared),
             "verdicts": result.as_dict() if result else None, "scores": evaluator_tests,
             "_result": result}
        )  # fmt: skip
    with_result = [t for t in tests if t["_result"] is not None]
    adjusted = holm([t["_result"].p_value for t in with_result])
    for t, p in zip(with_result, adjusted, strict=True):
        t["verdicts"]["p_holm"] = p
        t["sentence"] = verdict_sentence(
            labels[base], t["label"], t["_result"], p if len(with_result) > 1 else None
        )
    for t in tests:
        t.pop("_result")
        t.setdefault(
            "sentence",
            f"{t['label']} and {labels[base]} share no judged rows yet: evaluate them to compare.",
        )
    notes = []
    if comparison.evaluation_id is None:
        notes.append("No evaluators were chosen: add some to see pass rates and tests.")
    if len(with_result) > 1:
        notes.append(
            "With several contenders against one baseline, p-values are Holm-adjusted so that "
            "the chance of any false alarm stays at 5%."
        )
    return ComparisonSummary(comparison, figures, tests, notes)


@dataclass
class GridPage:
    total: int  # rows matching the filters
    rows: list[dict[str, Any]]  # {"row": n, "inputs": {...}, "cells": {key: {...}}}


def grid_page(
    *,
    session: Session,
    comparison_id: int,
    offset: int = 0,
    limit: int = 50,
    disagree: bool = False,
    baseline_fails: bool = False,
    search: str = "",
) -> GridPage:
    """One page of the side-by-side grid, after the filters.

    Only what the filters need is read for every row (the verdicts for disagree and
    baseline-fails, the inputs and outputs for a search); the page's cells are read for
    its rows alone.
    """
    comparison = get_comparison(session=session, comparison_id=comparison_id)
    keys = [c["key"] for c in comparison.contenders]
    needle = search.strip().casefold()
    kept: set[int] | None = None
    if disagree or baseline_fails:
        kept = _verdict_filter(session, comparison, disagree, baseline_fails)
    data_rows: dict[int, dict[str, Any]] = {}
    if needle:
        data_rows = _data_rows(session, comparison.dataset_version_id)
        everything = sorted(data_rows)
    else:
        everything = list(
            session.exec(
                select(DatasetRow.row_index)
                .where(DatasetRow.dataset_version_id == comparison.dataset_version_id)
                .order_by(col(DatasetRow.row_index))
            ).all()
        )
    answered: set[int] = set()
    if needle:  # outputs are searched by the database (case-insensitive), inputs here
        answered = set(
            session.execute(
                select_columns(col(RunResult.row_index))
                .where(
                    col(RunResult.run_id).in_([c["run_id"] for c in comparison.contenders]),
                    col(RunResult.sample_index) == 0,
                    col(RunResult.output).icontains(search.strip(), autoescape=True),
                )
                .distinct()
            )
            .scalars()
            .all()
        )
    matching = []
    for row in everything:
        if kept is not None and row not in kept:
            continue
        inputs = data_rows.get(row, {}).values()
        if needle and row not in answered and not any(needle in str(v).casefold() for v in inputs):
            continue
        matching.append(row)
    shown = matching[offset : offset + limit]
    if not shown:
        return GridPage(total=len(matching), rows=[])
    results = _results(session, comparison, shown)
    page_verdicts, _ = _verdicts(session, comparison, shown, with_scores=False)
    if not needle:
        data_rows = _data_rows(session, comparison.dataset_version_id, shown)
    page = []
    for row in shown:
        cells = {}
        for k in keys:
            r = results[k].get(row)
            cells[k] = {
                "output": r.output if r else None,
                "error": r.error if r else None,
                "latency_ms": r.latency_ms if r else None,
                "tokens": ((r.prompt_tokens or 0) + (r.response_tokens or 0)) if r else None,
                "cost": r.cost if r else None,
                "passed": page_verdicts.get(k, {}).get(row),
            }
        page.append({"row": row, "inputs": data_rows[row], "cells": cells})
    return GridPage(total=len(matching), rows=page)


def _data_rows(
    session: Session, dataset_version_id: int, rows: Sequence[int] | None = None
) -> dict[int, dict[str, Any]]:
    query = select(DatasetRow.row_index, DatasetRow.data).where(
        DatasetRow.dataset_version_id == dataset_version_id
    )
    if rows is not None:
        query = query.where(col(DatasetRow.row_index).in_(list(rows)))
    return {r.row_index: r.data for r in session.execute(query).all()}
