"""Browser journey: accounts. The first visit creates the administrator, who invites a
member and a reviewer; each signs in with the temporary password read from the page and
sees only what their role may open; a reload keeps the sign-in (the session cookie);
sign out ends it; five wrong passwords lock the account with a sentence; no password
ever shows in the page's text.

The studio runs with STUDIO_AUTH=local on 127.0.0.1. Screenshots land in test-artifacts/.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.helpers import full_shot

ADMIN_PASSWORD = "ada's long passphrase"
WRONG = "not the password at all"


@pytest.fixture
def accounts_url(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[str]:
    monkeypatch.setenv("STUDIO_AUTH", "local")
    yield request.getfixturevalue("studio_url")


def _body(page: Any) -> str:
    return str(page.inner_text("body"))


def _heading(page: Any, name: str) -> None:
    page.get_by_role("heading", name=name, exact=True).wait_for(timeout=60_000)


def _sign_in(page: Any, name: str, password: str) -> None:
    _heading(page, "Sign in to Prompt Studio")
    page.get_by_role("textbox", name="Name").fill(name)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def _sign_out(page: Any) -> None:
    page.get_by_role("button", name="Sign out").click()
    _heading(page, "Sign in to Prompt Studio")


def _links(page: Any) -> list[str]:
    """The sidebar's page links, once the run that draws them has finished."""
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text("Signed in as").wait_for(timeout=30_000)
    links = sidebar.get_by_test_id("stPageLink")
    links.first.wait_for(timeout=30_000)
    page.wait_for_timeout(500)  # the run that signed in may still be replacing them
    return [str(t).strip().splitlines()[-1] for t in links.all_inner_texts()]  # icon first


def _invite(page: Any, name: str, role: str | None) -> str:
    form = page.get_by_test_id("stForm")
    form.get_by_role("textbox", name="Name").fill(name)
    if role:
        form.get_by_test_id("stSelectbox").click()
        page.get_by_role("option", name=role).click()
    form.get_by_role("button", name="Create the account").click()
    page.get_by_text(f"Created an account for {name}").wait_for(timeout=30_000)
    password = str(page.get_by_test_id("stCode").first.inner_text()).strip()
    assert len(password) >= 10, password
    return password


def test_accounts_journey(accounts_url: str, page: Any) -> None:
    page.goto(accounts_url)
    _heading(page, "Create the first administrator")
    full_shot(page, "accounts-first-admin")
    page.get_by_role("textbox", name="Your name").fill("ada")
    page.get_by_role("textbox", name="Password", exact=True).fill(ADMIN_PASSWORD)
    page.get_by_role("textbox", name="Password again").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Create the administrator").click()
    _heading(page, "Prompt Studio")
    assert ADMIN_PASSWORD not in _body(page)
    assert "Signed in as ada, an administrator." in _body(page)
    assert {"People", "Audit log", "Models", "Review", "Account"} <= set(_links(page))

    # The administrator invites a member and a reviewer; the passwords show once.
    page.get_by_role("link", name="People", exact=True).click()
    _heading(page, "People")
    mia_password = _invite(page, "mia", None)
    rex_password = _invite(page, "rex", "reviewer: sees only the outputs sent to them for review")
    full_shot(page, "accounts-people")
    page.get_by_role("link", name="Audit log", exact=True).click()
    _heading(page, "Audit log")
    page.get_by_text("Passwords, keys and tokens are never written here").wait_for()
    body = _body(page)
    assert mia_password not in body and rex_password not in body
    full_shot(page, "accounts-audit")

    # A reload keeps the administrator signed in (the cookie), on the same page.
    page.reload()
    _heading(page, "Audit log")
    assert "Sign in to Prompt Studio" not in _body(page)

    _sign_out(page)
    full_shot(page, "accounts-sign-in")
    page.reload()
    _heading(page, "Sign in to Prompt Studio")  # signed out stays signed out after a reload

    # The member: no admin pages, neither in the navigation nor by URL. (Signing in keeps
    # the address: from the Audit log's address it would open the Audit log.)
    page.goto(accounts_url)
    _sign_in(page, "mia", mia_password)
    _heading(page, "Prompt Studio")
    assert mia_password not in _body(page)
    links = _links(page)
    assert "People" not in links and "Audit log" not in links and "Apps" in links
    for path in ("users", "audit"):
        page.goto(f"{accounts_url}/{path}")
        page.get_by_text("This page is for administrators.").wait_for(timeout=60_000)
        assert "Invite someone" not in _body(page) and "ada" not in _body(page)
    _sign_out(page)

    # The reviewer sees only Review (and Account), and lands on it.
    page.goto(accounts_url)
    _sign_in(page, "rex", rex_password)
    _heading(page, "Review")
    assert _links(page) == ["Review", "Account"]
    page.goto(f"{accounts_url}/models")
    page.get_by_text("Your review queue is on the Review page.").wait_for(timeout=60_000)
    _sign_out(page)

    # Five wrong passwords lock the name, with a sentence that says when to retry.
    for _ in range(5):
        _sign_in(page, "mia", WRONG)
        page.get_by_role("alert").first.wait_for()
        page.wait_for_timeout(300)
    page.get_by_text("Too many failed sign-ins. Try again in 5 minutes.").wait_for()
    _sign_in(page, "mia", mia_password)
    page.get_by_text("Too many failed sign-ins. Try again in 5 minutes.").wait_for()
    assert WRONG not in _body(page) and mia_password not in _body(page)
    full_shot(page, "accounts-locked")
