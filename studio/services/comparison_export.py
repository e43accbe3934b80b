"""A comparison as two CSV files: the rows side by side, and the summary with its tests.

- rows: one line per dataset row with its inputs, then per contender its output,
  latency, tokens, cost and overall verdict, then the preferred contender (when
  someone chose one);
- summary: one line per contender with its figures and, against the baseline,
  the test (statistic counts, p-value, Holm-adjusted p-value, interval) and its
  sentence.

Formula-looking cells are escaped by :mod:`studio.core.export`.

Rules: access to the comparison's app (:mod:`studio.services.app_access`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlmodel import Session, select

from studio.core.export import to_csv
from studio.services.comparison_summary import comparison_summary, grid_page
from studio.store.tables import ComparisonPreference, DatasetVersion

__all__ = ["export_comparison_rows", "export_comparison_summary"]


def _verdict(passed: bool | None) -> str:
    return "" if passed is None else ("pass" if passed else "fail")


def export_comparison_rows(*, session: Session, comparison_id: int) -> bytes:
    summary = comparison_summary(session=session, comparison_id=comparison_id)
    comparison = summary.comparison
    version = session.get(DatasetVersion, comparison.dataset_version_id)
    columns_in = list(version.columns) if version else []
    keys = [c["key"] for c in comparison.contenders]
    labels = {c["key"]: c["label"] for c in comparison.contenders}
    prefs: dict[int, Counter[str]] = {}
    for pref in session.exec(
        select(ComparisonPreference).where(ComparisonPreference.comparison_id == comparison_id)
    ).all():
        prefs.setdefault(pref.row_index, Counter())[pref.winner] += 1
    columns = ["row", *columns_in]
    for k in keys:
        name = f"{k} ({labels[k]})"
        columns += [f"{name} output", f"{name} latency ms", f"{name} tokens", f"{name} cost usd",
                    f"{name} verdict"]  # fmt: skip
    columns.append("preferred")
    page = grid_page(session=session, comparison_id=comparison_id, limit=10**9)
    lines = []
    for row in page.rows:
        line: dict[str, Any] = {"row": row["row"] + 1, **row["inputs"]}
        for k in keys:
            cell, name = row["cells"][k], f"{k} ({labels[k]})"
            line[f"{name} output"] = (
                cell["output"]
                if cell["output"] is not None
                else (f"(error) {cell['error']}" if cell["error"] else "")
            )
            line[f"{name} latency ms"] = (
                round(cell["latency_ms"], 1) if cell["latency_ms"] else None
            )
            line[f"{name} tokens"] = cell["tokens"]
            line[f"{name} cost usd"] = cell["cost"]
            line[f"{name} verdict"] = _verdict(cell["passed"])
        votes = prefs.get(row["row"])
        if votes:
            winner, _ = votes.most_common(1)[0]
            line["preferred"] = "tie" if winner == "tie" else f"{winner} ({labels.get(winner, '')})"
        lines.append(line)
    return to_csv(lines, columns)


def export_comparison_summary(*, session: Session, comparison_id: int) -> bytes:
    summary = comparison_summary(session=session, comparison_id=comparison_id)
    tests = {t["key"]: t for t in summary.tests}
    columns = [
        "contender", "label", "baseline", "rows answered", "failed calls", "judged", "passed",
        "pass rate", "pass rate low", "pass rate high", "latency p50 ms", "latency p95 ms",
        "cost per 1000 rows", "shared rows", "only baseline passes", "only contender passes",
        "difference", "difference low", "difference high", "mcnemar p", "holm p", "sentence",
    ]  # fmt: skip
    lines = []
    for f in summary.contenders:
        t = tests.get(f["key"], {})
        v = t.get("verdicts") or {}
        d = v.get("difference") or {}
        rate = f["pass_rate"] or {}
        latency = f["latency_p50_ms"] or {}
        lines.append(
            {
                "contender": f["key"], "label": f["label"],
                "baseline": "yes" if f["key"] == summary.comparison.baseline else "",
                "rows answered": f["rows"], "failed calls": f["failed_calls"],
                "judged": f["judged"], "passed": f["passed"],
                "pass rate": rate.get("estimate"), "pass rate low": rate.get("low"),
                "pass rate high": rate.get("high"), "latency p50 ms": latency.get("estimate"),
                "latency p95 ms": f["latency_p95_ms"],
                "cost per 1000 rows": f["cost_per_1000_rows"],
                "shared rows": t.get("shared_rows"), "only baseline passes": v.get("only_a"),
                "only contender passes": v.get("only_b"), "difference": d.get("estimate"),
                "difference low": d.get("low"), "difference high": d.get("high"),
                "mcnemar p": v.get("p_value"), "holm p": v.get("p_holm"),
                "sentence": t.get("sentence", ""),
            }
        )  # fmt: skip
    return to_csv(lines, columns)
