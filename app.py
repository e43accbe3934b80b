"""Prompt Studio: the browser face. `streamlit run app.py`."""

from __future__ import annotations

import streamlit as st

from studio.ui import gateway_url

st.set_page_config(page_title="Prompt Studio", page_icon=":material/auto_awesome:", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/apps.py", title="Apps", icon=":material/apps:"),
    st.Page("pages/datasets.py", title="Datasets", icon=":material/table:"),
    st.Page("pages/playground.py", title="Playground", icon=":material/science:"),
    st.Page("pages/variants.py", title="Variants", icon=":material/history:"),
    st.Page("pages/models.py", title="Models", icon=":material/neurology:"),
    st.Page("pages/deploy.py", title="Deploy", icon=":material/rocket_launch:"),
    st.Page("pages/monitoring.py", title="Monitoring", icon=":material/monitoring:"),
]

gateway_url()  # deployed endpoints answer as soon as the studio runs (see STUDIO_GATEWAY_PORT)
st.navigation(PAGES).run()
