"""Prompt Studio: the browser face. `streamlit run app.py`."""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="Prompt Studio", page_icon=":material/auto_awesome:", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/models.py", title="Models", icon=":material/neurology:"),
]

st.navigation(PAGES).run()
