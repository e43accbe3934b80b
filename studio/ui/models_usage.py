"""Models page, "Usage" tab: requests, tokens, errors and latency by day.

The numbers come from :func:`studio.models.usage.usage_statistics`, aggregated exactly
as ``studio model usage NAME --by deployment|name`` does, so the page and the
CLI always agree.
"""

from __future__ import annotations

import math

import pandas as pd
import plotly.express as px
import streamlit as st

from studio.core.errors import StudioError
from studio.models import registry
from studio.models.usage import UsageStatistics, usage_statistics
from studio.models.zoo import used_model_names
from studio.ui.common import studio_session

__all__ = ["render_usage"]

MODEL = "models_usage_model"
BY = "models_usage_by"
BY_OPTIONS = {"deployment": "Per deployment", "name": "Per model name"}


def _statistics(name: str, by: str) -> tuple[UsageStatistics, str, str]:
    """Statistics and a sentence saying what they count (mirrors the CLI's --by)."""
    with studio_session() as session:
        try:
            dep = registry.resolve_model(session=session, ref=name).deployment
        except StudioError:
            dep = None
        if by == "deployment" and dep is not None:
            stats = usage_statistics(session=session, deployment_id=dep.id)
            return stats, f"Calls to deployment {dep.name} (id {dep.id}).", "deployment"
        stats = usage_statistics(session=session, model_name=name)
        scope = "" if by == "name" else " (it has no deployment, so calls are counted by name)"
        return stats, f"Calls made under the name {name}{scope}.", "name"


def _charts(stats: UsageStatistics) -> None:
    frame = pd.DataFrame([d.model_dump() for d in stats.by_day])
    frame["day"] = pd.to_datetime(frame["day"])
    names = {
        "requests": "Requests",
        "errors": "Errors",
        "prompt_tokens": "Prompt tokens",
        "response_tokens": "Response tokens",
    }
    long = frame.rename(columns=names)
    calls = long.melt(
        id_vars="day", value_vars=["Requests", "Errors"], var_name="", value_name="calls"
    )
    tokens = long.melt(
        id_vars="day",
        value_vars=["Prompt tokens", "Response tokens"],
        var_name="",
        value_name="tokens",
    )
    left, right = st.columns(2)
    fig = px.bar(
        calls,
        x="day",
        y="calls",
        color="",
        barmode="group",
        height=300,
        title="Requests and errors by day",
        color_discrete_map={"Requests": "#4c78a8", "Errors": "#e45756"},
    )
    peak = int(frame["requests"].max() or 1)
    fig.update_yaxes(rangemode="tozero", dtick=max(1, math.ceil(peak / 5)))
    fig.update_xaxes(dtick="D1", tickformat="%b %d", title=None)
    left.plotly_chart(fig, key="models_usage_calls")
    fig = px.bar(tokens, x="day", y="tokens", color="", height=300, title="Tokens by day")
    fig.update_xaxes(dtick="D1", tickformat="%b %d", title=None)
    right.plotly_chart(fig, key="models_usage_tokens")
    table = frame.assign(day=frame["day"].dt.date).rename(
        columns={
            "day": "Day",
            "requests": "Requests",
            "errors": "Errors",
            "prompt_tokens": "Prompt tokens",
            "response_tokens": "Response tokens",
            "cost": "Cost $",
            "avg_latency_ms": "Avg ms",
            "max_latency_ms": "Max ms",
        }
    )
    st.dataframe(table, hide_index=True, width="stretch")


def render_usage() -> None:
    with studio_session() as session:
        registered = [m.name for m in registry.list_models(session=session)]
        used = used_model_names(session=session)
    names = registered + [n for n in used if n not in registered]
    if not names:
        st.info("No models yet.")
        return
    if st.session_state.get(MODEL) not in names:
        st.session_state[MODEL] = names[0]
    if BY not in st.session_state:
        st.session_state[BY] = "deployment"
    left, right = st.columns([3, 2], vertical_alignment="bottom")
    name = left.selectbox("Model", names, key=MODEL)
    by = right.radio(
        "Count calls", list(BY_OPTIONS), key=BY, format_func=BY_OPTIONS.get, horizontal=True
    )
    stats, scope, by = _statistics(name, by)
    if not stats.by_day:
        st.info(
            f"No calls to {name} yet. Try it in the Try it tab, or run "
            f"`studio model execute {name} request.json`."
        )
        return
    st.caption(f"{scope} Same numbers as `studio model usage {name} --by {by}`.")
    cols = st.columns(5)
    cols[0].metric("Requests", stats.requests)
    cols[1].metric("Errors", stats.errors)
    cols[2].metric("Tokens", stats.prompt_tokens + stats.response_tokens)
    cols[3].metric("Cost", f"${stats.cost:.4f}")
    cols[4].metric("Avg latency", f"{stats.avg_latency_ms:.0f} ms")
    _charts(stats)
