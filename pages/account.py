"""Account: who you are in this studio, your password, your personal access tokens."""

from __future__ import annotations

import streamlit as st

from studio.core.identity import current_actor
from studio.ui import db_ready, page_header
from studio.ui.account_parts import password_form
from studio.ui.account_tokens import tokens_panel
from studio.ui.auth import a_role, sign_out

page_header(
    "Account",
    "Your account in this studio: your role, your password and your personal access tokens.",
)
db_ready()


actor = current_actor()
if actor.kind != "user":
    st.info(
        "Sign-in is off in this studio (STUDIO_AUTH=none), so there is no account or password "
        "here: whoever uses this machine is its administrator."
    )
    st.stop()
left, right = st.columns([4, 1])
left.write(f"You are signed in as **{actor.name}**, {a_role(actor.role)}.")
if right.button("Sign out", key="account_sign_out", icon=":material/logout:"):
    sign_out()
    st.rerun()
password_form(actor)
st.divider()
tokens_panel()
