"""The Account page's personal access tokens: create one (shown once), list, revoke.

A token is the person's own key for the gateway: it acts with their current role, so a
role change or a disabled account changes what it may do at once.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from studio.core.errors import StudioError
from studio.services.api_keys import ApiKeyPublic, revoke_key
from studio.services.api_tokens import create_token, list_tokens
from studio.ui.common import show_error, studio_session

__all__ = ["tokens_panel"]


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def _table(tokens: list[ApiKeyPublic]) -> None:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Name": t.name,
                    "Token": t.prefix + "…",
                    "Created": _when(t.created_at),
                    "Last used": _when(t.last_used_at) or "never",
                    "Status": f"revoked {_when(t.revoked_at)}" if t.revoked else "active",
                }
                for t in tokens
            ]
        ),
        hide_index=True,
        width="stretch",
        key="account_tokens_table",
    )


def _create() -> None:
    with st.form("account_token_new", clear_on_submit=True):
        name = st.text_input(
            "Token name", key="account_token_name", max_chars=100,
            placeholder="e.g. laptop scripts",
            help="A name that reminds you where the token is used.",
        )  # fmt: skip
        submitted = st.form_submit_button("Create a token", type="primary")
    if not submitted:
        return
    try:
        with studio_session() as session:
            created = create_token(session=session, name=name.strip() or "default")
    except StudioError as exc:
        show_error(exc)
        return
    with st.container(border=True):
        st.success(
            f"Created the token '{created.key.name}'. Copy it now; it is shown only this once:"
        )
        st.code(created.secret, language=None)
        st.caption(
            "Send it as `Authorization: Bearer <token>` to the studio's gateway. The studio "
            "keeps only a fingerprint of it, so nobody can show it again; if it is lost, "
            "revoke it and create another."
        )


def _revoke(tokens: list[ApiKeyPublic]) -> None:
    active = {t.id: t for t in tokens if not t.revoked}
    if not active:
        return
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    picked = left.selectbox(
        "Token to revoke", list(active),
        format_func=lambda i: f"{active[i].name} ({active[i].prefix}…)",
        key="account_token_pick",
    )  # fmt: skip
    if right.button("Revoke", key="account_token_revoke", icon=":material/block:"):
        try:
            with studio_session() as session:
                revoke_key(session=session, key_id=int(picked), token=True)
        except StudioError as exc:
            show_error(exc)
            return
        st.session_state.account_tokens_notice = (
            f"Revoked the token '{active[picked].name}'; the gateway refuses it from now on."
        )
        st.rerun()


def tokens_panel() -> None:
    """Your personal access tokens: for scripts that call the gateway as you."""
    st.subheader("Personal access tokens")
    st.write(
        "A personal access token lets your scripts call the studio's gateway as you, with "
        "your current role: if your role changes or your account is disabled, the token "
        "follows at once."
    )
    notice = st.session_state.pop("account_tokens_notice", None)
    if notice:
        st.success(notice)
    _create()
    with studio_session() as session:
        tokens = list_tokens(session=session)
    if not tokens:
        st.caption("You have no tokens yet.")
        return
    _table(tokens)
    _revoke(tokens)
