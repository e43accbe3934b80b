"""Prompt Studio: the browser face. `streamlit run app.py`."""

from __future__ import annotations

import streamlit as st

from studio.ui.common import gateway_url, sidebar_navigation

st.set_page_config(page_title="Prompt Studio", page_icon=":material/auto_awesome:", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/apps.py", title="Apps", icon=":material/apps:"),
    st.Page("pages/datasets.py", title="Datasets", icon=":material/table:"),
    st.Page("pages/playground.py", title="Playground", icon=":material/science:"),
    st.Page("pages/variants.py", title="Variants", icon=":material/history:"),
    st.Page("pages/evaluations.py", title="Evaluations", icon=":material/fact_check:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare:"),
    st.Page("pages/jobs.py", title="Jobs", icon=":material/pending_actions:"),
    st.Page("pages/models.py", title="Models", icon=":material/neurology:"),
    st.Page("pages/deploy.py", title="Deploy", icon=":material/rocket_launch:"),
    st.Page("pages/monitoring.py", title="Monitoring", icon=":material/monitoring:"),
]

# The navigation is drawn by us (config: client.showSidebarNavigation = false), first thing,
# so it shows before the slow start-up below and before the page's own imports.
current = st.navigation(PAGES, position="hidden")
sidebar_navigation(PAGES)
gateway_url()  # deployed endpoints answer as soon as the studio runs (see STUDIO_GATEWAY_PORT)
current.run()
