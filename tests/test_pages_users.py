"""The People, Audit log and Account pages, driven as a signed-in administrator or member
(STUDIO_AUTH=local, a real session token in session state)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from studio.core.errors import StudioError
from studio.core.settings import reset_settings
from studio.services import apps, users
from studio.store import session_scope
from studio.ui import auth

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_AUTH", "local")
    reset_settings()


def make_user(name: str, role: str = "member", password: str = PASSWORD) -> users.UserPublic:
    with session_scope() as session:
        return users.create_user(session=session, name=name, password=password, role=role)


def page(name: str, user: users.UserPublic) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=60)
    with session_scope() as session:
        at.session_state[auth.TOKEN_KEY] = users.start_session(session=session, user_id=user.id)
    return at.run()


def texts(elements: Any) -> list[str]:
    return [str(e.value) for e in elements]


def everything(at: AppTest) -> str:
    parts: list[str] = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success", "code"):
        parts += texts(getattr(at, kind))
    for frame in at.dataframe:
        parts.append(frame.value.to_csv())
    return "\n".join(parts)


def can_sign_in(name: str, password: str) -> bool:
    try:
        with session_scope() as session:
            users.sign_in(session=session, name=name, password=password, address="test")
    except users.SignInRefused:
        return False
    return True


@pytest.fixture
def ada() -> users.UserPublic:
    return make_user("ada", "admin")


# -- People ---------------------------------------------------------------------------------


def _invite(at: AppTest, name: str, role: str) -> AppTest:
    at.text_input(key="users_invite_name").set_value(name)
    at.selectbox(key="users_invite_role").set_value(role)
    return at.button(key="FormSubmitter:users_invite-Create the account").click().run()


def test_invite_shows_the_temporary_password_once(ada: users.UserPublic) -> None:
    at = _invite(page("users", ada), "mia", "member")
    assert not at.exception and not at.error, texts(at.error)
    assert any("Created an account for mia, a member." in s for s in texts(at.success))
    password = at.code[0].value
    assert len(password) >= users.MIN_PASSWORD_CHARS
    assert "mia" in list(at.dataframe[0].value["Name"])
    assert can_sign_in("mia", password), "the shown password is the account's"
    at.run()
    assert password not in everything(at), "after a rerun the password is gone from the page"
    assert not at.code


def test_invite_a_reviewer_and_a_taken_name_is_a_sentence(ada: users.UserPublic) -> None:
    at = _invite(page("users", ada), "rex", "reviewer")
    assert any("rex, a reviewer" in s for s in texts(at.success))
    at = _invite(at, "REX", "member")
    assert "A user named 'REX' already exists." in texts(at.error)
    assert not at.code, "no password is shown for an account that was not made"


def test_change_role_disable_and_reset_password(ada: users.UserPublic) -> None:
    make_user("mia")
    at = page("users", ada)
    at.selectbox(key="users_pick").set_value(users_id("mia")).run()
    mia_id = users_id("mia")
    at.selectbox(key=f"users_role_{mia_id}").set_value("reviewer").run()
    at.button(key=f"users_role_save_{mia_id}").click().run()
    assert "mia is now a reviewer." in texts(at.success)
    assert _row(at, "mia")["Role"] == "reviewer"

    at.button(key=f"users_disable_{mia_id}").click().run()
    assert "mia's account is disabled." in texts(at.success)
    assert _row(at, "mia")["Status"] == "disabled"
    assert not can_sign_in("mia", PASSWORD)
    at.button(key=f"users_disable_{mia_id}").click().run()
    assert "mia's account is enabled again." in texts(at.success)

    at.button(key=f"users_reset_{mia_id}").click().run()
    new = at.code[0].value
    assert any("mia's password is reset." in s for s in texts(at.success))
    assert can_sign_in("mia", new) and not can_sign_in("mia", PASSWORD)
    at.run()
    assert new not in everything(at)


def test_an_administrator_cannot_disable_themself_nor_demote_the_last_admin(
    ada: users.UserPublic,
) -> None:
    at = page("users", ada)
    at.selectbox(key="users_pick").set_value(ada.id).run()
    assert at.button(key=f"users_disable_{ada.id}").disabled
    at.selectbox(key=f"users_role_{ada.id}").set_value("member").run()
    at.button(key=f"users_role_save_{ada.id}").click().run()
    assert "ada is the only administrator; the studio needs one." in texts(at.error)


def test_app_membership_add_and_remove(ada: users.UserPublic) -> None:
    mia = make_user("mia")
    with session_scope() as session:
        shop = apps.create_app(session=session, name="Shop emails")
        apps.create_app(session=session, name="Support bot")
    at = page("users", ada)
    at.selectbox(key="users_pick").set_value(mia.id).run()
    at.multiselect(key=f"users_apps_{mia.id}").set_value([shop.id])
    at.button(key=f"users_apps_save_{mia.id}").click().run()
    assert "mia now works in: Shop emails." in texts(at.success)
    assert _row(at, "mia")["Apps"] == "Shop emails"
    member_view = page("apps", mia)
    assert "Shop emails" in everything(member_view) and "Support bot" not in everything(member_view)
    at.multiselect(key=f"users_apps_{mia.id}").set_value([])
    at.button(key=f"users_apps_save_{mia.id}").click().run()
    assert "mia now works in: no app." in texts(at.success)


def users_id(name: str) -> int:
    with session_scope() as session:
        return next(u.id for u in users.list_users(session=session) if u.name == name)


def _row(at: AppTest, name: str) -> dict[str, str]:
    frame = at.dataframe[0].value
    return dict(frame[frame["Name"] == name].iloc[0])


# -- Audit log --------------------------------------------------------------------------------


def test_audit_page_lists_changes_and_filters_them(ada: users.UserPublic) -> None:
    make_user("mia")
    make_user("rex", "reviewer")
    with session_scope() as session:
        users.set_role(session=session, ref="rex", role="member")
    at = page("audit", ada)
    frame = at.dataframe[0].value
    assert {"create", "set-role"} <= set(frame["Action"])
    assert any(
        "newest" in c and "Passwords, keys and tokens are never" in c for c in texts(at.caption)
    )
    at.selectbox(key="audit_action").set_value("set-role").run()
    frame = at.dataframe[0].value
    assert list(frame["Object"]) == ["rex"]
    at.selectbox(key="audit_action").set_value("Any action")
    at.text_input(key="audit_search").set_value("mia").run()
    assert set(at.dataframe[0].value["Object"]) == {"mia"}
    at.text_input(key="audit_search").set_value("nobody-like-this").run()
    assert not at.dataframe
    assert any("No event matches these filters" in i for i in texts(at.info))
    assert PASSWORD not in everything(at)


def test_audit_page_filters_by_person_and_kind(ada: users.UserPublic) -> None:
    make_user("mia")
    at = page("audit", ada)
    people = at.selectbox(key="audit_person").options
    assert "local operator" in people
    at.selectbox(key="audit_person").set_value("local operator")
    at.selectbox(key="audit_kind").set_value("user").run()
    assert set(at.dataframe[0].value["Object"]) == {"ada", "mia"}


def test_audit_page_empty_state() -> None:
    with session_scope() as session:
        first = users.create_first_admin(session=session, name="ada", password=PASSWORD)
        from sqlmodel import delete

        from studio.store.tables import AuditEvent

        session.exec(delete(AuditEvent))
        session.commit()
    at = page("audit", first)
    assert any("Nothing is in the audit log yet" in i for i in texts(at.info))


# -- Account ----------------------------------------------------------------------------------


def _change(at: AppTest, current: str, new: str, again: str) -> AppTest:
    at.text_input(key="account_current").set_value(current)
    at.text_input(key="account_new").set_value(new)
    at.text_input(key="account_again").set_value(again)
    return at.button(key="FormSubmitter:account_password-Change the password").click().run()


def test_account_page_changes_your_own_password() -> None:
    mia = make_user("mia")
    at = page("account", mia)
    assert any("You are signed in as **mia**, a member." in m for m in texts(at.markdown))
    at = _change(at, "wrong one!", "a brand new password", "a brand new password")
    assert "The current password is not right." in texts(at.error)
    at = _change(at, PASSWORD, "a brand new password", "another password")
    assert "The two new passwords are not the same. Type them again." in texts(at.error)
    at = _change(at, PASSWORD, "a brand new password", "a brand new password")
    assert "Your password is changed." in texts(at.success)
    assert can_sign_in("mia", "a brand new password") and not can_sign_in("mia", PASSWORD)
    at.run()
    assert "Sign in to Prompt Studio" not in texts(at.title), "this browser stays signed in"
    assert not re.search("a brand new password", everything(at))


def test_account_page_creates_a_token_shown_once_and_revokes_it() -> None:
    from studio.services.api_keys import verify_key

    mia = make_user("mia")
    at = page("account", mia)
    assert "You have no tokens yet." in texts(at.caption)
    at.text_input(key="account_token_name").set_value("laptop scripts")
    at.button(key="FormSubmitter:account_token_new-Create a token").click().run()
    assert any("Created the token 'laptop scripts'" in s for s in texts(at.success))
    secret = at.code[0].value
    identity = verify_key(secret=secret)
    assert identity.user_name == "mia", "the token acts as mia"
    assert list(at.dataframe[0].value["Status"]) == ["active"]
    at.run()
    assert secret not in everything(at), "after a rerun the token is gone from the page"
    assert not at.code
    at.button(key="account_token_revoke").click().run()
    assert any("Revoked the token 'laptop scripts'" in s for s in texts(at.success))
    assert at.dataframe[0].value["Status"][0].startswith("revoked")
    with pytest.raises(StudioError):
        verify_key(secret=secret)


def test_a_member_opening_the_people_page_gets_a_sentence(ada: users.UserPublic) -> None:
    mia = make_user("mia")
    at = page("users", mia)
    assert at.warning and at.warning[0].value.startswith("This page is for administrators.")
    assert "ada" not in everything(at)
    assert not at.text_input, "no invite form"
