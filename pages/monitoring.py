"""Monitoring: traffic, latency, errors, tokens and cost of the deployed endpoints."""

from __future__ import annotations

import streamlit as st

from studio.services.endpoints import list_endpoints
from studio.services.monitoring import list_requests, request_stats
from studio.ui import db_ready, page_header, studio_session
from studio.ui.monitoring_charts import (
    BUCKET_MINUTES,
    WINDOWS,
    charts,
    freshness,
    metrics,
    usage_panel,
    window_since,
)
from studio.ui.monitoring_requests import add_to_dataset_panel, detail_panel, requests_panel
from studio.ui.pickers import link_to

LIVE_EVERY_S = 5

page_header(
    "Monitoring",
    "Every call to the gateway is logged: see how many requests your endpoints get, how fast "
    "they answer, what fails and what it costs.",
)
db_ready()
ALL = 0  # the endpoint filter's "everything" choice
for key, default in (("mon_endpoint", ALL), ("mon_window", "Last hour"), ("mon_live", True)):
    if key not in st.session_state:
        st.session_state[key] = default

with studio_session() as session:
    endpoints = list_endpoints(session=session)
    anything = list_requests(session=session, limit=1)

if not anything:
    st.info(
        "No requests yet. Deploy a variant on the Deploy page, create an API key there, and "
        "call the endpoint with one of the snippets it shows (curl is the quickest). Calls "
        "appear here within a second."
    )
    link_to("pages/deploy.py", "Go to Deploy", ":material/rocket_launch:")
    st.stop()

names = {e.id: e.name for e in endpoints}
labels = {e.id: f"{e.name} ({e.app_name})" + ("" if e.active else " · off") for e in endpoints}
if st.session_state.mon_endpoint not in labels:
    st.session_state.mon_endpoint = ALL
pick_col, window_col, live_col = st.columns([3, 2, 1], vertical_alignment="bottom")
with pick_col:
    chosen = st.selectbox(
        "Endpoint",
        [ALL, *labels],
        key="mon_endpoint",
        format_func=lambda i: "All endpoints and models" if i == ALL else labels[i],
    )
endpoint_id = None if chosen == ALL else chosen
with window_col:
    st.selectbox("Time window", list(WINDOWS), key="mon_window")
with live_col:
    live = st.toggle("Live", key="mon_live", help=f"Refresh the numbers every {LIVE_EVERY_S} s.")


@st.fragment(run_every=LIVE_EVERY_S if live else None)
def overview() -> None:
    with studio_session() as session:
        stats = request_stats(
            session=session,
            since=window_since(st.session_state.mon_window),
            endpoint_id=st.session_state.mon_endpoint or None,
            bucket_minutes=BUCKET_MINUTES[st.session_state.mon_window],
        )
    if not stats.totals.requests:
        st.info(
            f"No requests in the {st.session_state.mon_window.lower()}. Pick a longer time "
            "window, or call an endpoint (see its snippets on the Deploy page)."
        )
        return
    metrics(stats)
    charts(stats, key="mon_chart")
    freshness(LIVE_EVERY_S if live else None)


overview()

st.subheader("Recent requests")
rows = requests_panel(endpoint_id, names)
if rows:
    with st.expander("Request details", expanded=True):
        detail_panel(rows, names)
    with st.expander("Add these requests to a dataset"):
        st.caption(
            "Real traffic makes good test rows: the inputs of the chosen calls become rows of "
            "a dataset, which you can then run variants over in the Playground."
        )
        add_to_dataset_panel(rows, endpoints)

st.subheader("Usage by day")
usage_panel(endpoint_id)
