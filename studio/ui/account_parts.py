"""The Account page's parts: your own password (and, later, your personal tokens)."""

from __future__ import annotations

import streamlit as st

from studio.core.errors import StudioError
from studio.core.identity import Actor
from studio.services import users
from studio.ui import auth
from studio.ui.common import show_error, studio_session

__all__ = ["password_form"]


def password_form(actor: Actor) -> None:
    """Change your own password: the current one, then the new one twice."""
    st.subheader("Change your password")
    notice = st.session_state.pop("account_notice", None)
    if notice:
        st.success(notice)
    with st.form("account_password", clear_on_submit=True):
        current = st.text_input("Current password", type="password", key="account_current")
        new = st.text_input(
            "New password", type="password", key="account_new",
            help=f"At least {users.MIN_PASSWORD_CHARS} characters.",
        )  # fmt: skip
        again = st.text_input("New password again", type="password", key="account_again")
        submitted = st.form_submit_button("Change the password", type="primary")
    st.caption("Changing it signs you out of every other browser; this one stays signed in.")
    if not submitted:
        return
    if new != again:
        st.error("The two new passwords are not the same. Type them again.")
        return
    assert actor.user_id is not None
    try:
        with studio_session() as session:
            users.sign_in(
                session=session, name=actor.name, password=current, address=auth.browser_address()
            )
    except StudioError:
        st.error("The current password is not right.")
        st.caption("Type the password you signed in with; after 5 wrong tries it is locked.")
        return
    try:
        with studio_session() as session:
            users.reset_password(session=session, ref=actor.user_id, password=new)
    except StudioError as exc:
        show_error(exc)
        return
    auth.start_browser_session(actor.user_id)
    st.session_state.account_notice = "Your password is changed."
    st.rerun()
