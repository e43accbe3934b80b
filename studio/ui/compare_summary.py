"""The comparison's summary above the grid: figures per contender, sentences, charts.

Per contender a table row (pass rate with its 95% interval, latency p50 with its
interval and p95, cost per 1,000 rows), then one sentence per contender against
the baseline (what the paired test says), the notes, and three plotly charts:
pass rate with interval whiskers, latency distribution, quality against cost. The
preferences panel shows the win rates and the ranking people's choices give.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from studio.services.comparison_preferences import preference_summary
from studio.services.comparison_summary import ComparisonSummary, comparison_summary, grid_page
from studio.ui.common import studio_session

__all__ = ["load_summary", "preferences_panel", "summary_panel"]


def load_summary(comparison_id: int) -> ComparisonSummary:
    with studio_session() as session:
        return comparison_summary(session=session, comparison_id=comparison_id)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def _money(value: float | None) -> str:
    if value is None:
        return "no price"
    return "$0 (free)" if value == 0 else f"${value:,.4f}"


def summary_frame(summary: ComparisonSummary) -> pd.DataFrame:
    base = summary.comparison.baseline
    rows = []
    for f in summary.contenders:
        rate, p50 = f["pass_rate"], f["latency_p50_ms"]
        rows.append(
            {
                "Contender": f["key"] + (" (baseline)" if f["key"] == base else ""),
                "Name": f["label"],
                "Rows answered": f"{f['rows']} of {f['of']}",
                "Failed calls": f["failed_calls"],
                "Pass rate": _pct(rate["estimate"]) if rate else "not judged",
                "95% CI": f"{rate['low']:.0%} to {rate['high']:.0%}" if rate else "-",
                "Latency p50": _ms(p50["estimate"]) if p50 else "-",
                "Latency p95": _ms(f["latency_p95_ms"]),
                "Cost / 1,000 rows": _money(f["cost_per_1000_rows"]),
            }
        )
    return pd.DataFrame(rows)


@st.cache_data(show_spinner=False, max_entries=8)
def _latencies(comparison_id: int, stamp: tuple[Any, ...]) -> dict[str, list[float]]:
    """Every row's latency per contender (``stamp`` changes when outputs do)."""
    with studio_session() as session:
        page = grid_page(session=session, comparison_id=comparison_id, limit=10**9)
    out: dict[str, list[float]] = {}
    for row in page.rows:
        for key, cell in row["cells"].items():
            if cell["latency_ms"] is not None and cell["error"] is None:
                out.setdefault(key, []).append(float(cell["latency_ms"]))
    return out


def _name(f: dict[str, Any]) -> str:
    return f"{f['key']} · {f['label']}"


def _pass_chart(summary: ComparisonSummary) -> None:
    judged = [f for f in summary.contenders if f["pass_rate"]]
    if not judged:
        st.info("No pass rates yet: they need evaluators and scored outputs.")
        return
    rates = [f["pass_rate"] for f in judged]
    figure = go.Figure(
        go.Bar(
            x=[_name(f) for f in judged],
            y=[r["estimate"] for r in rates],
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [r["high"] - r["estimate"] for r in rates],
                "arrayminus": [r["estimate"] - r["low"] for r in rates],
            },
            text=[f"{r['estimate']:.0%}" for r in rates],
            textposition="inside",
        )
    )
    figure.update_layout(
        yaxis={"title": "pass rate", "tickformat": ".0%", "range": [0, 1.05]},
        height=340,
        margin={"t": 20, "b": 20},
    )
    st.plotly_chart(figure, key="cmp_chart_pass", width="stretch")
    st.caption(
        "Each bar is the share of judged rows where every evaluator passed; the whisker is the "
        "95% interval, where the true pass rate most likely lies. Overlapping whiskers do not "
        "settle it: the sentences above use the paired test on the shared rows."
    )


def _latency_chart(summary: ComparisonSummary) -> None:
    comparison_id = summary.comparison.id or 0
    stamp = tuple((f["key"], f["rows"], f["failed_calls"]) for f in summary.contenders)
    latencies = _latencies(comparison_id, stamp)
    if not latencies:
        st.info("No latencies yet: the contenders have not answered any row.")
        return
    figure = go.Figure()
    for f in summary.contenders:
        if f["key"] in latencies:
            figure.add_trace(go.Box(y=latencies[f["key"]], name=_name(f), boxmean=True))
    figure.update_layout(
        yaxis={"title": "latency (ms)"}, height=340, showlegend=False, margin={"t": 20, "b": 20}
    )
    st.plotly_chart(figure, key="cmp_chart_latency", width="stretch")
    st.caption(
        "Each box holds the middle half of one contender's answer times (the line is the "
        "median, the dashed line the mean); whiskers and dots show the slow and fast ones. "
        "Answers served from the cache are near zero."
    )


def _cost_chart(summary: ComparisonSummary) -> None:
    points = [f for f in summary.contenders if f["pass_rate"]]
    if not points:
        st.info("Quality against cost needs pass rates: choose evaluators.")
        return
    figure = go.Figure(
        go.Scatter(
            x=[f["cost_per_1000_rows"] or 0.0 for f in points],
            y=[f["pass_rate"]["estimate"] for f in points],
            text=[_name(f) for f in points],
            mode="markers+text",
            textposition="top center",
            marker={"size": 14},
        )
    )
    figure.update_layout(
        xaxis={"title": "cost per 1,000 rows (USD)", "rangemode": "tozero"},
        yaxis={"title": "pass rate", "tickformat": ".0%", "range": [0, 1.1]},
        height=340,
        margin={"t": 20, "b": 20},
    )
    st.plotly_chart(figure, key="cmp_chart_cost", width="stretch")
    st.caption(
        "Up is better quality, left is cheaper: the best contender sits top left. A model "
        "without a known price is drawn at $0 (built-in models are free)."
    )


def summary_panel(summary: ComparisonSummary) -> None:
    """The table, its sentences, the tests against the baseline, the notes and the charts."""
    st.dataframe(summary_frame(summary), hide_index=True, width="stretch", key="cmp_summary")
    st.caption(
        "**Pass rate**: the share of judged rows where every evaluator passed; the **95% CI** "
        "is where the true rate most likely lies with this many rows. **Latency p50** is the "
        "median time per answer (half were faster), **p95** the time 95% of answers beat. "
        "**Cost / 1,000 rows** is the mean cost of one answer times 1,000. **Failed calls** "
        "are rows the model did not answer."
    )
    base = next(f for f in summary.contenders if f["key"] == summary.comparison.baseline)
    if summary.tests:
        st.markdown(f"**Against the baseline, {_name(base)}** (on the rows both answered):")
        for test in summary.tests:
            st.write(f"**{test['key']}**: {test['sentence']}")
    for note in summary.notes:
        st.caption(note)
    pass_tab, latency_tab, cost_tab = st.tabs(  # tracked: a rerun keeps the open chart
        ["Pass rate per contender", "Latency distribution", "Quality against cost"],
        key="compare_chart_tab",
        on_change="rerun",
    )
    with pass_tab:
        _pass_chart(summary)
    with latency_tab:
        _latency_chart(summary)
    with cost_tab:
        _cost_chart(summary)


def preferences_panel(comparison_id: int) -> None:
    """Win rates with intervals from people's choices, and the ranking with its sentence."""
    with studio_session() as session:
        prefs = preference_summary(session=session, comparison_id=comparison_id)
    if not prefs["rows_judged"]:
        st.caption(
            "No preferences yet: in the grid below, press the button under the better output "
            "of a row (or Tie). Blind mode hides the names while you choose."
        )
        return
    rows = []
    for f in prefs["contenders"]:
        rate = f["win_rate"]
        rows.append(
            {
                "Contender": f"{f['key']} · {f['label']}",
                "Wins": f["wins"],
                "Rows judged (no tie)": f["judged"],
                "Win rate": _pct(rate["estimate"]) if rate else "-",
                "95% CI": f"{rate['low']:.0%} to {rate['high']:.0%}" if rate else "-",
            }
        )
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="cmp_prefs")
    st.caption(prefs["sentence"])
    if prefs["ranking"]:
        st.markdown(
            "**Ranking**: "
            + " > ".join(
                f"{r['key']} · {r['label']} ({r['strength']:+.2f})" for r in prefs["ranking"]
            )
        )
        st.caption(
            "The number beside each name is its Bradley-Terry strength: the higher, the more "
            "often people preferred it over the others it was shown with."
        )
