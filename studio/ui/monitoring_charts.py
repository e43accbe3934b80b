"""Streamlit pieces of the Monitoring page: the headline numbers, charts over time, and
usage by day. Charts are plotly; times are UTC."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from studio.gateway.server import request_log_stats
from studio.services.monitoring import MonitoringStats, StatsBucket, UsageDay, usage_by_day
from studio.store.tables import utcnow
from studio.ui.common import studio_session

__all__ = [
    "BUCKET_MINUTES",
    "WINDOWS",
    "charts",
    "format_ms",
    "freshness",
    "log_loss_warning",
    "metrics",
    "stats_frame",
    "usage_frame",
    "usage_panel",
    "window_since",
]

WINDOWS: dict[str, timedelta] = {
    "Last 15 minutes": timedelta(minutes=15),
    "Last hour": timedelta(hours=1),
    "Last 24 hours": timedelta(hours=24),
    "Last 7 days": timedelta(days=7),
}
BUCKET_MINUTES = {  # chart resolution per window: 15 to 60 points
    "Last 15 minutes": 1,
    "Last hour": 1,
    "Last 24 hours": 30,
    "Last 7 days": 180,
}
CHART_HEIGHT = 260


def window_since(label: str, now: datetime | None = None) -> datetime:
    return (now or utcnow()) - WINDOWS.get(label, WINDOWS["Last hour"])


def format_ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f} ms" if value >= 100 else f"{value:,.1f} ms"


def format_cost(value: float) -> str:
    return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def log_loss_warning() -> None:
    """Say so when this process's gateway served requests it could not log (the numbers
    on this page then miss them)."""
    lost = request_log_stats()
    if lost.refused:
        st.warning(
            f"{lost.refused} requests were served but not logged because the log queue was "
            "full: the numbers below miss them. The database is not keeping up with the "
            "traffic; check that it is reachable and not overloaded.",
            icon=":material/warning:",
        )
    if lost.quarantined:
        st.warning(
            f"{lost.quarantined} requests were served but the database refused their log "
            "entries, so they are not counted here (the gateway's log names their request "
            "ids).",
            icon=":material/warning:",
        )
    if lost.dropped:
        st.warning(
            f"{lost.dropped} requests were served but not logged because the database "
            "could not be reached for too long.",
            icon=":material/warning:",
        )


def metrics(stats: MonitoringStats) -> None:
    log_loss_warning()
    """Requests, errors, latency percentiles, tokens and cost over the whole window."""
    t = stats.totals
    row1 = st.columns(4)
    row1[0].metric("Requests", f"{t.requests:,}", help="Calls the gateway answered.")
    row1[1].metric("Requests per minute", f"{t.requests_per_minute:,.2f}")
    row1[2].metric(
        "Error rate",
        f"{t.error_rate:.1%}",
        help=f"{t.errors:,} answered with an HTTP status of 400 or more.",
    )
    row1[3].metric(
        "Cost",
        format_cost(t.cost),
        help="From the model prices set on the Models page; 0 for models without a price.",
    )
    row2 = st.columns(4)
    row2[0].metric("Latency p50", format_ms(t.p50_ms), help="Half of the calls were faster.")
    row2[1].metric("Latency p95", format_ms(t.p95_ms), help="95% of the calls were faster.")
    row2[2].metric("Latency p99", format_ms(t.p99_ms), help="99% of the calls were faster.")
    row2[3].metric(
        "Tokens",
        f"{t.prompt_tokens + t.response_tokens:,}",
        help=f"{t.prompt_tokens:,} in the prompts, {t.response_tokens:,} in the answers.",
    )


def freshness(every_s: int | None) -> None:
    now = utcnow()
    tail = f" · refreshing every {every_s} s" if every_s else " · live refresh is off"
    st.caption(f"Times are UTC. Updated {now:%H:%M:%S} UTC{tail}")


def stats_frame(buckets: Sequence[StatsBucket]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "time": [b.start for b in buckets],
            "requests_per_minute": [b.requests_per_minute for b in buckets],
            "requests": [b.requests for b in buckets],
            "p50": [b.p50_ms for b in buckets],
            "p95": [b.p95_ms for b in buckets],
            "p99": [b.p99_ms for b in buckets],
            "error_rate": [b.error_rate * 100 if b.requests else None for b in buckets],
            "prompt_tokens": [b.prompt_tokens for b in buckets],
            "response_tokens": [b.response_tokens for b in buckets],
            "cost": [b.cost for b in buckets],
        }
    )


def _layout(fig: go.Figure, title: str, y_title: str) -> go.Figure:
    fig.update_layout(
        title={"text": title, "font": {"size": 14}},
        height=CHART_HEIGHT,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "y": -0.25},
        hovermode="x unified",
    )
    fig.update_yaxes(title_text=y_title, rangemode="tozero")
    return fig


def _figures(stats: MonitoringStats) -> list[go.Figure]:
    df = stats_frame(stats.buckets)
    width = stats.bucket_minutes
    per = "minute" if width == 1 else f"{width} minutes"
    rpm = go.Figure(go.Bar(x=df["time"], y=df["requests_per_minute"], name="requests/min"))
    latency = go.Figure(
        [
            go.Scatter(x=df["time"], y=df[col], name=col, mode="lines+markers", connectgaps=False)
            for col in ("p50", "p95", "p99")
        ]
    )
    errors = go.Figure(
        go.Scatter(
            x=df["time"],
            y=df["error_rate"],
            name="error rate",
            mode="lines+markers",
            line={"color": "#d62728"},
        )
    )
    priced = stats.totals.cost > 0
    usage = make_subplots(specs=[[{"secondary_y": priced}]])
    usage.add_trace(go.Bar(x=df["time"], y=df["prompt_tokens"], name="prompt tokens"))
    usage.add_trace(go.Bar(x=df["time"], y=df["response_tokens"], name="answer tokens"))
    if priced:
        usage.add_trace(
            go.Scatter(x=df["time"], y=df["cost"], name="cost (USD)", mode="lines+markers"),
            secondary_y=True,
        )
        usage.update_yaxes(title_text="USD", secondary_y=True, rangemode="tozero")
    usage.update_layout(barmode="stack")
    peak = max((r for r in df["error_rate"] if r is not None), default=0.0)
    errors.update_yaxes(range=[0, max(5.0, peak * 1.1)])
    return [
        _layout(rpm, f"Requests per minute (averaged per {per})", "requests/min"),
        _layout(latency, "Latency percentiles", "milliseconds"),
        _layout(errors, "Error rate", "% of requests"),
        _layout(
            usage,
            "Tokens and cost" if priced else "Tokens (no model price set, so no cost)",
            "tokens",
        ),
    ]


def charts(stats: MonitoringStats, key: str) -> None:
    """Four charts over the window: traffic, latency, errors, tokens and cost."""
    figures = _figures(stats)
    for row in range(2):
        cols = st.columns(2)
        for i, col in enumerate(cols):
            with col:
                index = row * 2 + i
                st.plotly_chart(figures[index], key=f"{key}_{index}", width="stretch")


def usage_frame(days: Sequence[UsageDay]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Day": d.day.isoformat(),
                "Endpoint": d.endpoint or "(model API)",
                "Model": d.model or "",
                "Requests": d.requests,
                "Errors": d.errors,
                "Prompt tokens": d.prompt_tokens,
                "Answer tokens": d.response_tokens,
                "Cost (USD)": round(d.cost, 6),
            }
            for d in days
        ],
        columns=[
            "Day",
            "Endpoint",
            "Model",
            "Requests",
            "Errors",
            "Prompt tokens",
            "Answer tokens",
            "Cost (USD)",
        ],
    )


def usage_panel(endpoint_id: int | None, days: int = 30) -> None:
    """Requests, tokens and cost per day, endpoint and model over the last ``days`` days."""
    with studio_session() as session:
        rows = usage_by_day(
            session=session, since=utcnow() - timedelta(days=days), endpoint_id=endpoint_id
        )
    if not rows:
        st.info(f"No calls to endpoints or models in the last {days} days.")
        return
    frame = usage_frame(rows)
    by_day = frame.assign(who=frame["Endpoint"] + " · " + frame["Model"])
    fig = go.Figure(
        [
            go.Bar(x=part["Day"], y=part["Requests"], name=str(who))
            for who, part in by_day.groupby("who", sort=True)
        ]
    )
    fig.update_layout(barmode="stack")
    fig.update_xaxes(type="category")
    st.plotly_chart(
        _layout(fig, f"Requests per day (last {days} days, UTC)", "requests"),
        key="mon_usage_chart",
        width="stretch",
    )
    st.dataframe(frame, hide_index=True, width="stretch", key="mon_usage_table")
