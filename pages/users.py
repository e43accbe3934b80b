"""People: accounts, roles, temporary passwords and app membership (administrators only)."""

from __future__ import annotations

import streamlit as st

from studio.ui import db_ready, page_header
from studio.ui.users_manage import invite_form, load, manage_person, people_table

page_header(
    "People",
    "Who may use this studio and what they may do. Administrators manage people, providers "
    "and models; members work in the apps they are added to; reviewers only review outputs.",
)
db_ready()

notice = st.session_state.pop("users_notice", None)
if notice:
    st.success(notice)
invite_form()
people, app_names = load()
people_table(people, app_names)
manage_person(people, app_names)
