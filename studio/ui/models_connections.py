"""Models page, "Connections" tab: add, test, edit and remove provider connections.

Keys are write-only: the password box is read in the save callback, stored
encrypted by :mod:`studio.models.connections`, and emptied at once, so the key is
never rendered back, kept in session state, or logged. Only the masked form
(``••••••••abcd``) is shown afterwards.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st
from pydantic import SecretStr

from studio.core.errors import StudioError
from studio.core.schemas import parse_document
from studio.models import registry
from studio.models.connections import (
    ConnectionCreate,
    ConnectionPublic,
    ConnectionUpdate,
    add_connection,
    check_connection,
    list_connections,
    remove_connection,
    update_connection,
)
from studio.ui.common import studio_session
from studio.ui.models_zoo import refresh_connection_models

__all__ = ["KINDS", "render_connections"]

# label → (provider kind, default connection name, default base URL, key required)
KINDS: dict[str, tuple[str, str, str, bool]] = {
    "OpenAI": ("openai", "openai", "https://api.openai.com/v1", True),
    "Anthropic": ("anthropic", "anthropic", "https://api.anthropic.com", True),
    "OpenAI-compatible server (vLLM, Ollama, LM Studio, llama.cpp)": ("openai", "local", "", False),
    "Rerank server (Cohere, Jina, TEI)": ("rerank", "rerank", "", False),
}
KIND = "models_conn_kind"
NAME, URL = "models_conn_name", "models_conn_url"
KEY_ROUND = "models_conn_key_round"  # bumped after every save: a fresh, empty password box
NOTICE = "models_conn_notice"  # (level, text) shown after a save, test or removal
CHECKS = "models_conn_checks"  # connection name → last check (ok, message)
CONFIRM = "models_conn_confirm_remove"


def _error_text(exc: StudioError) -> str:
    return f"{exc.message} {exc.hint}" if exc.hint else exc.message


def _run_check(name: str) -> None:
    with studio_session() as session:
        result = check_connection(session=session, name=name)
    st.session_state[CHECKS][name] = (result.ok, result.message)


def password_key(base: str) -> str:
    """Widget key of a password box. It changes after each save, so the browser gets a new,
    empty box: resetting the old one's value does not clear what a form already holds."""
    return f"{base}_{st.session_state.get(KEY_ROUND, 0)}"


def _take_key(widget_key: str) -> str:
    """Read a pasted key and remove it from session state at once."""
    key = str(st.session_state.get(widget_key) or "").strip()
    st.session_state[widget_key] = ""
    del st.session_state[widget_key]
    st.session_state[KEY_ROUND] = st.session_state.get(KEY_ROUND, 0) + 1
    return key


def _saved_notice(name: str, saved: str) -> tuple[str, str]:
    """Test the connection just saved and say both things in one notice."""
    _run_check(name)
    ok, message = st.session_state[CHECKS][name]
    if ok:
        return "success", f"{saved} Test call: {message}"
    return "warning", f"{saved.rstrip('.')}, but the test call failed: {message}"


def _on_kind_change() -> None:
    _kind, default_name, default_url, _needs = KINDS[st.session_state[KIND]]
    st.session_state[NAME] = default_name
    st.session_state[URL] = default_url


def _save_new() -> None:
    """Form callback: store the connection, forget the key, then test the connection."""
    key = _take_key(password_key("models_conn_key"))
    kind, _name, _url, needs_key = KINDS[st.session_state[KIND]]
    name = st.session_state.get(NAME, "").strip()
    if needs_key and not key:
        st.session_state[NOTICE] = ("error", f"Paste the API key for {name or 'the connection'}.")
        return
    try:
        data = parse_document(
            ConnectionCreate,
            {
                "name": name,
                "kind": kind,
                "base_url": st.session_state.get(URL, "").strip() or None,
                "api_key": SecretStr(key) if key else None,
            },
            "connection",
        )
        with studio_session() as session:
            conn = add_connection(session=session, data=data)
    except StudioError as exc:
        retype = " Paste the key again." if key else ""
        st.session_state[NOTICE] = ("error", _error_text(exc) + retype)
        return
    st.session_state[NAME] = ""
    st.session_state[URL] = ""
    refresh_connection_models()
    st.session_state[NOTICE] = _saved_notice(
        conn.name,
        f"Saved connection '{conn.name}'. Its models are called as {conn.name}/MODEL "
        "and appear in the Model zoo.",
    )


def _save_edit(name: str) -> None:
    url_key = f"models_conn_edit_url_{name}"
    key = _take_key(password_key(f"models_conn_edit_key_{name}"))
    try:
        data = ConnectionUpdate(
            base_url=st.session_state.get(url_key, ""), api_key=SecretStr(key) if key else None
        )
        with studio_session() as session:
            update_connection(session=session, name=name, data=data)
    except StudioError as exc:
        st.session_state[NOTICE] = ("error", _error_text(exc))
        return
    refresh_connection_models()
    st.session_state[NOTICE] = _saved_notice(name, f"Updated connection '{name}'.")


def _remove(name: str) -> None:
    try:
        with studio_session() as session:
            remove_connection(session=session, name=name)
    except StudioError as exc:
        st.session_state[NOTICE] = ("error", _error_text(exc))
    else:
        st.session_state[NOTICE] = ("success", f"Removed connection '{name}'.")
        st.session_state[CHECKS].pop(name, None)
        refresh_connection_models()
    st.session_state[CONFIRM] = None


def _key_column(c: ConnectionPublic) -> str:
    if c.api_key_env:
        return f"from ${c.api_key_env}" + (f" ({c.key_hint})" if c.key_hint else " (not set)")
    return c.key_hint or ("stored" if c.has_key else "none")


def _source(c: ConnectionPublic) -> str:
    return {"builtin": "built in", "environment": "environment", "database": "added here"}[c.source]


def _table(conns: list[ConnectionPublic]) -> None:
    rows = [
        {
            "Name": c.name,
            "Kind": c.kind,
            "Base URL": c.base_url or "",
            "Key": _key_column(c),
            "Source": _source(c),
            "Last test": st.session_state[CHECKS].get(c.name, (None, ""))[1],
        }
        for c in conns
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def _add_form() -> None:
    st.subheader("Add a connection")
    if KIND not in st.session_state:
        st.session_state[KIND] = next(iter(KINDS))
        _on_kind_change()
    for key in (NAME, URL):
        if key not in st.session_state:
            st.session_state[key] = ""
    label = st.selectbox(
        "What do you want to connect?", list(KINDS), key=KIND, on_change=_on_kind_change
    )
    _kind, _name, _url, needs_key = KINDS[label]
    with st.form("models_conn_add_form", border=True):
        st.text_input(
            "Connection name",
            key=NAME,
            help="Lower-case letters, digits, '.', '_' or '-'. Models are called as NAME/model.",
        )
        st.text_input(
            "Base URL",
            key=URL,
            placeholder="http://localhost:8000/v1",
            help="Where the server listens. For OpenAI-compatible servers it usually ends in /v1.",
        )
        st.text_input(
            "API key" + (" *" if needs_key else " (optional)"),
            key=password_key("models_conn_key"),
            type="password",
            help="Stored encrypted on this machine and never shown again, only its last "
            "four characters.",
        )
        st.form_submit_button(
            "Save and test", type="primary", key="models_conn_save", on_click=_save_new
        )


def _manage(conn: ConnectionPublic, users: list[str]) -> None:
    action = "Test, edit or remove" if conn.source == "database" else "Test"
    with st.expander(f"{action} '{conn.name}' ({_source(conn)})", expanded=False):
        ok, message = st.session_state[CHECKS].get(conn.name, (None, ""))
        if st.button("Test connection", key=f"models_conn_test_{conn.name}"):
            with st.spinner(f"Calling {conn.name}…"):
                _run_check(conn.name)
            ok, message = st.session_state[CHECKS][conn.name]
        if ok is True:
            st.success(message)
        elif ok is False:
            st.error(message)
        if conn.source != "database":
            st.caption(
                "This connection comes from the environment or is built in; change it by "
                "changing the studio's environment variables."
            )
            return
        url_key = f"models_conn_edit_url_{conn.name}"
        if url_key not in st.session_state:
            st.session_state[url_key] = conn.base_url or ""
        key_key = password_key(f"models_conn_edit_key_{conn.name}")
        with st.form(f"models_conn_edit_form_{conn.name}", border=False):
            st.text_input("Base URL", key=url_key)
            st.text_input(
                "New API key",
                key=key_key,
                type="password",
                placeholder=f"current key: {conn.key_hint}" if conn.key_hint else "no key stored",
                help="Leave empty to keep the current key.",
            )
            st.form_submit_button(
                "Save changes",
                key=f"models_conn_edit_save_{conn.name}",
                on_click=_save_edit,
                args=(conn.name,),
            )
        if st.session_state[CONFIRM] != conn.name:
            if st.button("Remove connection…", key=f"models_conn_remove_{conn.name}"):
                st.session_state[CONFIRM] = conn.name
                st.rerun()
            return
        used = f" Models that use it will stop working: {', '.join(users)}." if users else ""
        st.warning(f"Remove connection '{conn.name}' and its stored key?{used}")
        yes, no = st.columns(2)
        yes.button(
            f"Yes, remove {conn.name}",
            key=f"models_conn_remove_yes_{conn.name}",
            type="primary",
            on_click=_remove,
            args=(conn.name,),
        )
        if no.button("Cancel", key=f"models_conn_remove_no_{conn.name}"):
            st.session_state[CONFIRM] = None
            st.rerun()


def render_connections() -> None:
    for key, default in ((CHECKS, {}), (CONFIRM, None), (NOTICE, None)):
        if key not in st.session_state:
            st.session_state[key] = default
    notice: tuple[str, str] | None = st.session_state[NOTICE]
    if notice:
        level, text = notice
        {"success": st.success, "warning": st.warning}.get(level, st.error)(text)
        st.session_state[NOTICE] = None
    with studio_session() as session:
        conns = list_connections(session=session)
        models = registry.list_models(session=session)
    st.write(
        "A connection lets the studio call a provider's models. Keys are stored encrypted "
        "on this machine and are never shown again."
    )
    _table(conns)
    users: dict[str, list[str]] = {}
    for m in models:
        if m.connection and not m.is_builtin:
            users.setdefault(m.connection, []).append(m.name)
    for conn in conns:
        _manage(conn, users.get(conn.name, []))
    _add_form()
