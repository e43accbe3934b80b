"""Models: the zoo, a try-it panel per model type, connections, custom models, usage.

The page only lays out the tabs; each tab's body lives in ``studio/ui/models_*.py``.
Tabs run lazily: only the open tab's code runs, so the page stays fast while
connections are asked for their model lists.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from studio.core.identity import current_actor
from studio.ui import db_ready, page_header
from studio.ui.models_connections import render_connections
from studio.ui.models_custom import render_custom_models
from studio.ui.models_templates import render_templates
from studio.ui.models_try import render_try
from studio.ui.models_usage import render_usage
from studio.ui.models_zoo import render_zoo

page_header(
    "Models",
    "Every model the studio can call: built-in offline models, your providers' models and "
    "the ones you created. Try them, connect providers, create models, watch usage.",
)
db_ready()

# Provider connections, creating models and templates are for administrators: members see
# and call every model, and a sentence says who manages the rest.
ADMIN = current_actor().is_admin
TABS: dict[str, Callable[[], None]] = {"Model zoo": render_zoo, "Try it": render_try}
if ADMIN:
    TABS["Connections"] = render_connections
    TABS["Custom models"] = render_custom_models
    TABS["Templates"] = render_templates
TABS["Usage"] = render_usage

if not ADMIN:
    st.caption(
        "Provider connections, creating models, model templates and prices are managed by "
        "the studio's administrators; ask one to connect a provider or add a model."
    )

if st.session_state.get("models_tab") not in TABS:
    st.session_state.models_tab = "Model zoo"
for tab, render in zip(
    st.tabs(list(TABS), key="models_tab", on_change="rerun"), TABS.values(), strict=True
):
    with tab:
        if tab.open:
            render()
