"""Streamlit pieces of the Deploy page: an app's API keys and their scopes.

A new key's plaintext lives in ``st.session_state`` only until the user
dismisses it or leaves the page (:func:`forget_new_key_if_left`); afterwards
only its prefix is ever shown. The key is never logged. The ``manage`` scope is
offered to administrators only (the service refuses it to anyone else too).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from studio.core.identity import current_actor
from studio.services.api_keys import ApiKeyPublic, create_key, list_keys, revoke_key
from studio.ui.common import studio_session
from studio.ui.deploy_endpoints import notices, notify

__all__ = [
    "NEW_KEY",
    "SCOPE_HELP",
    "forget_new_key_if_left",
    "keys_frame",
    "keys_panel",
    "new_key_for_snippets",
]

NEW_KEY = "deploy_new_key"  # (app id, key id, prefix, plaintext) until dismissed
USE_IN_SNIPPETS = "deploy_key_in_snippets"
SENTINEL = "deploy_key_name"  # the key form's name field: rendered on every run of the page
SCOPES_PICK = "deploy_key_scopes"
TIME_FORMAT = "%Y-%m-%d %H:%M UTC"
SCOPE_HELP = {
    "invoke": "invoke: call this app's endpoints",
    "models": "models: call raw models by name (on the studio's provider credit)",
    "manage": "manage: create, change and delete models, deployments and templates",
}


def forget_new_key_if_left() -> None:
    """Drop a shown key when the user comes back from another page.

    Streamlit forgets a page's widget state when another page runs, so when the
    key form's name field has no state at the start of a run, the user left.
    """
    if SENTINEL not in st.session_state:
        st.session_state.pop(NEW_KEY, None)
        st.session_state.pop(USE_IN_SNIPPETS, None)


def _dismiss() -> None:
    st.session_state.pop(NEW_KEY, None)
    st.session_state[USE_IN_SNIPPETS] = False


def _create(app_id: int) -> None:
    limit = st.session_state.get("deploy_key_limit")
    try:
        with studio_session() as session:
            created = create_key(
                session=session,
                app=app_id,
                name=st.session_state.get(SENTINEL) or "default",
                rate_limit_per_minute=int(limit) if limit else None,
                scopes=list(st.session_state.get(SCOPES_PICK) or ["invoke"]),
            )
    except Exception as exc:
        notify("keys", exc)
        return
    st.session_state[NEW_KEY] = (app_id, created.key.id, created.key.prefix, created.secret)
    st.session_state[USE_IN_SNIPPETS] = False
    st.session_state[SENTINEL] = ""
    st.session_state["deploy_key_limit"] = None
    st.session_state[SCOPES_PICK] = ["invoke"]


def _revoke(app_id: int) -> None:
    key_id = st.session_state.get("deploy_revoke_pick")
    if key_id is None:
        return
    try:
        with studio_session() as session:
            row = revoke_key(session=session, key_id=key_id)
    except Exception as exc:
        notify("keys", exc)
        return
    new = st.session_state.get(NEW_KEY)
    if new and new[1] == key_id:
        _dismiss()
    st.session_state["deploy_revoke_sure"] = False
    notify(
        "keys",
        f"Revoked key '{row.name}' ({row.prefix}…). Calls with it are refused within a second.",
    )


def new_key_for_snippets(app_id: int) -> str | None:
    """The just-created key if the user asked to put it into the snippets."""
    new = st.session_state.get(NEW_KEY)
    if new and new[0] == app_id and st.session_state.get(USE_IN_SNIPPETS):
        return str(new[3])
    return None


def keys_frame(keys: Sequence[ApiKeyPublic]) -> pd.DataFrame:
    def when(value: object) -> str:
        return value.strftime(TIME_FORMAT) if value is not None else ""  # type: ignore[attr-defined]

    return pd.DataFrame(
        [
            {
                "Name": k.name,
                "Key": k.prefix + "…",
                "Scopes": ", ".join(k.scopes),
                "Requests/minute": str(k.rate_limit_per_minute or "no limit"),
                "Created": when(k.created_at),
                "Last used": when(k.last_used_at) or "never",
                "Status": f"revoked {when(k.revoked_at)}" if k.revoked else "active",
            }
            for k in keys
        ]
    )


def _show_new_key(app_id: int) -> None:
    new = st.session_state.get(NEW_KEY)
    if not new or new[0] != app_id:
        return
    with st.container(border=True):
        st.warning(
            "Copy this key now and store it somewhere safe. It will not be shown again: the "
            "studio keeps only a fingerprint of it."
        )
        st.code(new[3], language=None)
        st.checkbox(
            "Put this key into the snippets below (easier to try, but do not share them)",
            key=USE_IN_SNIPPETS,
        )
        st.button(
            "I have copied the key — hide it",
            key="deploy_key_dismiss",
            on_click=_dismiss,
            icon=":material/visibility_off:",
        )


def keys_panel(app_id: int, app_name: str) -> None:
    """Create, list and revoke the app's keys; a new key is shown once."""
    if SENTINEL not in st.session_state:
        st.session_state[SENTINEL] = ""
    if SCOPES_PICK not in st.session_state:
        st.session_state[SCOPES_PICK] = ["invoke"]
    with studio_session() as session:  # restores the person at the browser, if needed
        keys = list_keys(session=session, app=app_id)
    offered = ["invoke", "models"] + (["manage"] if current_actor().is_admin else [])
    picked = st.session_state[SCOPES_PICK] or []
    st.session_state[SCOPES_PICK] = [s for s in picked if s in offered]
    st.caption(
        f"Every call to an endpoint of '{app_name}' needs one of the app's keys, sent as "
        "`Authorization: Bearer <key>`. Keys are stored hashed: a key is shown once, "
        "when you create it."
    )
    with st.form("deploy_key_form", border=True):
        name_col, limit_col = st.columns([3, 2])
        with name_col:
            st.text_input(
                "Key name",
                key=SENTINEL,
                max_chars=200,
                placeholder="default",
                help="What or who uses this key (e.g. website backend), so you know which "
                "one to revoke later.",
            )
        with limit_col:
            st.number_input(
                "Requests per minute (optional)",
                key="deploy_key_limit",
                min_value=1,
                max_value=1_000_000,
                value=None,
                step=1,
                placeholder="no limit",
                help="Calls over the limit get HTTP 429 with a Retry-After header.",
            )
        st.multiselect(
            "Scopes",
            offered,
            key=SCOPES_PICK,
            format_func=lambda s: SCOPE_HELP[s],
            help="What the key may do; scopes add up. Most keys need only invoke."
            + ("" if "manage" in offered else " Only administrators can give a key manage."),
        )
        st.form_submit_button(
            "Create API key", key="deploy_key_create", on_click=_create, args=(app_id,)
        )
    _show_new_key(app_id)
    notices("keys")
    if not keys:
        st.info("No API keys yet. Create one above to call the endpoints.")
        return
    st.dataframe(keys_frame(keys), hide_index=True, width="stretch", key="deploy_keys_table")
    active = {k.id: k for k in keys if not k.revoked}
    if not active:
        st.caption("Every key is revoked. Create a new one to call the endpoints again.")
        return
    with st.expander("Revoke a key"):
        st.selectbox(
            "Key",
            list(active),
            key="deploy_revoke_pick",
            format_func=lambda i: f"{active[i].name} ({active[i].prefix}…)",
        )
        sure = st.checkbox(
            "Yes, refuse every call made with this key from now on", key="deploy_revoke_sure"
        )
        st.button(
            "Revoke key",
            key="deploy_revoke",
            disabled=not sure,
            on_click=_revoke,
            args=(app_id,),
        )
