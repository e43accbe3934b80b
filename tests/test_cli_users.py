"""`studio user`, `studio app member` and `studio audit` (issue 15). The CLI acts as the
local operator (an administrator); passwords are read from stdin or generated and printed
once, and never stored or logged in clear."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from studio.services.users import sign_in
from studio.store import session_scope
from studio.store.tables import AuditEvent, StudioUser

PASSWORD = "correct horse battery"


def _sign_in(name: str, password: str) -> str:
    with session_scope() as session:
        return sign_in(session=session, name=name, password=password).name


def test_create_with_a_generated_password_prints_it_once(cli: Any) -> None:
    made = cli("user", "create", "ada", "--role", "admin")
    assert made.code == 0, made.err
    password = made.out.splitlines()[1].strip()
    assert "not shown again" in made.out
    assert _sign_in("ada", password) == "ada"
    listed = cli("user", "list")
    assert "ada" in listed.out and password not in listed.out
    with session_scope() as session:
        stored = session.exec(select(StudioUser.password_hash)).one()
    assert stored.startswith("$argon2") and password not in stored


def test_create_with_the_password_on_stdin(cli: Any) -> None:
    made = cli("user", "create", "mia", "--password-stdin", "--json", stdin=PASSWORD + "\n")
    assert made.code == 0, made.err
    data = made.json()
    assert (data["name"], data["role"], data["disabled"]) == ("mia", "member", False)
    assert "password" not in data and PASSWORD not in made.out
    assert _sign_in("mia", PASSWORD) == "mia"


def test_too_short_a_password_is_one_line(cli: Any) -> None:
    made = cli("user", "create", "mia", "--password-stdin", stdin="short\n")
    assert made.code == 1
    assert len(made.err.strip().splitlines()) == 1 and "at least 10 characters" in made.err


def test_roles_disable_enable_and_reset(cli: Any) -> None:
    cli("user", "create", "ada", "--role", "admin", "--password-stdin", stdin=PASSWORD)
    cli("user", "create", "mia", "--password-stdin", stdin=PASSWORD)
    assert cli("user", "set-role", "mia", "reviewer").out.strip() == "mia is now reviewer."
    last = cli("user", "set-role", "ada", "member")
    assert last.code == 1 and "only administrator" in last.err
    assert cli("user", "disable", "mia").code == 0
    rows = {u["name"]: u for u in cli("user", "list", "--json").json()}
    assert (rows["mia"]["role"], rows["mia"]["disabled"]) == ("reviewer", True)
    assert cli("user", "enable", "mia").code == 0
    reset = cli("user", "reset-password", "mia", "--json")
    new_password = reset.json()["password"]
    assert new_password != PASSWORD and _sign_in("mia", new_password) == "mia"
    unknown = cli("user", "disable", "nobody")
    assert unknown.code == 1 and unknown.err.strip().startswith("error: No user 'nobody'.")


def test_app_members_change_what_a_member_may_use(cli: Any) -> None:
    cli("user", "create", "mia", "--password-stdin", stdin=PASSWORD)
    cli("user", "create", "rex", "--role", "reviewer", "--password-stdin", stdin=PASSWORD)
    assert cli("app", "create", "Marketing").code == 0
    assert cli("app", "member", "add", "Marketing", "mia").code == 0
    assert cli("app", "member", "list", "Marketing", "--json").json() == ["mia"]
    refused = cli("app", "member", "add", "Marketing", "rex")
    assert refused.code == 1 and "reviewer" in refused.err
    assert cli("app", "member", "remove", "Marketing", "mia").code == 0
    assert "no members yet" in cli("app", "member", "list", "Marketing").out


def test_audit_list_shows_the_operators_changes(cli: Any) -> None:
    cli("user", "create", "mia", "--password-stdin", stdin=PASSWORD)
    cli("user", "set-role", "mia", "reviewer")
    events = cli("audit", "list", "--kind", "user", "--json").json()
    assert [(e["action"], e["target_name"], e["actor"], e["origin"]) for e in events] == [
        ("set-role", "mia", "local operator", "cli"),
        ("create", "mia", "local operator", "cli"),
    ]
    only = cli("audit", "list", "--action", "create", "--limit", "1").out
    assert "mia" in only and "set-role" not in only
    with session_scope() as session:
        for row in session.exec(select(AuditEvent)).all():
            assert PASSWORD not in str(row.model_dump())
