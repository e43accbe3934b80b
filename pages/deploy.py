"""Deploy: put a variant version behind a stable URL, manage its keys, copy code to call it."""

from __future__ import annotations

import streamlit as st

from studio.services.endpoints import list_endpoints
from studio.ui import db_ready, gateway_url, page_header, studio_session
from studio.ui.deploy_endpoints import (
    SELECTED,
    deploy_form,
    endpoint_panel,
    endpoints_frame,
    gateway_status,
)
from studio.ui.deploy_keys import forget_new_key_if_left, keys_panel, new_key_for_snippets
from studio.ui.deploy_snippets import snippets_panel
from studio.ui.pickers import pick_app

page_header(
    "Deploy",
    "Deploy a saved variant to an HTTP endpoint with one click: your product calls its URL "
    "with an API key. Every call is logged on the Monitoring page.",
)
db_ready()
forget_new_key_if_left()  # a new key's plaintext never outlives a visit to this page

app = pick_app("deploy_app", why="Endpoints serve an app's variants")
assert app.id is not None
base_url = gateway_url()
gateway_status(base_url)

with studio_session() as session:
    endpoints = list_endpoints(session=session, app=app.id)

st.subheader("Deploy a variant")
deploy_form(app.id, app.name, endpoints, base_url)

st.subheader("Endpoints")
if not endpoints:
    st.info(
        f"'{app.name}' has no endpoints yet. Deploy a variant above: it answers at its URL "
        "right away."
    )
else:
    st.dataframe(
        endpoints_frame(endpoints, base_url),
        hide_index=True,
        width="stretch",
        key="deploy_endpoints_table",
        column_config={"URL": st.column_config.TextColumn("URL", width="large")},
    )
    by_name = {e.name: e for e in endpoints}
    if st.session_state.get(SELECTED) not in by_name:
        st.session_state[SELECTED] = endpoints[0].name
    selected = by_name[st.selectbox("Manage endpoint", list(by_name), key=SELECTED)]
    with st.container(border=True):
        endpoint_panel(selected, base_url)

st.subheader("API keys")
keys_panel(app.id, app.name)

if endpoints:
    st.subheader(f"Call '{selected.name}'")
    if not selected.active:
        st.warning(
            f"'{selected.name}' is switched off: these calls get 404 until you deploy it again."
        )
    snippets_panel(base_url=base_url, endpoint=selected, key=new_key_for_snippets(app.id))
