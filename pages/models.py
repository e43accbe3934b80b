"""Models: the zoo of callable models, their deployment status and usage."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from studio import registry
from studio.ui import db_ready, page_header, studio_session
from studio.usage import usage_statistics

page_header(
    "Models",
    "Every model the studio can call: built-in offline models and the ones you created.",
)
db_ready()

with studio_session() as session:
    rows = [
        {
            "Name": m.name,
            "Type": m.model_type,
            "Status": m.status,
            "Built-in": "yes" if m.builtin else "",
            "Context window": m.context_window,
            "Description": m.description or m.status_reason or "",
        }
        for m in registry.model_overview(session=session)
    ]

types = sorted({r["Type"] for r in rows})
if "models_type_filter" not in st.session_state:
    st.session_state.models_type_filter = []
chosen = st.multiselect(
    "Filter by type", types, key="models_type_filter", placeholder="All model types"
)
table = pd.DataFrame([r for r in rows if not chosen or r["Type"] in chosen])
if table.empty:
    st.info("No models match this filter. Clear the filter to see every model.")
else:
    st.dataframe(table, hide_index=True, width="stretch")

failed = [r for r in rows if r["Status"] == "FAILED"]
for r in failed:
    st.warning(f"{r['Name']} failed to deploy: {r['Description']}")

st.subheader("Usage")
names = [r["Name"] for r in rows]
if "models_usage_model" not in st.session_state:
    st.session_state.models_usage_model = names[0] if names else None
picked = st.selectbox("Model", names, key="models_usage_model")
if picked:
    with studio_session() as session:
        stats = usage_statistics(session=session, model_name=picked)
    if not stats.by_day:
        st.info(
            f"No calls to {picked} yet. Try it on the Home page, or run "
            f"`studio model execute {picked} request.json`."
        )
    else:
        c1, c2, c3, c4 = st.columns(4)
        c1.metric("Requests", stats.requests)
        c2.metric("Errors", stats.errors)
        c3.metric("Tokens", stats.prompt_tokens + stats.response_tokens)
        c4.metric("Avg latency", f"{stats.avg_latency_ms:.0f} ms")
        frame = pd.DataFrame([d.model_dump() for d in stats.by_day])
        long = frame.melt(
            id_vars="day", value_vars=["requests", "errors"], var_name="kind", value_name="count"
        )
        fig = px.bar(long, x="day", y="count", color="kind", barmode="group", height=300)
        st.plotly_chart(fig, width="stretch")
