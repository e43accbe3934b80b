"""Studio accounts: people, their roles, signing in, browser sessions.

* Passwords are hashed with argon2 (``argon2-cffi``); the database never holds one in
  clear. A browser session is a random token: the cookie holds it, the table its
  SHA-256 hash, and it expires after ``STUDIO_SESSION_HOURS``.
* :func:`sign_in` throttles failures per account name and per address: after
  :data:`ACCOUNT_FAILURES` wrong passwords for one name (whether or not such an account
  exists) that name is locked for :data:`ACCOUNT_LOCK`; after :data:`ADDRESS_FAILURES`
  from one address, the address is. Every refusal reads the same, so the messages never
  tell whether an account exists.
* Managing accounts needs an administrator (:func:`studio.core.identity.require_admin`),
  except :func:`create_first_admin`, which works only while there is no account at all.
  Every change is in the audit log.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel
from sqlmodel import Session, col, func, select

from studio.core.errors import ConflictError, FieldProblem, NotFoundError, PermissionDeniedError
from studio.core.errors import RequestValidationError as ValidationProblem
from studio.core.identity import ROLES, Actor, Role, current_actor, require_admin
from studio.core.ids import row_id
from studio.core.settings import get_settings
from studio.store import audit
from studio.store.tables import (
    ApiKey,
    AppMember,
    SignInThrottle,
    StudioUser,
    UserSession,
    utcnow,
)

__all__ = [
    "ACCOUNT_FAILURES",
    "ACCOUNT_LOCK",
    "ADDRESS_FAILURES",
    "ADDRESS_LOCK",
    "MIN_PASSWORD_CHARS",
    "SignInRefused",
    "UserPublic",
    "actor_for_user",
    "create_first_admin",
    "create_user",
    "end_session",
    "get_user",
    "list_users",
    "needs_first_admin",
    "reset_password",
    "session_actor",
    "set_disabled",
    "set_role",
    "sign_in",
    "start_session",
]

MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 1024
ACCOUNT_FAILURES = 5
ACCOUNT_LOCK = timedelta(minutes=5)
ADDRESS_FAILURES = 20
ADDRESS_LOCK = timedelta(minutes=15)
FAILURE_WINDOW = timedelta(minutes=15)
NAME_CHARS = 100

_hasher = PasswordHasher()
# Verified against when the name matches no account, so a wrong name costs as long as a
# wrong password and the timing does not tell whether an account exists.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class SignInRefused(PermissionDeniedError):
    """A sign-in that did not succeed; ``retry_after_s`` is set when locked out."""

    def __init__(self, message: str, *, hint: str | None = None, retry_after_s: int = 0):
        super().__init__(message, hint=hint)
        self.retry_after_s = retry_after_s


class UserPublic(BaseModel):
    """What may be shown about an account: never its password hash."""

    id: int
    name: str
    role: Role
    disabled: bool
    created_at: datetime
    last_sign_in_at: datetime | None
    apps: list[int] = []


def _public(row: StudioUser, apps: list[int] | None = None) -> UserPublic:
    assert row.id is not None
    return UserPublic(
        id=row.id,
        name=row.name,
        role=cast(Role, row.role),
        disabled=row.disabled,
        created_at=row.created_at,
        last_sign_in_at=row.last_sign_in_at,
        apps=apps or [],
    )


def _clean_name(name: str) -> str:
    cleaned = (name or "").strip()
    if not cleaned or len(cleaned) > NAME_CHARS or any(ord(c) < 32 for c in cleaned):
        raise ValidationProblem(
            [FieldProblem("name", f"1 to {NAME_CHARS} printable characters")], what="account"
        )
    return cleaned


def _check_role(role: str) -> Role:
    if role not in ROLES:
        raise ValidationProblem(
            [FieldProblem("role", f"one of {', '.join(ROLES)}")], what="account"
        )
    return cast(Role, role)


def _hash_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_CHARS:
        raise ValidationProblem(
            [FieldProblem("password", f"at least {MIN_PASSWORD_CHARS} characters")], what="account"
        )
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValidationProblem(
            [FieldProblem("password", f"at most {MAX_PASSWORD_CHARS} characters")], what="account"
        )
    return _hasher.hash(password)


def _by_name(session: Session, name: str) -> StudioUser | None:
    stmt = select(StudioUser).where(func.lower(StudioUser.name) == name.strip().lower())
    return session.exec(stmt).first()


def get_user(*, session: Session, ref: int | str) -> UserPublic:
    """An account by id or name (administrators, or the user themself)."""
    row = _find(session, ref)
    actor = current_actor()
    if not (actor.is_admin or (actor.kind == "user" and actor.user_id == row.id)):
        require_admin("read other people's accounts")
    return _public(row, _apps_of(session, row.id))


def _find(session: Session, ref: int | str) -> StudioUser:
    row: StudioUser | None = None
    number = row_id(ref)
    if number is not None:
        row = session.get(StudioUser, number)
    if row is None and isinstance(ref, str):
        row = _by_name(session, ref)
    if row is None:
        raise NotFoundError(f"No user {ref!r}.", hint="List the users with `studio user list`.")
    return row


def _apps_of(session: Session, user_id: int | None) -> list[int]:
    stmt = select(AppMember.app_id).where(AppMember.user_id == user_id)
    return sorted(int(a) for a in session.exec(stmt).all())


def needs_first_admin(*, session: Session) -> bool:
    """True while the studio has no account at all (the first visit's form)."""
    return session.exec(select(func.count()).select_from(StudioUser)).one() == 0


def create_first_admin(*, session: Session, name: str, password: str) -> UserPublic:
    """The first administrator, from the first visit's form; refused once any account
    exists (a second visitor cannot make themself an administrator)."""
    if not needs_first_admin(session=session):
        raise PermissionDeniedError(
            "This studio already has an administrator.",
            hint="Sign in, or ask an administrator for an account.",
        )
    row = StudioUser(
        name=_clean_name(name),
        role="admin",
        password_hash=_hash_password(password),
        last_sign_in_at=utcnow(),  # the form signs them in
    )
    session.add(row)
    session.flush()
    actor = Actor(kind="user", name=row.name, role="admin", user_id=row.id, origin="ui")
    audit.record(
        session,
        action="create",
        target_kind="user",
        target_id=row.id,
        target_name=row.name,
        details={"role": "admin", "first_admin": True},
        actor=actor,
    )
    session.commit()
    session.refresh(row)
    return _public(row)


def create_user(*, session: Session, name: str, password: str, role: str = "member") -> UserPublic:
    """A new account (administrators only)."""
    require_admin("create accounts")
    cleaned = _clean_name(name)
    checked = _check_role(role)
    if _by_name(session, cleaned) is not None:
        raise ConflictError(f"A user named {cleaned!r} already exists.", hint="Pick another name.")
    row = StudioUser(name=cleaned, role=checked, password_hash=_hash_password(password))
    session.add(row)
    session.flush()
    return _saved(session, row, "create", details={"role": checked})


def _saved(
    session: Session, row: StudioUser, action: str, details: dict[str, object] | None = None
) -> UserPublic:
    """Record the change to ``row`` in the audit log, commit both, and return the account."""
    audit.record(
        session, action=action, target_kind="user", target_id=row.id, target_name=row.name,
        details=details,
    )  # fmt: skip
    session.commit()
    session.refresh(row)
    return _public(row, _apps_of(session, row.id))


def list_users(*, session: Session) -> list[UserPublic]:
    """Every account, by name (administrators only)."""
    require_admin("list accounts")
    rows = session.exec(select(StudioUser).order_by(col(StudioUser.name))).all()
    members: dict[int, list[int]] = {}
    for app_id, user_id in session.exec(select(AppMember.app_id, AppMember.user_id)).all():
        members.setdefault(int(user_id), []).append(int(app_id))
    return [_public(r, sorted(members.get(int(r.id or 0), []))) for r in rows]


def _other_admins(session: Session, user_id: int | None) -> int:
    stmt = (
        select(func.count())
        .select_from(StudioUser)
        .where(StudioUser.role == "admin", col(StudioUser.disabled).is_(False))
        .where(StudioUser.id != user_id)
    )
    return int(session.exec(stmt).one())


def set_role(*, session: Session, ref: int | str, role: str) -> UserPublic:
    """Change an account's role (administrators only; the last administrator stays one)."""
    require_admin("change roles")
    row = _find(session, ref)
    checked = _check_role(role)
    if row.role == "admin" and checked != "admin" and _other_admins(session, row.id) == 0:
        raise ConflictError(
            f"{row.name} is the only administrator; the studio needs one.",
            hint="Make someone else an administrator first.",
        )
    before, row.role, row.updated_at = row.role, checked, utcnow()
    session.add(row)
    return _saved(session, row, "set-role", details={"from": before, "to": checked})


def _end_all(session: Session, user_id: int | None, *, tokens: bool) -> None:
    for s in session.exec(select(UserSession).where(UserSession.user_id == user_id)).all():
        session.delete(s)
    if tokens:
        now = utcnow()
        stmt = select(ApiKey).where(ApiKey.user_id == user_id, col(ApiKey.revoked_at).is_(None))
        for key in session.exec(stmt).all():
            key.revoked_at = now
            session.add(key)


def set_disabled(*, session: Session, ref: int | str, disabled: bool = True) -> UserPublic:
    """Disable (or enable again) an account. Disabling signs the person out everywhere
    and revokes their personal tokens."""
    require_admin("disable accounts")
    row = _find(session, ref)
    if disabled and row.role == "admin" and _other_admins(session, row.id) == 0:
        raise ConflictError(
            f"{row.name} is the only administrator; the studio needs one.",
            hint="Make someone else an administrator first.",
        )
    row.disabled, row.updated_at = disabled, utcnow()
    session.add(row)
    if disabled:
        _end_all(session, row.id, tokens=True)
    return _saved(session, row, "disable" if disabled else "enable")


def reset_password(*, session: Session, ref: int | str, password: str) -> UserPublic:
    """Set a new password (an administrator for anyone, a person for themself); signs the
    account out of every browser and clears its lockout."""
    row = _find(session, ref)
    actor = current_actor()
    if not (actor.kind == "user" and actor.user_id == row.id):
        require_admin("reset other people's passwords")
    row.password_hash, row.updated_at = _hash_password(password), utcnow()
    session.add(row)
    _end_all(session, row.id, tokens=False)
    throttle = session.get(SignInThrottle, f"account:{row.name.lower()}")
    if throttle is not None:
        session.delete(throttle)
    return _saved(session, row, "reset-password")


# -- signing in -------------------------------------------------------------------


def _locked(session: Session, subject: str, now: datetime) -> int:
    row = session.get(SignInThrottle, subject)
    if row is None or row.locked_until is None or row.locked_until <= now:
        return 0
    return max(1, int((row.locked_until - now).total_seconds() + 0.999))


def _fail(session: Session, subject: str, now: datetime, limit: int, lock: timedelta) -> None:
    row = session.get(SignInThrottle, subject)
    if (
        row is None
        or now - row.first_failure_at > FAILURE_WINDOW
        or (row.locked_until is not None and row.locked_until <= now)
    ):
        row = row or SignInThrottle(subject=subject)
        row.failures, row.first_failure_at, row.locked_until = 0, now, None
    row.failures += 1
    if row.failures >= limit:
        row.locked_until = now + lock
    session.add(row)


def _wait_sentence(seconds: int) -> str:
    minutes = (seconds + 59) // 60
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def sign_in(*, session: Session, name: str, password: str, address: str = "") -> UserPublic:
    """The account if ``password`` is right and nothing is locked; otherwise
    :class:`SignInRefused` with one sentence that is the same whether or not the account
    exists. Failures count per name and per address."""
    now = utcnow()
    name_key = f"account:{(name or '').strip().lower()[:150]}"
    address_key = f"address:{(address or 'unknown')[:150]}"
    wait = max(_locked(session, name_key, now), _locked(session, address_key, now))
    if wait:
        raise SignInRefused(
            f"Too many failed sign-ins. Try again in {_wait_sentence(wait)}.",
            hint="An administrator can reset the password if it is forgotten.",
            retry_after_s=wait,
        )
    row = _by_name(session, name or "") if (name or "").strip() else None
    ok = False
    try:
        ok = _hasher.verify(
            row.password_hash if row and row.password_hash else _DUMMY_HASH, password or ""
        )
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or row is None or row.disabled:
        _fail(session, name_key, now, ACCOUNT_FAILURES, ACCOUNT_LOCK)
        _fail(session, address_key, now, ADDRESS_FAILURES, ADDRESS_LOCK)
        session.commit()
        wait = max(_locked(session, name_key, now), _locked(session, address_key, now))
        if wait:
            raise SignInRefused(
                f"Too many failed sign-ins. Try again in {_wait_sentence(wait)}.",
                hint="An administrator can reset the password if it is forgotten.",
                retry_after_s=wait,
            )
        raise SignInRefused(
            "The name or password is not right.",
            hint="Check both and try again; names are not case-sensitive.",
        )
    if row.password_hash and _hasher.check_needs_rehash(row.password_hash):
        row.password_hash = _hasher.hash(password)
    row.last_sign_in_at = now
    session.add(row)
    throttle = session.get(SignInThrottle, name_key)
    if throttle is not None:
        session.delete(throttle)
    session.commit()
    session.refresh(row)
    return _public(row, _apps_of(session, row.id))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(*, session: Session, user_id: int, address: str = "") -> str:
    """A new browser session for ``user_id``; returns the token for the cookie (its hash
    is what the database keeps)."""
    token = "ss-" + secrets.token_urlsafe(32)
    hours = get_settings().session_hours
    session.add(
        UserSession(
            user_id=user_id,
            token_hash=_token_hash(token),
            expires_at=utcnow() + timedelta(hours=hours),
            address=(address or "")[:100],
        )
    )
    session.commit()
    return token


def actor_for_user(row: StudioUser | UserPublic, origin: str = "ui") -> Actor:
    return Actor(
        kind="user", name=row.name, role=cast(Role, row.role), user_id=row.id, origin=origin
    )


def session_actor(*, session: Session, token: str | None, origin: str = "ui") -> Actor | None:
    """The signed-in person behind a session cookie, or ``None`` (no cookie, unknown,
    expired, or the account is disabled)."""
    if not token or len(token) > 200:
        return None
    row = session.exec(
        select(UserSession).where(UserSession.token_hash == _token_hash(token))
    ).first()
    if row is None:
        return None
    if row.expires_at <= utcnow():
        session.delete(row)
        session.commit()
        return None
    user = session.get(StudioUser, row.user_id)
    if user is None or user.disabled:
        return None
    return actor_for_user(user, origin)


def end_session(*, session: Session, token: str | None) -> None:
    """Sign out: forget the session behind ``token`` (nothing happens for an unknown one)."""
    if not token:
        return
    row = session.exec(
        select(UserSession).where(UserSession.token_hash == _token_hash(token))
    ).first()
    if row is not None:
        session.delete(row)
        session.commit()
