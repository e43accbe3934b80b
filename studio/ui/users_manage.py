"""The People page's parts: invite someone, everyone's list, change one person.

A temporary password (a new account's, or a reset one) is generated here, shown once in
the run that made it, with a copy button, and never kept: the next rerun no longer has it.
"""

from __future__ import annotations

import secrets
from datetime import datetime

import pandas as pd
import streamlit as st

from studio.core.errors import StudioError
from studio.core.identity import ROLES, current_actor
from studio.services import members, users
from studio.services.apps import list_apps
from studio.ui.auth import a_role, role_label
from studio.ui.common import show_error, studio_session

__all__ = ["invite_form", "manage_person", "people_table", "temporary_password"]

ROLE_HELP = {
    "admin": "administrator: adds people, connects providers, manages models, sees every app",
    "member": "member: works in the apps they are added to; may call models",
    "reviewer": "reviewer: sees only the outputs sent to them for review",
}


def temporary_password() -> str:
    """A password to hand over once: 16 characters from a secure random source."""
    return secrets.token_urlsafe(12)


def _show_password(name: str, password: str, what: str) -> None:
    with st.container(border=True):
        st.success(f"{what} Give {name} this temporary password; it is shown only now:")
        st.code(password, language=None)
        st.caption(
            "Copy it with the button at the right of the box. The studio keeps only a "
            f"scrambled form of it, so nobody can show it again. {name} signs in with it and "
            "then sets their own password on the Account page."
        )


def invite_form() -> None:
    """Create an account with a generated temporary password, shown once."""
    st.subheader("Invite someone")
    with st.form("users_invite", clear_on_submit=True):
        name = st.text_input(
            "Name", key="users_invite_name", max_chars=users.NAME_CHARS,
            help="What they type to sign in; with single sign-on, their email address.",
        )  # fmt: skip
        role = st.selectbox(
            "Role", list(ROLES), index=1, key="users_invite_role",
            format_func=lambda r: ROLE_HELP[r],
        )  # fmt: skip
        submitted = st.form_submit_button("Create the account", type="primary")
    if not submitted:
        return
    password = temporary_password()
    try:
        with studio_session() as session:
            user = users.create_user(session=session, name=name, password=password, role=role)
    except StudioError as exc:
        show_error(exc)
        return
    _show_password(user.name, password, f"Created an account for {user.name}, {a_role(role)}.")


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "never"


def people_table(people: list[users.UserPublic], app_names: dict[int, str]) -> None:
    st.subheader("Everyone")
    st.caption(
        "Every account of this studio. A disabled account cannot sign in and its personal "
        "tokens no longer work. Apps are the ones a member works in; administrators see every "
        "app anyway."
    )
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Name": p.name,
                    "Role": role_label(p.role),
                    "Status": "disabled" if p.disabled else "active",
                    "Apps": ", ".join(app_names.get(a, f"app {a}") for a in p.apps)
                    or ("every app" if p.role == "admin" else "none"),
                    "Last sign-in": _when(p.last_sign_in_at),
                }
                for p in people
            ]
        ),
        hide_index=True,
        width="stretch",
        key="users_table",
    )


def _role_part(person: users.UserPublic) -> None:
    role = st.selectbox(
        "Role", list(ROLES), index=list(ROLES).index(person.role),
        key=f"users_role_{person.id}", format_func=role_label,
        help="; ".join(ROLE_HELP.values()),
    )  # fmt: skip
    if st.button("Save the role", key=f"users_role_save_{person.id}", disabled=role == person.role):
        try:
            with studio_session() as session:
                users.set_role(session=session, ref=person.id, role=role)
        except StudioError as exc:
            show_error(exc)
            return
        st.session_state.users_notice = f"{person.name} is now {a_role(role)}."
        st.rerun()


def _status_part(person: users.UserPublic) -> None:
    me = current_actor().user_id == person.id
    if person.disabled:
        label, help_text = "Enable the account", f"{person.name} can sign in again."
    else:
        label = "Disable the account"
        help_text = f"{person.name} is signed out everywhere and cannot sign in."
    if st.button(label, key=f"users_disable_{person.id}", help=help_text, disabled=me):
        try:
            with studio_session() as session:
                users.set_disabled(session=session, ref=person.id, disabled=not person.disabled)
        except StudioError as exc:
            show_error(exc)
            return
        state = "enabled again" if person.disabled else "disabled"
        st.session_state.users_notice = f"{person.name}'s account is {state}."
        st.rerun()
    if me:
        st.caption("You cannot disable your own account.")


def _password_part(person: users.UserPublic) -> None:
    if st.button(
        "Reset the password", key=f"users_reset_{person.id}",
        help="Makes a new temporary password and signs them out of every browser.",
    ):  # fmt: skip
        password = temporary_password()
        try:
            with studio_session() as session:
                users.reset_password(session=session, ref=person.id, password=password)
        except StudioError as exc:
            show_error(exc)
            return
        _show_password(person.name, password, f"{person.name}'s password is reset.")


def _apps_part(person: users.UserPublic, app_names: dict[int, str]) -> None:
    if person.role != "member":
        st.caption(
            "Administrators see every app; reviewers see none. Only members are added to apps."
        )
        return
    if not app_names:
        st.caption("There are no apps yet.")
        return
    chosen = st.multiselect(
        "Apps they work in", list(app_names), default=[a for a in person.apps if a in app_names],
        format_func=lambda a: app_names[a], key=f"users_apps_{person.id}",
    )  # fmt: skip
    if st.button("Save the apps", key=f"users_apps_save_{person.id}"):
        added, removed = set(chosen) - set(person.apps), set(person.apps) - set(chosen)
        try:
            with studio_session() as session:
                for app_id in sorted(added):
                    members.add_member(session=session, app=app_id, user=person.id)
                for app_id in sorted(removed):
                    members.remove_member(session=session, app=app_id, user=person.id)
        except StudioError as exc:
            show_error(exc)
            return
        names = ", ".join(app_names[a] for a in chosen) or "no app"
        st.session_state.users_notice = f"{person.name} now works in: {names}."
        st.rerun()


def manage_person(people: list[users.UserPublic], app_names: dict[int, str]) -> None:
    """Change one person's role, status, password and apps."""
    st.subheader("Change one person")
    by_id = {p.id: p for p in people}
    picked = st.selectbox(
        "Person", list(by_id), format_func=lambda i: by_id[i].name, key="users_pick"
    )
    if picked is None:
        return
    person = by_id[picked]
    left, middle, right = st.columns(3, gap="large")
    with left:
        _role_part(person)
    with middle:
        _status_part(person)
        _password_part(person)
    with right:
        _apps_part(person, app_names)


def load() -> tuple[list[users.UserPublic], dict[int, str]]:
    with studio_session() as session:
        people = users.list_users(session=session)
        apps = {a.id: a.name for a in list_apps(session=session)}
    return people, apps
