"""A comparison's summary and grid: per contender its figures, against the baseline its tests.

Per contender: rows answered and failed, pass rates with intervals (overall and
per evaluator, from the comparison's evaluation), latency p50 and p95, cost per
1,000 rows. Against the baseline, on the rows both were judged on: McNemar's
exact test on the overall verdicts with the paired difference and a sentence,
Holm-adjusted when there are several contenders; per evaluator the paired mean
score difference with Wilcoxon's test. The grid pages the dataset's rows with
each contender's output, latency, tokens, cost and verdict.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, select

from studio.evaluators.paired import (
    holm,
    median_interval,
    paired_scores,
    paired_verdicts,
    verdict_sentence,
)
from studio.services.comparisons import cost_per_1000, get_comparison
from studio.services.evaluations import load_report
from studio.store.tables import Comparison, DatasetRow, DatasetVersion, EvaluationScore, RunResult

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


def _results(session: Session, comparison: Comparison) -> dict[str, dict[int, RunResult]]:
    out: dict[str, dict[int, RunResult]] = {}
    for c in comparison.contenders:
        rows = session.exec(
            select(RunResult).where(RunResult.run_id == c["run_id"], RunResult.sample_index == 0)
        ).all()
        out[c["key"]] = {r.row_index: r for r in rows}
    return out


def _verdicts(session: Session, comparison: Comparison) -> tuple[Any, Any]:
    """(overall verdict by contender and row, mean score by contender, evaluator and row)."""
    overall: dict[str, dict[int, bool]] = defaultdict(dict)
    scores: dict[str, dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    if comparison.evaluation_id is None:
        return overall, scores
    data, _ = load_report(session=session, evaluation_id=comparison.evaluation_id)
    versions = {e["key"]: e["version"] for e in data.evaluation.evaluators}
    by_run = {c["run_id"]: c["key"] for c in comparison.contenders}
    per_row: dict[tuple[str, int], list[EvaluationScore]] = defaultdict(list)
    for s in data.scores:
        if s.sample_index != 0 or versions.get(s.evaluator_key) != s.evaluator_version:
            continue
        key = by_run.get(s.run_id)
        if key is None:
            continue
        per_row[(key, s.row_index)].append(s)
        if s.error is None:
            scores[key][s.evaluator_key][s.row_index] = s.score
    for (key, row), found in per_row.items():
        judged = [s for s in found if s.error is None]
        if any(not s.passed for s in judged):
            overall[key][row] = False
        elif len(judged) == len(versions):
            overall[key][row] = True  # every evaluator passed it
    return overall, scores


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
    """One page of the side-by-side grid, after the filters."""
    comparison = get_comparison(session=session, comparison_id=comparison_id)
    results = _results(session, comparison)
    overall, _ = _verdicts(session, comparison)
    data_rows = {
        r.row_index: r.data
        for r in session.exec(
            select(DatasetRow).where(DatasetRow.dataset_version_id == comparison.dataset_version_id)
        ).all()
    }
    needle = search.strip().casefold()
    keys = [c["key"] for c in comparison.contenders]
    matching = []
    for row in sorted(data_rows):
        verdicts = [overall.get(k, {}).get(row) for k in keys]
        if disagree and len({v for v in verdicts if v is not None}) < 2:
            continue
        if baseline_fails and overall.get(comparison.baseline, {}).get(row) is not False:
            continue
        if needle:
            answers = [results[k].get(row) for k in keys]
            texts = [str(v) for v in data_rows[row].values()]
            texts += [a.output or "" for a in answers if a is not None]
            if not any(needle in t.casefold() for t in texts):
                continue
        matching.append(row)
    page = []
    for row in matching[offset : offset + limit]:
        cells = {}
        for k in keys:
            r = results[k].get(row)
            cells[k] = {
                "output": r.output if r else None,
                "error": r.error if r else None,
                "latency_ms": r.latency_ms if r else None,
                "tokens": ((r.prompt_tokens or 0) + (r.response_tokens or 0)) if r else None,
                "cost": r.cost if r else None,
                "passed": overall.get(k, {}).get(row),
            }
        page.append({"row": row, "inputs": data_rows[row], "cells": cells})
    return GridPage(total=len(matching), rows=page)
