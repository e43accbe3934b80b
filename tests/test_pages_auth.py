"""Signing in to the browser studio: the first administrator, the sign-in form, lockout,
no-sign-in mode on loopback only, the navigation per role, refused pages, sign out and
single sign-on.

The suite runs with STUDIO_AUTH=none (see conftest); these tests switch to ``local``.
A signed-in browser is simulated by putting a real session token into session state,
as the gate reads it (the cookie part is covered by the browser journey).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select
from streamlit import config
from streamlit.testing.v1 import AppTest

from studio.core.settings import reset_settings
from studio.services import users
from studio.store import session_scope
from studio.store.tables import StudioUser, UserSession
from studio.ui import auth

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_AUTH", "local")
    reset_settings()


def make_user(name: str, role: str = "member", password: str = PASSWORD) -> users.UserPublic:
    with session_scope() as session:  # the test acts as the operator (conftest)
        return users.create_user(session=session, name=name, password=password, role=role)


def signed_in(at: AppTest, user: users.UserPublic) -> AppTest:
    with session_scope() as session:
        at.session_state[auth.TOKEN_KEY] = users.start_session(session=session, user_id=user.id)
    return at


def app(page: str | None = None) -> AppTest:
    path = ROOT / ("app.py" if page is None else f"pages/{page}.py")
    return AppTest.from_file(str(path), default_timeout=60)


def form_page() -> AppTest:
    """A page run directly, for the sign-in forms: under AppTest a form submitted in app.py
    (which runs before st.navigation's page) loses its click, so the forms are driven
    through a page's own gate; the browser journey drives them through app.py."""
    return app("review")


def texts(elements: Any) -> list[str]:
    return [str(e.value) for e in elements]


def all_text(at: AppTest) -> str:
    parts: list[str] = []
    for kind in ("title", "markdown", "caption", "error", "warning", "info", "success", "code"):
        parts += texts(getattr(at, kind))
    return "\n".join(parts)


@pytest.fixture
def address() -> Iterator[Any]:
    """Set Streamlit's server.address for the test (and put the old value back)."""
    old = config.get_option("server.address")

    def set_to(value: str | None) -> None:
        config.set_option("server.address", value)

    yield set_to
    config.set_option("server.address", old)


# -- first administrator ---------------------------------------------------------------


def test_first_visit_creates_the_administrator_and_signs_them_in(local: None) -> None:
    assert texts(app().run().title) == ["Create the first administrator"]
    at = form_page().run()
    assert "Create the first administrator" in texts(at.title)
    at.text_input(key="studio_first_name").set_value("ada")
    at.text_input(key="studio_first_password").set_value(PASSWORD)
    at.text_input(key="studio_first_again").set_value(PASSWORD)
    at.button[0].click().run()
    assert not at.exception
    assert texts(at.title) == ["Review"], "the page opens once the admin exists"
    assert PASSWORD not in all_text(at)
    with session_scope() as session:
        row = session.exec(select(StudioUser)).one()
        assert (row.name, row.role) == ("ada", "admin")
        assert PASSWORD not in (row.password_hash or "")
    home = app()
    home.session_state[auth.TOKEN_KEY] = at.session_state[auth.TOKEN_KEY]
    home.run()
    assert "Prompt Studio" in texts(home.title)
    assert any("Signed in as **ada**, an administrator" in c for c in texts(home.caption))


def _first_admin(password: str, again: str) -> AppTest:
    at = form_page().run()
    at.text_input(key="studio_first_name").set_value("ada")
    at.text_input(key="studio_first_password").set_value(password)
    at.text_input(key="studio_first_again").set_value(again)
    return at.button[0].click().run()


def test_first_admin_form_refuses_two_different_passwords(local: None) -> None:
    at = _first_admin(PASSWORD, PASSWORD + "!")
    assert "The two passwords are not the same. Type them again." in texts(at.error)
    with session_scope() as session:
        assert users.needs_first_admin(session=session)


def test_first_admin_form_says_the_password_is_too_short(local: None) -> None:
    at = _first_admin("short", "short")
    assert at.error and "password" in at.error[0].value.lower()
    assert not at.exception
    with session_scope() as session:
        assert users.needs_first_admin(session=session)


# -- signing in --------------------------------------------------------------------------


def _sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="studio_sign_in_name").set_value(name)
    at.text_input(key="studio_sign_in_password").set_value(password)
    return at.button[0].click().run()


def test_sign_in_form_refuses_a_wrong_password_then_signs_in(local: None) -> None:
    make_user("ada", "admin")
    assert texts(app().run().title) == ["Sign in to Prompt Studio"]
    at = _sign_in(form_page().run(), "ada", "not the password")
    assert "The name or password is not right." in texts(at.error)
    assert "Sign in to Prompt Studio" in texts(at.title)
    at = _sign_in(at, "ADA", PASSWORD)
    assert not at.exception
    assert texts(at.title) == ["Review"]
    assert PASSWORD not in all_text(at)
    with session_scope() as session:
        assert len(session.exec(select(UserSession)).all()) == 1


def test_five_wrong_passwords_lock_the_account_with_a_sentence(local: None) -> None:
    make_user("ada", "admin")
    at = form_page().run()
    for _ in range(users.ACCOUNT_FAILURES):
        at = _sign_in(at, "ada", "wrong password!")
    assert "Too many failed sign-ins. Try again in 5 minutes." in texts(at.error)
    at = _sign_in(at, "ada", PASSWORD)
    assert "Too many failed sign-ins. Try again in 5 minutes." in texts(at.error), (
        "even the right password waits for the lock to end"
    )
    assert "Sign in to Prompt Studio" in texts(at.title)


def test_an_unknown_or_expired_session_token_shows_the_sign_in_form(local: None) -> None:
    make_user("ada", "admin")
    at = app("home")
    at.session_state[auth.TOKEN_KEY] = "ss-" + "x" * 40
    at.run()
    assert "Sign in to Prompt Studio" in texts(at.title)
    assert not at.exception


def test_an_expired_sign_in_asks_to_sign_in_again(local: None) -> None:
    from datetime import timedelta

    from studio.store.tables import utcnow

    mia = make_user("mia")
    at = signed_in(app("review"), mia).run()
    assert texts(at.title) == ["Review"]
    with session_scope() as session:
        row = session.exec(select(UserSession)).one()
        row.expires_at = utcnow() - timedelta(minutes=1)
        session.add(row)
    at.run()
    assert "Sign in to Prompt Studio" in texts(at.title)


def test_sign_out_ends_the_session(local: None) -> None:
    ada = make_user("ada", "admin")
    assert signed_in(app(), ada).run().button(key="studio_sign_out").label == "Sign out"
    at = signed_in(app("account"), ada)
    token = at.session_state[auth.TOKEN_KEY]
    at.run()
    at.button(key="account_sign_out").click().run()
    assert "Sign in to Prompt Studio" in texts(at.title)
    with session_scope() as session:
        assert users.session_actor(session=session, token=token) is None
    assert any("Max-Age=0" in str(h.proto) for h in at.get("html")), "the cookie is deleted"
    at.run()
    assert "Sign in to Prompt Studio" in texts(at.title), "and stays signed out"


def test_a_disabled_account_is_signed_out_at_the_next_click(local: None) -> None:
    mia = make_user("mia")
    at = signed_in(app("review"), mia).run()
    assert "Review" in texts(at.title)
    with session_scope() as session:
        users.set_disabled(session=session, ref="mia")
    at.run()
    assert "Sign in to Prompt Studio" in texts(at.title)


# -- no sign-in ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "loopback"),
    [
        (None, False),
        ("", False),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.7", False),
        ("studio.example.com", False),
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
    ],
)
def test_only_loopback_addresses_count_as_this_machine(value: str | None, loopback: bool) -> None:
    assert auth.listens_on_loopback_only(value) is loopback


def test_no_sign_in_is_refused_on_a_network_address(address: Any) -> None:
    address("0.0.0.0")
    at = app().run()
    assert at.error, "a sentence says why"
    message = at.error[0].value
    assert "STUDIO_AUTH=none" in message and "--server.address 127.0.0.1" in message
    assert not at.page_link, "no page is reachable"
    at = app("users").run()
    assert at.error and "STUDIO_AUTH=none" in at.error[0].value
    assert not at.dataframe


def test_no_sign_in_on_loopback_is_the_local_administrator(address: Any) -> None:
    address("127.0.0.1")
    at = app().run()
    assert not at.error and not at.exception
    labels = texts(at.page_link)
    assert "People" in labels and "Audit log" in labels
    assert any("Sign-in is off (STUDIO_AUTH=none)" in c for c in texts(at.caption))


# -- roles: the navigation and refused pages ----------------------------------------------


def test_the_navigation_shows_only_what_the_role_may_open(local: None) -> None:
    ada, mia, rex = make_user("ada", "admin"), make_user("mia"), make_user("rex", "reviewer")
    admin_links = texts(signed_in(app(), ada).run().page_link)
    member_links = texts(signed_in(app(), mia).run().page_link)
    reviewer = signed_in(app(), rex).run()
    assert {"People", "Audit log", "Models", "Review", "Account"} <= set(admin_links)
    assert "People" not in member_links and "Audit log" not in member_links
    assert {"Apps", "Playground", "Models", "Review", "Account"} <= set(member_links)
    assert texts(reviewer.page_link) == ["Review", "Account"]
    assert "Review" in texts(reviewer.title), "a reviewer lands on Review"


def test_a_member_opening_the_people_page_gets_a_sentence(local: None) -> None:
    make_user("ada", "admin")
    mia = make_user("mia")
    for page in ("users", "audit"):
        at = signed_in(app(page), mia).run()
        assert not at.exception
        assert at.warning, page
        assert at.warning[0].value.startswith("This page is for administrators."), page
        assert "mia, a member" in at.warning[0].value
        assert not at.dataframe and not at.button, f"nothing of {page} is drawn"
        assert "ada" not in all_text(at)


def test_a_reviewer_sees_only_the_review_page(local: None) -> None:
    rex = make_user("rex", "reviewer")
    at = signed_in(app("review"), rex).run()
    assert any("Nothing to review yet" in i for i in texts(at.info))
    for page in ("home", "apps", "models", "deploy"):
        at = signed_in(app(page), rex).run()
        assert at.warning and "Your review queue is on the Review page." in at.warning[0].value
        assert not at.exception


def test_members_see_no_connections_or_templates_on_the_models_page(local: None) -> None:
    mia = make_user("mia")
    at = signed_in(app("models"), mia).run()
    tabs = [t.label for t in at.tabs]
    assert "Templates" not in tabs and "Connections" not in tabs and "Custom models" not in tabs
    assert "Model zoo" in tabs
    assert any("managed by the studio's administrators" in c for c in texts(at.caption))
    ada = make_user("ada", "admin")
    tabs = [t.label for t in signed_in(app("models"), ada).run().tabs]
    assert {"Connections", "Custom models", "Templates"} <= set(tabs)


# -- the cookie ------------------------------------------------------------------------------


def test_the_cookie_script_sets_path_samesite_and_max_age() -> None:
    script = auth.cookie_script("ss-abcdefghijklmnop", 12)
    assert "studio_session=ss-abcdefghijklmnop; Path=/; Max-Age=43200; SameSite=Strict" in script
    assert "Max-Age=0" in auth.cookie_script(None, 12)
    with pytest.raises(ValueError):
        auth.cookie_script("x'; alert(1); '", 12)


def test_signing_in_writes_the_cookie_once(local: None) -> None:
    make_user("ada", "admin")
    at = _sign_in(form_page().run(), "ada", PASSWORD)
    token = at.session_state[auth.TOKEN_KEY]
    scripts = [str(h.proto) for h in at.get("html")]
    assert any(f"studio_session={token}" in s for s in scripts), "the cookie is written"
    at.run()
    assert not [h for h in at.get("html") if token in str(h.proto)], "and only once"


# -- single sign-on ---------------------------------------------------------------------------

SSO_SECRETS = {
    "auth": {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "a long random string",
        "client_id": "studio",
        "client_secret": "xyz",
        "server_metadata_url": "https://idp.example.com/.well-known/openid-configuration",
    }
}


def test_single_sign_on_maps_an_email_to_an_existing_account(local: None) -> None:
    make_user("mia@example.com")
    with session_scope() as session:
        actor = auth.account_for_sso(session=session, email="MIA@example.com")
        assert actor is not None and (actor.name, actor.role) == ("mia@example.com", "member")
        assert auth.account_for_sso(session=session, email="eve@example.com") is None
        assert auth.account_for_sso(session=session, email="") is None
        users.set_disabled(session=session, ref="mia@example.com")
        assert auth.account_for_sso(session=session, email="mia@example.com") is None
        assert len(users.list_users(session=session)) == 1, "nobody is created"


def test_single_sign_on_in_the_page(local: None) -> None:
    make_user("ada", "admin")
    make_user("mia@example.com")
    at = app()
    at.secrets = SSO_SECRETS
    at.run()
    assert at.button(key="studio_sso_login").label == "Sign in with single sign-on"
    stranger = app()
    stranger.secrets = SSO_SECRETS
    stranger.user = {"is_logged_in": True, "email": "eve@example.com"}
    stranger.run()
    assert any("no active account with that name" in w for w in texts(stranger.warning))
    assert texts(stranger.title) == ["Sign in to Prompt Studio"]
    known = app()
    known.secrets = SSO_SECRETS
    known.user = {"is_logged_in": True, "email": "mia@example.com"}
    known.run()
    assert not known.exception
    assert "Prompt Studio" in texts(known.title)
    assert "People" not in texts(known.page_link)


def test_no_single_sign_on_button_without_auth_secrets(local: None) -> None:
    make_user("ada", "admin")
    at = app().run()
    assert not [b for b in at.button if b.key == "studio_sso_login"]


# -- widget callbacks ----------------------------------------------------------------------


def _callback_script() -> None:
    import streamlit as st

    from studio.core.identity import current_actor
    from studio.ui import db_ready

    def who() -> None:  # runs before the page body, like every on_click in the studio
        st.session_state.who = current_actor().describe()

    db_ready()
    st.button("Who am I", key="who_button", on_click=who)


def test_widget_callbacks_run_as_the_signed_in_person(local: None) -> None:
    mia = make_user("mia")
    at = AppTest.from_function(_callback_script, default_timeout=60)
    signed_in(at, mia).run()
    at.button(key="who_button").click().run()
    assert at.session_state["who"] == "mia (member)", "not the anonymous caller"


def test_widget_callbacks_of_nobody_stay_anonymous(local: None) -> None:
    make_user("ada", "admin")
    at = AppTest.from_function(_callback_script, default_timeout=60).run()
    assert "Sign in to Prompt Studio" in texts(at.title)
    assert "who" not in at.session_state
