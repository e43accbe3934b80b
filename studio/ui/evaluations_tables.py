"""An evaluation's report card as plain rows, ready for tables and charts.

:func:`report_view` loads an evaluation once (:func:`studio.services.evaluations.
load_report`) and turns it into a :class:`ReportView`: the summary lines per
contender and evaluator, one record per output with every verdict and reason,
and the extra figures (classification, several samples). It is cached per
evaluation and state, so the filters and the row detail do not reload scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from studio.evaluators import catalogue
from studio.evaluators.base import RetrievedChunk
from studio.services.evaluations import get_evaluation, load_report
from studio.ui.common import studio_session

__all__ = ["OVERALL", "ReportView", "Verdict", "report_stamp", "report_view"]

OVERALL = "overall"
PASS, FAIL, ERROR, MISSING = "pass", "fail", "error", "not scored"


@dataclass(frozen=True)
class Verdict:
    evaluator: str
    verdict: str  # pass, fail, error, not scored
    score: float | None
    reason: str


@dataclass
class Output:
    """One output (contender, row, sample) with what it was made from and its verdicts."""

    contender: str
    row: int  # 1-based, as in the CSV
    sample: int
    inputs: dict[str, str]
    prompt: str
    output: str
    generation_error: str | None
    reference: str | None
    overall: str
    verdicts: list[Verdict]
    query: str | None = None
    chunks: list[dict[str, Any]] | None = None  # retrieved, in rank order; None: no retrieval

    def text(self) -> str:
        """Everything a text search looks in."""
        parts = [*self.inputs.values(), self.output, self.reference or "", self.prompt]
        parts += [v.reason for v in self.verdicts]
        return "\n".join(parts).casefold()


@dataclass
class Line:
    contender: str
    evaluator: str
    judged: int
    passed: int
    errors: int
    rate: float | None
    low: float | None
    high: float | None
    mean: float | None
    mean_low: float | None
    mean_high: float | None
    pass_at_k: dict[int, float] = field(default_factory=dict)
    pass_hat_k: dict[int, float] = field(default_factory=dict)
    flaky: list[int] = field(default_factory=list)
    error_rows: list[tuple[int, int, str]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ReportView:
    evaluation_id: int
    contenders: dict[str, str]  # key -> label
    evaluators: dict[str, str]  # key -> readable name
    columns: list[str]
    expected_column: str | None
    samples: int
    lines: list[Line]
    outputs: list[Output]

    def label(self, contender: str) -> str:
        return self.contenders.get(contender, contender)

    def evaluator_name(self, key: str) -> str:
        return "Overall (every evaluator)" if key == OVERALL else self.evaluators.get(key, key)


def report_stamp(evaluation_id: int) -> tuple[object, ...]:
    """Changes whenever the evaluation's scores can have changed."""
    with studio_session() as session:
        e = get_evaluation(session=session, evaluation_id=evaluation_id)
        return (e.status, str(e.finished_at), str(e.summary), str(e.evaluators))


def _names(evaluators: list[dict[str, Any]]) -> dict[str, str]:
    classes = catalogue()
    names = {}
    for config in evaluators:
        cls = classes.get(config["id"])
        name = cls.name if cls is not None else config["id"]
        names[config["key"]] = (
            name if config["key"] == config["id"] else f"{name} ({config['key']})"
        )
    return names


def _overall(verdicts: list[Verdict]) -> str:
    kinds = {v.verdict for v in verdicts}
    if FAIL in kinds:
        return FAIL
    if ERROR in kinds:
        return ERROR
    if MISSING in kinds or not verdicts:
        return MISSING
    return PASS


def _chunk_rows(retrieved: tuple[RetrievedChunk, ...] | None) -> list[dict[str, Any]] | None:
    if retrieved is None:
        return None
    return [
        {"Rank": rank, "Document": c.document, "Chunk id": c.id, "Score": c.score, "Text": c.text}
        for rank, c in enumerate(retrieved, start=1)
    ]


@st.cache_data(max_entries=4, show_spinner="Loading the report card…")
def report_view(evaluation_id: int, stamp: tuple[object, ...]) -> ReportView:
    """The report card of an evaluation (``stamp``: :func:`report_stamp`)."""
    with studio_session() as session:
        data, card = load_report(session=session, evaluation_id=evaluation_id)
    evaluation = data.evaluation
    contenders = {c["key"]: c["label"] for c in evaluation.contenders}
    keys = [c["key"] for c in evaluation.evaluators]
    versions = {c["key"]: c["version"] for c in evaluation.evaluators}
    by_run = {c["run_id"]: c["key"] for c in evaluation.contenders}
    scores = {
        (by_run[s.run_id], s.row_index, s.sample_index, s.evaluator_key): s
        for s in data.scores
        if s.run_id in by_run and versions.get(s.evaluator_key) == s.evaluator_version
    }
    outputs = []
    for key in sorted(data.results, key=lambda k: (k[1], list(contenders).index(k[0]), k[2])):
        contender, row, sample = key
        result = data.results[key]
        verdicts = []
        for e in keys:
            s = scores.get((contender, row, sample, e))
            if s is None:
                verdicts.append(Verdict(e, MISSING, None, "Not scored yet."))
            elif s.error:
                verdicts.append(Verdict(e, ERROR, None, s.error))
            else:
                verdicts.append(Verdict(e, PASS if s.passed else FAIL, s.score, s.reason))
        item = data.item(key)
        outputs.append(
            Output(
                contender=contender,
                row=row + 1,
                sample=sample,
                inputs=dict(data.rows.get(row, {})),
                prompt=result.rendered_prompt or "",
                output=result.output or "",
                generation_error=result.error,
                reference=item.reference,
                overall=_overall(verdicts),
                verdicts=verdicts,
                query=item.query,
                chunks=_chunk_rows(item.retrieved),
            )
        )
    lines = []
    for line in card.lines:
        rate, mean = line.pass_rate, line.mean_score
        lines.append(
            Line(
                contender=line.contender,
                evaluator=line.evaluator,
                judged=line.judged,
                passed=line.passed,
                errors=line.errors,
                rate=rate.estimate if rate else None,
                low=rate.low if rate else None,
                high=rate.high if rate else None,
                mean=mean.estimate if mean else None,
                mean_low=mean.low if mean else None,
                mean_high=mean.high if mean else None,
                pass_at_k=dict(line.pass_at_k),
                pass_hat_k=dict(line.pass_hat_k),
                flaky=[r + 1 for r in line.flaky],
                error_rows=[(r + 1, s, why) for r, s, why in line.error_rows],
                extra=dict(line.extra),
            )
        )
    samples = max((o.sample for o in outputs), default=0) + 1
    return ReportView(
        evaluation_id=evaluation_id,
        contenders=contenders,
        evaluators=_names(evaluation.evaluators),
        columns=list(data.columns),
        expected_column=data.expected_column,
        samples=samples,
        lines=lines,
        outputs=outputs,
    )
