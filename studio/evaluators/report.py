"""Scoring items and summing verdicts up into a report card.

A score is one verdict for one (contender, row, sample, evaluator). The report
card groups them per contender and evaluator: how many outputs were judged,
the pass rate with its Wilson interval, the mean score with its bootstrap
interval, the failing rows with the evaluator's reason, and evaluator errors
counted apart (they are the evaluator's failure, not the output's). A row's
overall verdict passes when every evaluator passed it; with several samples
per row the card adds pass@k, pass^k and the rows whose verdict flips.

:func:`score_items` runs evaluators over items: the pure ones inline, the
model-backed ones concurrently (bounded) through the caller the engine gives.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from studio.evaluators.base import EvalItem, Evaluator, ModelCaller, Verdict
from studio.evaluators.stats import (
    Interval,
    flaky_rows,
    mean_interval,
    pass_at_k,
    pass_hat_k,
    wilson_interval,
)

__all__ = ["CardLine", "ReportCard", "Score", "report_card", "score_items"]

MAX_FAILURES_SHOWN = 200


@dataclass(frozen=True)
class Score:
    contender: str
    row: int
    sample: int
    evaluator: str
    verdict: Verdict


@dataclass
class CardLine:
    """One contender and evaluator (``evaluator`` is ``"overall"`` for the row verdict)."""

    contender: str
    evaluator: str
    judged: int = 0
    passed: int = 0
    errors: int = 0
    pass_rate: Interval | None = None
    mean_score: Interval | None = None
    failures: list[tuple[int, int, str]] = field(default_factory=list)  # (row, sample, reason)
    error_rows: list[tuple[int, int, str]] = field(default_factory=list)
    pass_at_k: dict[int, float] = field(default_factory=dict)
    pass_hat_k: dict[int, float] = field(default_factory=dict)
    flaky: list[int] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "contender": self.contender,
            "evaluator": self.evaluator,
            "judged": self.judged,
            "passed": self.passed,
            "errors": self.errors,
            "pass_rate": self.pass_rate.as_dict() if self.pass_rate else None,
            "mean_score": self.mean_score.as_dict() if self.mean_score else None,
            "failures": [{"row": r, "sample": s, "reason": why} for r, s, why in self.failures],
            "error_rows": [{"row": r, "sample": s, "error": why} for r, s, why in self.error_rows],
            "pass_at_k": self.pass_at_k,
            "pass_hat_k": self.pass_hat_k,
            "flaky_rows": self.flaky,
            "extra": self.extra,
        }


@dataclass
class ReportCard:
    lines: list[CardLine]

    def line(self, contender: str, evaluator: str = "overall") -> CardLine:
        for line in self.lines:
            if line.contender == contender and line.evaluator == evaluator:
                return line
        raise KeyError((contender, evaluator))

    def overall_pass_rate(self) -> float | None:
        """Passed over judged rows across contenders (the CI gate's figure)."""
        overall = [line for line in self.lines if line.evaluator == "overall"]
        judged = sum(line.judged for line in overall)
        return sum(line.passed for line in overall) / judged if judged else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "overall_pass_rate": self.overall_pass_rate(),
            "lines": [line.as_dict() for line in self.lines],
        }


def _line(contender: str, evaluator: str, scores: Sequence[Score]) -> CardLine:
    line = CardLine(contender=contender, evaluator=evaluator)
    by_row: dict[int, list[bool]] = defaultdict(list)
    values: list[float] = []
    for score in sorted(scores, key=lambda s: (s.row, s.sample)):
        verdict = score.verdict
        if verdict.error:
            line.errors += 1
            line.error_rows.append((score.row, score.sample, verdict.error))
            continue
        line.judged += 1
        values.append(verdict.score)
        by_row[score.row].append(verdict.passed)
        if verdict.passed:
            line.passed += 1
        elif len(line.failures) < MAX_FAILURES_SHOWN:
            line.failures.append((score.row, score.sample, verdict.reason))
    line.pass_rate = wilson_interval(line.passed, line.judged)
    line.mean_score = mean_interval(values)
    sample_counts = {len(v) for v in by_row.values()}
    if by_row and min(sample_counts) > 1:
        n = min(sample_counts)
        for k in sorted({1, 2, n} & set(range(1, n + 1))):
            rows = [v[:n] for v in by_row.values()]
            line.pass_at_k[k] = sum(pass_at_k(n, sum(v), k) for v in rows) / len(rows)
            line.pass_hat_k[k] = sum(pass_hat_k(n, sum(v), k) for v in rows) / len(rows)
        line.flaky = flaky_rows(by_row)
    return line


def _overall(contender: str, scores: Sequence[Score]) -> list[Score]:
    """One score per (row, sample): passed when every evaluator passed; an error when an
    evaluator could not judge and none failed."""
    grouped: dict[tuple[int, int], list[Verdict]] = defaultdict(list)
    for s in scores:
        grouped[(s.row, s.sample)].append(s.verdict)
    out = []
    for (row, sample), verdicts in grouped.items():
        failed = [v for v in verdicts if not v.error and not v.passed]
        errors = [v for v in verdicts if v.error]
        if failed:
            verdict = Verdict.check(False, failed[0].reason)
        elif errors:
            verdict = Verdict.failed_to_judge(errors[0].error or "An evaluator could not judge.")
        else:
            verdict = Verdict.check(True, "Every evaluator passed.")
        out.append(Score(contender, row, sample, "overall", verdict))
    return out


def report_card(
    scores: Iterable[Score],
    *,
    evaluators: dict[str, Evaluator] | None = None,
    items: dict[tuple[str, int, int], EvalItem] | None = None,
) -> ReportCard:
    """The report card of ``scores``; ``evaluators`` and ``items`` (by contender, row,
    sample) let an evaluator add its own figures (classification's confusion matrix)."""
    by_key: dict[tuple[str, str], list[Score]] = defaultdict(list)
    contenders: dict[str, None] = {}
    for score in scores:
        by_key[(score.contender, score.evaluator)].append(score)
        contenders.setdefault(score.contender)
    lines: list[CardLine] = []
    for contender in contenders:
        mine = [s for (c, _), group in by_key.items() if c == contender for s in group]
        lines.append(_line(contender, "overall", _overall(contender, mine)))
        for (c, evaluator_key), group in by_key.items():
            if c != contender:
                continue
            line = _line(contender, evaluator_key, group)
            evaluator = (evaluators or {}).get(evaluator_key)
            if evaluator is not None and items is not None:
                pairs = [
                    (items[(contender, s.row, s.sample)], s.verdict)
                    for s in group
                    if (contender, s.row, s.sample) in items
                ]
                if pairs:
                    line.extra = evaluator.summary([p[0] for p in pairs], [p[1] for p in pairs])
            lines.append(line)
    return ReportCard(lines)


async def score_items(
    evaluators: dict[str, Evaluator],
    items: Sequence[tuple[str, int, int, EvalItem]],
    *,
    models: ModelCaller | None = None,
    concurrency: int = 8,
    on_score: Callable[[Score], None] | None = None,
    skip: Callable[[str, str, int, int], bool] | None = None,
) -> list[Score]:
    """Every evaluator over every (contender, row, sample, item). ``skip`` leaves out
    scores already stored (a resumed evaluation scores each row once); ``on_score`` is
    called as each score is made (to store it)."""
    scores: list[Score] = []

    def keep(score: Score) -> None:
        scores.append(score)
        if on_score is not None:
            on_score(score)

    async def judged(key: str, evaluator: Evaluator, c: str, r: int, s: int, i: EvalItem) -> None:
        assert models is not None
        try:
            verdict = await evaluator.aevaluate(i, models)
        except Exception as exc:  # the model call failed after its retries
            verdict = Verdict.failed_to_judge(f"The evaluator's model call failed: {exc}")
        keep(Score(c, r, s, key, verdict))

    pending: list[tuple[str, Evaluator, str, int, int, EvalItem]] = []
    for contender, row, sample, item in items:
        for key, evaluator in evaluators.items():
            if skip is not None and skip(key, contender, row, sample):
                continue
            if evaluator.uses_model:
                if models is None:
                    raise ValueError(f"{evaluator.id} needs a model caller")
                pending.append((key, evaluator, contender, row, sample, item))
            else:
                keep(Score(contender, row, sample, key, evaluator.evaluate(item)))
    work = iter(pending)  # shared by the workers: at most `concurrency` calls in flight

    async def worker() -> None:
        for args in work:
            await judged(*args)

    tasks = [asyncio.ensure_future(worker()) for _ in range(max(1, min(concurrency, len(pending))))]
    try:
        await asyncio.gather(*tasks)
    except BaseException:  # a stop (cancel) or a failure: no worker keeps calling models
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return scores
