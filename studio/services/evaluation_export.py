"""An evaluation as CSV, for a spreadsheet: wide (one line per dataset row) or long.

- **wide**: row number, the dataset's columns, the expected output, then per
  contender its output, the chunks its retrieval step found (when it has one:
  ``billing.md #11 (0.912); faq.md #12 (0.403)``, best first) and, per evaluator,
  score, pass and reason (first sample); then the row's overall verdict per contender.
- **long**: one line per row, contender, evaluator and sample, with the run id,
  variant version, model, a hash of the parameters, latency, tokens and cost.

Cells that a spreadsheet would run as formulas are escaped by
:mod:`studio.core.export`. The UI and the CLI download the same bytes.

Rules: access to the evaluation's app (:mod:`studio.services.app_access`).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from sqlmodel import Session

from studio.core.export import to_csv
from studio.services.evaluations import EvaluationData, evaluation_data

__all__ = ["export_evaluation"]


def _params_hash(config: dict[str, Any]) -> str:
    raw = json.dumps(config.get("parameters", {}), sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def _current(data: EvaluationData) -> dict[tuple[str, str, int, int], Any]:
    versions = {c["key"]: c["version"] for c in data.evaluation.evaluators}
    by_run = {c["run_id"]: c["key"] for c in data.evaluation.contenders}
    return {
        (s.evaluator_key, by_run[s.run_id], s.row_index, s.sample_index): s
        for s in data.scores
        if versions.get(s.evaluator_key) == s.evaluator_version and s.run_id in by_run
    }


def _verdict(passed: bool | None) -> str:
    return "" if passed is None else ("pass" if passed else "fail")


def _chunks_cell(retrieval: dict[str, Any] | None) -> str:
    chunks = retrieval.get("chunks") if isinstance(retrieval, dict) else None
    if not isinstance(chunks, list):
        return ""
    cells = []
    for chunk in chunks:
        if not isinstance(chunk, dict):
            continue
        score = chunk.get("score")
        shown = f" ({score:.3f})" if isinstance(score, int | float) else ""
        cells.append(f"{chunk.get('document') or '?'} #{chunk.get('id')}{shown}")
    return "; ".join(cells) or "(no chunks found)"


def _wide(data: EvaluationData) -> bytes:
    scores = _current(data)
    contenders = [c["key"] for c in data.evaluation.contenders]
    retrieving = {
        c for (c, _row, _sample), result in data.results.items() if result.retrieval is not None
    }
    evaluators = [c["key"] for c in data.evaluation.evaluators]
    columns = ["row", *data.columns]
    if data.expected_column:
        columns.append("expected")
    for c in contenders:
        columns.append(f"{c} output")
        if c in retrieving:
            columns.append(f"{c} retrieved")
        for e in evaluators:
            columns += [f"{c} {e} score", f"{c} {e} pass", f"{c} {e} reason"]
        columns.append(f"{c} overall")
    lines = []
    for row_index in sorted(data.rows):
        row = data.rows[row_index]
        line: dict[str, Any] = {"row": row_index + 1, **row}
        if data.expected_column:
            line["expected"] = row.get(data.expected_column, "")
        for c in contenders:
            result = data.results.get((c, row_index, 0))
            line[f"{c} output"] = (
                (result.output or f"(error) {result.error or ''}") if result else ""
            )
            if c in retrieving and result is not None:
                line[f"{c} retrieved"] = _chunks_cell(result.retrieval)
            verdicts: list[bool | None] = []
            for e in evaluators:
                score = scores.get((e, c, row_index, 0))
                if score is None:
                    verdicts.append(None)
                    continue
                line[f"{c} {e} score"] = round(score.score, 4)
                line[f"{c} {e} pass"] = "error" if score.error else _verdict(score.passed)
                line[f"{c} {e} reason"] = score.reason
                verdicts.append(None if score.error else score.passed)
            if verdicts and all(v is not None for v in verdicts):
                line[f"{c} overall"] = _verdict(all(bool(v) for v in verdicts))
            elif any(v is False for v in verdicts):
                line[f"{c} overall"] = "fail"
        lines.append(line)
    return to_csv(lines, columns)


def _long(data: EvaluationData) -> bytes:
    columns = [
        "row", "contender", "contender label", "evaluator", "evaluator id", "sample",
        "score", "pass", "reason", "evaluator error", "output", "expected", "run id",
        "variant version id", "model", "parameters hash", "latency ms", "prompt tokens",
        "completion tokens", "cost usd",
    ]  # fmt: skip
    labels = {c["key"]: c["label"] for c in data.evaluation.contenders}
    ids = {c["key"]: c["id"] for c in data.evaluation.evaluators}
    lines = []
    for (e, c, row_index, sample), score in sorted(
        _current(data).items(), key=lambda kv: (kv[0][2], kv[0][1], kv[0][0], kv[0][3])
    ):
        run = data.runs[c]
        result = data.results.get((c, row_index, sample))
        row = data.rows.get(row_index, {})
        lines.append(
            {
                "row": row_index + 1,
                "contender": c,
                "contender label": labels[c],
                "evaluator": e,
                "evaluator id": ids.get(e, e),
                "sample": sample,
                "score": round(score.score, 4),
                "pass": "error" if score.error else _verdict(score.passed),
                "reason": score.reason,
                "evaluator error": score.error,
                "output": result.output if result else None,
                "expected": row.get(data.expected_column) if data.expected_column else None,
                "run id": run.id,
                "variant version id": run.variant_version_id,
                "model": run.model,
                "parameters hash": _params_hash(run.config),
                "latency ms": round(result.latency_ms, 1) if result and result.latency_ms else None,
                "prompt tokens": result.prompt_tokens if result else None,
                "completion tokens": result.response_tokens if result else None,
                "cost usd": result.cost if result else None,
            }
        )
    return to_csv(lines, columns)


def export_evaluation(
    *, session: Session, evaluation_id: int, shape: Literal["wide", "long"] = "wide"
) -> bytes:
    """The evaluation's CSV (UTF-8 with BOM, so Excel reads it)."""
    data = evaluation_data(session=session, evaluation_id=evaluation_id)
    return _wide(data) if shape == "wide" else _long(data)
