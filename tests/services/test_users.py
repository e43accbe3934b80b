"""Studio accounts (issue 15): argon2 passwords that never sit in the database in clear,
sign-in throttling per name and per address that reads the same whether or not the
account exists, lockouts that expire, disabled accounts, the last administrator, and
browser sessions that expire. Time moves with a patched clock, never with sleeps.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlmodel import Session, SQLModel

from studio.core.errors import ConflictError
from studio.core.settings import get_settings
from studio.services import users
from studio.services.users import (
    ACCOUNT_FAILURES,
    ADDRESS_FAILURES,
    SignInRefused,
    create_user,
    reset_password,
    session_actor,
    set_disabled,
    set_role,
    sign_in,
    start_session,
)
from studio.store.tables import StudioUser, utcnow

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a much newer passphrase"
WRONG = "not the password at all"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[timedelta], None]:
    """Move the accounts' clock forward by a timedelta."""
    shift = [timedelta(0)]
    monkeypatch.setattr(users, "utcnow", lambda: utcnow() + shift[0])

    def move(by: timedelta) -> None:
        shift[0] += by

    return move


def _refusal(session: Session, name: str, password: str, address: str = "10.0.0.1") -> str:
    with pytest.raises(SignInRefused) as refused:
        sign_in(session=session, name=name, password=password, address=address)
    return str(refused.value)


def test_no_password_is_stored_in_clear_anywhere(session: Session) -> None:
    create_user(session=session, name="ada", password=PASSWORD, role="admin")
    create_user(session=session, name="mia", password=PASSWORD, role="member")
    sign_in(session=session, name="mia", password=PASSWORD, address="10.0.0.1")
    _refusal(session, "mia", WRONG)  # a failed attempt must not keep what was typed
    reset_password(session=session, ref="mia", password=NEW_PASSWORD)
    assert sign_in(session=session, name="mia", password=NEW_PASSWORD).name == "mia"
    session.commit()
    stored = session.exec(select(StudioUser.password_hash)).all()  # type: ignore[call-overload]
    assert len(stored) == 2 and all(h.startswith("$argon2") for (h,) in stored)
    for table in SQLModel.metadata.sorted_tables:
        for row in session.execute(select(table)).all():
            text = " ".join(str(value) for value in row)
            for secret in (PASSWORD, NEW_PASSWORD, WRONG):
                assert secret not in text, f"a password in clear in {table.name}"


def test_wrong_name_and_wrong_password_read_the_same(session: Session) -> None:
    create_user(session=session, name="mia", password=PASSWORD)
    assert _refusal(session, "mia", WRONG) == _refusal(session, "nobody-here", WRONG)
    assert _refusal(session, "mia", WRONG).startswith("The name or password is not right.")


def test_five_failures_lock_a_name_whether_or_not_it_exists(session: Session) -> None:
    create_user(session=session, name="mia", password=PASSWORD)
    for name in ("mia", "ghost"):
        messages = [_refusal(session, name, WRONG, f"10.0.1.{i}") for i in range(ACCOUNT_FAILURES)]
        assert messages[-1].startswith("Too many failed sign-ins. Try again in 5 minutes.")
    # locked: even the right password is refused, from any address, with the same sentence
    locked = _refusal(session, "mia", PASSWORD, "10.0.9.9")
    assert locked == _refusal(session, "ghost", PASSWORD, "10.0.9.9")
    assert locked.startswith("Too many failed sign-ins.")


def test_a_lockout_expires(session: Session, clock: Callable[[timedelta], None]) -> None:
    create_user(session=session, name="mia", password=PASSWORD)
    for _ in range(ACCOUNT_FAILURES):
        _refusal(session, "mia", WRONG)
    clock(timedelta(minutes=4))
    assert _refusal(session, "mia", PASSWORD).startswith("Too many failed sign-ins.")
    clock(timedelta(minutes=2))
    assert sign_in(session=session, name="mia", password=PASSWORD, address="10.0.0.1").name == "mia"


def test_many_failures_from_one_address_lock_that_address(session: Session) -> None:
    create_user(session=session, name="mia", password=PASSWORD)
    for i in range(ADDRESS_FAILURES):  # a different name each time: no name is locked
        _refusal(session, f"guess-{i}", WRONG, "192.0.2.7")
    assert _refusal(session, "mia", PASSWORD, "192.0.2.7").startswith("Too many failed sign-ins.")
    assert (
        sign_in(session=session, name="mia", password=PASSWORD, address="192.0.2.8").name == "mia"
    )


def test_a_disabled_account_cannot_sign_in_and_its_sessions_end(session: Session) -> None:
    mia = create_user(session=session, name="mia", password=PASSWORD)
    token = start_session(session=session, user_id=mia.id, address="10.0.0.1")
    assert session_actor(session=session, token=token) is not None
    set_disabled(session=session, ref="mia")
    assert session_actor(session=session, token=token) is None
    assert _refusal(session, "mia", PASSWORD).startswith("The name or password is not right.")
    set_disabled(session=session, ref="mia", disabled=False)
    assert sign_in(session=session, name="mia", password=PASSWORD).name == "mia"
    assert session_actor(session=session, token=token) is None  # ended, not just paused


def test_the_last_administrator_stays_one(session: Session) -> None:
    create_user(session=session, name="ada", password=PASSWORD, role="admin")
    with pytest.raises(ConflictError, match="only administrator"):
        set_role(session=session, ref="ada", role="member")
    with pytest.raises(ConflictError, match="only administrator"):
        set_disabled(session=session, ref="ada")
    create_user(session=session, name="bo", password=PASSWORD, role="admin")
    assert set_role(session=session, ref="ada", role="member").role == "member"


def test_a_browser_session_expires(session: Session, clock: Callable[[timedelta], None]) -> None:
    mia = create_user(session=session, name="mia", password=PASSWORD)
    token = start_session(session=session, user_id=mia.id)
    actor = session_actor(session=session, token=token)
    assert actor is not None and (actor.name, actor.role) == ("mia", "member")
    hours = get_settings().session_hours
    clock(timedelta(hours=hours) - timedelta(minutes=1))
    assert session_actor(session=session, token=token) is not None
    clock(timedelta(minutes=2))
    assert session_actor(session=session, token=token) is None
    assert session_actor(session=session, token="ss-made-up") is None


def test_no_password_reaches_the_log(session: Session, caplog: pytest.LogCaptureFixture) -> None:
    """Creating, signing in (wrong, then right), resetting: the log never holds a password,
    at any level, nor the session token."""
    import logging

    secret, new_secret = "tangerine-ladder-1977", "periwinkle-anchor-2024"
    with caplog.at_level(logging.DEBUG):
        users.create_user(session=session, name="lea", password=secret, role="member")
        session.commit()
        with pytest.raises(Exception, match="name or password"):
            users.sign_in(session=session, name="lea", password=secret + "x", address="10.0.0.9")
        signed = users.sign_in(session=session, name="lea", password=secret, address="10.0.0.9")
        token = users.start_session(session=session, user_id=signed.id, address="10.0.0.9")
        users.reset_password(session=session, ref="lea", password=new_secret)
        session.commit()
    logged = caplog.text + " ".join(str(r.args) for r in caplog.records)
    assert secret not in logged and new_secret not in logged and token not in logged
