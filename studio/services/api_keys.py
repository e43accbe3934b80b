"""API keys and personal access tokens for the gateway: shown once, stored hashed,
revocable.

There are three kinds (:mod:`studio.services.access` holds what each may do):

* an *app key* belongs to one app and carries scopes: ``invoke`` (call the app's
  endpoints; the default), ``models`` (call raw models), ``manage`` (create, change and
  delete models, deployments and templates; only an administrator may make one);
* an *administrative key* (``studio key create --admin``) belongs to no app and has
  every scope on every app;
* a *personal access token* (``sk-studio-pat-...``, made by
  :mod:`studio.services.api_tokens`) belongs to a person and acts with that person's
  current role (a role change is seen within :data:`KEY_CACHE_TTL_S`; disabling the
  account revokes its tokens).

Creating and revoking record an audit event (id, name, prefix, app, scopes; never the
secret).

* :func:`create_key` returns the plaintext key exactly once; the database keeps
  its SHA-256 hash and a short prefix for display.
* :func:`verify_key` / :func:`averify_key` are on the gateway's hot path. They look
  the hash up and cache the answer (a :class:`~studio.services.ttl_cache.TTLCache`:
  one database read per key at a time, refreshed ahead while the key is busy),
  never serving an answer read more than :data:`KEY_CACHE_TTL_S` seconds ago, so
  a revoked key stops working within that time in every process that shares the
  database (at once in the process that revoked it).
* ``last_used_at`` is written off the request path: :func:`note_used` remembers
  the time in memory and :func:`due_last_used` hands the request log's
  background writer the keys whose stored time is more than a minute old.
* :func:`check_rate_limit` / :func:`acheck_rate_limit` enforce a key's optional
  requests-per-minute limit; :mod:`studio.services.rate_limits` counts it, across
  every gateway worker when the database is PostgreSQL.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from pydantic import BaseModel
from sqlmodel import Session, col, select, update

from studio.core.errors import (
    FieldProblem,
    InvalidApiKeyError,
    NotFoundError,
    RateLimitedError,
    RequestValidationError,
    RevokedApiKeyError,
)
from studio.core.identity import (
    ROLES,
    SCOPES,
    Actor,
    Role,
    current_actor,
    parse_scopes,
    require_admin,
)
from studio.core.secrets import hash_api_key, new_api_key
from studio.services import rate_limits
from studio.services.apps import get_app
from studio.services.members import require_app_access, require_member_role
from studio.services.ttl_cache import TTLCache
from studio.store import audit, session_scope
from studio.store.tables import ApiKey, App, AppMember, StudioUser, utcnow

__all__ = [
    "KEY_CACHE_TTL_S",
    "ApiKeyPublic",
    "CreatedKey",
    "InvalidApiKeyError",
    "KeyIdentity",
    "RateLimitedError",
    "RevokedApiKeyError",
    "acheck_rate_limit",
    "averify_key",
    "check_rate_limit",
    "clear_key_cache",
    "create_key",
    "due_last_used",
    "forget_last_used",
    "list_keys",
    "note_used",
    "revoke_key",
    "verify_cached_key",
    "verify_key",
    "write_last_used",
]

KEY_CACHE_TTL_S = 1.0
LAST_USED_EVERY_S = 60.0
PREFIX_CHARS = 14  # "sk-studio-" + 4 characters of the secret part
TOKEN_START = "sk-studio-pat-"  # what tells a personal access token from an app key
TOKEN_PREFIX_CHARS = 16  # TOKEN_START + 2 characters of the secret part


class ApiKeyPublic(BaseModel):
    """What may be shown about a key or token: never the secret itself."""

    id: int
    app_id: int | None
    app_name: str | None
    name: str
    prefix: str
    is_admin: bool = False
    scopes: list[str] = []
    user_id: int | None = None
    user_name: str | None = None
    rate_limit_per_minute: int | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def is_token(self) -> bool:
        return self.user_id is not None


class CreatedKey(BaseModel):
    """A new key: ``secret`` is the plaintext, shown to the user once and never again."""

    key: ApiKeyPublic
    secret: str


@dataclass(frozen=True)
class KeyIdentity:
    """Who is calling (the gateway's ApiKeyDep): the verified key's id, app, scopes and
    limit; for a personal token its person's id, name, role and apps as read with the key
    (at most :data:`KEY_CACHE_TTL_S` ago), so no check needs the database per request."""

    id: int
    app_id: int | None
    name: str
    rate_limit_per_minute: int | None
    is_admin: bool = False
    scopes: frozenset[str] = frozenset({"invoke"})
    user_id: int | None = None
    user_name: str | None = None
    role: Role | None = None
    member_apps: frozenset[int] = frozenset()

    @property
    def is_token(self) -> bool:
        return self.user_id is not None

    def actor(self, origin: str = "gateway") -> Actor:
        """The caller as the service layer's checks see it: a token is its person (kind
        ``user``, their role); a key is kind ``key`` (an administrative key has the admin
        role and every scope, an app key its app and scopes)."""
        if self.user_id is not None:
            return Actor(
                kind="user",
                name=self.user_name or f"user {self.user_id}",
                role=self.role,
                user_id=self.user_id,
                key_id=self.id,
                origin=origin,
            )
        return Actor(
            kind="key",
            name=f"API key {self.id} ({self.name})",
            role="admin" if self.is_admin else None,
            key_id=self.id,
            app_id=self.app_id,
            scopes=frozenset(SCOPES) if self.is_admin else self.scopes,
            origin=origin,
        )


def _scope_list(row: ApiKey) -> list[str]:
    if row.user_id is not None:
        return []  # a token acts with its person's role, not with scopes
    if row.is_admin:
        return list(SCOPES)
    chosen = parse_scopes(row.scopes)
    return [s for s in SCOPES if s in chosen]


def _public(row: ApiKey, app_name: str | None, user_name: str | None = None) -> ApiKeyPublic:
    assert row.id is not None
    return ApiKeyPublic(
        id=row.id,
        app_id=row.app_id,
        app_name=app_name,
        name=row.name,
        prefix=row.prefix,
        is_admin=row.is_admin,
        scopes=_scope_list(row),
        user_id=row.user_id,
        user_name=user_name,
        rate_limit_per_minute=row.rate_limit_per_minute,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def _checked(name: str, rate_limit_per_minute: int | None) -> str:
    cleaned = (name or "").strip()
    problems = []
    if not cleaned or len(cleaned) > 200:
        problems.append(FieldProblem("name", "must be 1 to 200 characters"))
    if rate_limit_per_minute is not None and not 1 <= rate_limit_per_minute <= 1_000_000:
        problems.append(FieldProblem("rate_limit_per_minute", "must be between 1 and 1000000"))
    if problems:
        raise RequestValidationError(problems, what="API key")
    return cleaned


def _scopes(value: str | list[str] | tuple[str, ...] | None) -> frozenset[str]:
    try:
        return parse_scopes(value)
    except ValueError as exc:
        raise RequestValidationError([FieldProblem("scopes", str(exc))], what="API key") from exc


def _audit(session: Session, action: str, row: ApiKey, app_name: str | None) -> None:
    public = _public(row, app_name)
    audit.record(
        session,
        action=action,
        target_kind="token" if row.user_id is not None else "key",
        target_id=row.id,
        target_name=row.name,
        details={
            "key_id": row.id,
            "prefix": row.prefix,
            "app": app_name,
            "scopes": ",".join(public.scopes),
            "administrative": row.is_admin,
            "user_id": row.user_id,
            "rate_limit_per_minute": row.rate_limit_per_minute,
        },
    )


def create_key(
    *,
    session: Session,
    app: int | str | None = None,
    name: str = "default",
    rate_limit_per_minute: int | None = None,
    admin: bool = False,
    scopes: str | list[str] | tuple[str, ...] | None = None,
) -> CreatedKey:
    """Create a key for ``app`` (name or id) with ``scopes`` (default ``invoke``), or an
    administrative key (``admin=True``, no app, every scope); the plaintext is in the
    result only.

    Administrators may create any key; a member only keys of their own apps, without
    ``manage``; reviewers none."""
    if admin == (app is not None):
        raise RequestValidationError(
            [
                FieldProblem(
                    "app",
                    "give an app for an app key, or no app for an administrative key (--admin)",
                )
            ],
            what="API key",
        )
    chosen = frozenset(SCOPES) if admin else _scopes(scopes)
    if admin:
        require_admin("create administrative API keys")
    else:
        require_member_role("create API keys")
    found = get_app(session=session, ref=app) if app is not None else None
    if found is not None:
        require_app_access(session=session, app_id=found.id)
    if "manage" in chosen:
        require_admin("create API keys with the manage scope")
    cleaned = _checked(name, rate_limit_per_minute)
    secret = new_api_key()
    row = ApiKey(
        app_id=found.id if found else None,
        name=cleaned,
        prefix=secret[:PREFIX_CHARS],
        key_hash=hash_api_key(secret),
        rate_limit_per_minute=rate_limit_per_minute,
        is_admin=admin,
        scopes=",".join(s for s in SCOPES if s in chosen),
    )
    session.add(row)
    session.flush()
    app_name = found.name if found else None
    _audit(session, "create", row, app_name)
    return CreatedKey(key=_public(row, app_name), secret=secret)


def list_keys(
    *, session: Session, app: int | str | None = None, include_revoked: bool = True
) -> list[ApiKeyPublic]:
    """App and administrative keys (not personal tokens), newest first, of one app when
    ``app`` is given. A member sees the keys of their apps; an administrator every key."""
    require_member_role("see API keys")
    stmt = select(ApiKey, App.name).join(App, col(App.id) == col(ApiKey.app_id), isouter=True)
    stmt = stmt.where(col(ApiKey.user_id).is_(None))
    if app is not None:
        found = get_app(session=session, ref=app)
        require_app_access(session=session, app_id=found.id)
        stmt = stmt.where(ApiKey.app_id == found.id)
    elif not current_actor().is_admin:
        from studio.services.members import visible_app_ids

        visible = visible_app_ids(session=session) or set()
        stmt = stmt.where(col(ApiKey.app_id).in_(sorted(visible)))
    if not include_revoked:
        stmt = stmt.where(col(ApiKey.revoked_at).is_(None))
    rows = session.exec(stmt.order_by(col(ApiKey.id).desc())).all()
    return [_public(row, app_name) for row, app_name in rows]


def revoke_key(*, session: Session, key_id: int, token: bool | None = None) -> ApiKeyPublic:
    """Revoke a key or token (only a token with ``token=True``, only a key with ``False``);
    the gateway refuses it within :data:`KEY_CACHE_TTL_S` seconds. Administrators may
    revoke any; a member their apps' keys; anyone their own tokens."""
    row = session.get(ApiKey, key_id) if 0 < key_id < 2**31 else None
    what, command = ("personal access token", "token") if token else ("API key", "key")
    missing = NotFoundError(f"No {what} {key_id}.", hint=f"See them with `studio {command} list`.")
    if row is None or (token is not None and token != (row.user_id is not None)):
        raise missing
    actor = current_actor()
    own_token = row.user_id is not None and actor.kind == "user" and actor.user_id == row.user_id
    if not (actor.is_admin or own_token):
        if row.app_id is None:
            raise missing  # someone else's token or an administrative key: not told
        require_member_role("revoke API keys")
        require_app_access(session=session, app_id=row.app_id, what="API key")
    app = session.get(App, row.app_id) if row.app_id is not None else None
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
        _audit(session, "revoke", row, app.name if app else None)
        session.flush()
    clear_key_cache()
    person = session.get(StudioUser, row.user_id) if row.user_id is not None else None
    return _public(row, app.name if app else None, person.name if person else None)


# -- verification (the hot path) ------------------------------------------------------


def _load_key(key_hash: str) -> tuple[KeyIdentity | None, bool]:
    with session_scope() as session:
        return _lookup(session, key_hash)


_keys: TTLCache[str, tuple[KeyIdentity | None, bool]] = TTLCache(_load_key, ttl_s=KEY_CACHE_TTL_S)


def clear_key_cache() -> None:
    _keys.clear()


def _lookup(session: Session, key_hash: str) -> tuple[KeyIdentity | None, bool]:
    """One query for a key (with its person, for a token); a member's token adds one for
    their apps. Only on a cache miss, never per request."""
    stmt = (
        select(ApiKey, StudioUser)
        .join(StudioUser, col(StudioUser.id) == col(ApiKey.user_id), isouter=True)
        .where(ApiKey.key_hash == key_hash)
    )
    found = session.exec(stmt).first()
    if found is None:
        return None, False
    row, person = found
    assert row.id is not None
    revoked = row.revoked_at is not None
    if row.user_id is not None:
        if person is None or person.role not in ROLES:
            return None, False  # a token whose person is gone: not valid
        apps: frozenset[int] = frozenset()
        if person.role == "member":
            members = select(AppMember.app_id).where(AppMember.user_id == person.id)
            apps = frozenset(int(a) for a in session.exec(members).all())
        identity = KeyIdentity(
            id=row.id,
            app_id=None,
            name=row.name,
            rate_limit_per_minute=row.rate_limit_per_minute,
            scopes=frozenset(),
            user_id=row.user_id,
            user_name=person.name,
            role=cast(Role, person.role),
            member_apps=apps,
        )
        return identity, revoked or person.disabled
    identity = KeyIdentity(
        id=row.id,
        app_id=row.app_id,
        name=row.name,
        rate_limit_per_minute=row.rate_limit_per_minute,
        is_admin=row.is_admin,
        scopes=frozenset(SCOPES) if row.is_admin else parse_scopes(row.scopes),
    )
    return identity, revoked


def _no_key() -> InvalidApiKeyError:
    return InvalidApiKeyError(
        "This request has no API key.",
        hint="Send it as 'Authorization: Bearer <key>' (or an 'x-api-key' header).",
    )


def _answer(identity: KeyIdentity | None, revoked: bool) -> KeyIdentity:
    if identity is None:
        raise InvalidApiKeyError(
            "This API key is not valid.",
            hint="Create one with `studio key create --app APP` and copy it exactly.",
        )
    if revoked:
        raise RevokedApiKeyError(
            "This API key was revoked.", hint="Create a new key for the app and use that one."
        )
    return identity


def verify_cached_key(*, secret: str | None) -> KeyIdentity | None:
    """:func:`verify_key` from the cache only: ``None`` when the database must be asked.

    It never touches the database, so an ``async`` route may call it on the event loop.
    """
    if not secret:
        raise _no_key()
    hit, cached = _keys.peek(hash_api_key(secret))
    if not hit or cached is None:
        return None
    return _answer(*cached)


def verify_key(*, secret: str | None) -> KeyIdentity:
    """The caller behind ``secret``, or :class:`InvalidApiKeyError` / :class:`RevokedApiKeyError`.

    Answers come from a cache, never older than :data:`KEY_CACHE_TTL_S` seconds; a
    miss opens a short session of its own (a blocking call: async code uses
    :func:`averify_key`).
    """
    if not secret:
        raise _no_key()
    return _answer(*_keys.get(hash_api_key(secret)))


async def averify_key(*, secret: str | None) -> KeyIdentity:
    """:func:`verify_key` for the event loop: a hit answers on the loop; a miss reads the
    database in a worker thread, once for all the requests that miss on one key at a time."""
    if not secret:
        raise _no_key()
    return _answer(*await _keys.aget(hash_api_key(secret)))


# -- last used ---------------------------------------------------------------------------

_used_lock = threading.Lock()
_used: dict[int, datetime] = {}
_written: dict[int, float] = {}


def note_used(key_id: int) -> None:
    """Remember that a key was just used (no database access)."""
    with _used_lock:
        _used[key_id] = utcnow()


def forget_last_used() -> None:
    """Drop the in-memory last-used times (tests start each database afresh; key ids repeat)."""
    with _used_lock:
        _used.clear()
        _written.clear()


def due_last_used(*, force: bool = False) -> dict[int, datetime]:
    """Keys whose ``last_used_at`` should be written now (at most once a minute each)."""
    now = time.monotonic()
    due: dict[int, datetime] = {}
    with _used_lock:
        for key_id, when in list(_used.items()):
            if force or now - _written.get(key_id, -math.inf) >= LAST_USED_EVERY_S:
                due[key_id] = when
                _written[key_id] = now
                del _used[key_id]
    return due


def write_last_used(*, session: Session, due: dict[int, datetime]) -> None:
    for key_id, when in due.items():
        session.execute(
            update(ApiKey)
            .where(col(ApiKey.id) == key_id)
            .values(last_used_at=when)
            .execution_options(synchronize_session=False)
        )


# -- rate limits ---------------------------------------------------------------------------


def check_rate_limit(identity: KeyIdentity) -> None:
    """Count one request of the key against its per-minute limit, or raise
    :class:`RateLimitedError` (see :mod:`studio.services.rate_limits`). On PostgreSQL
    this is a blocking database call: async code uses :func:`acheck_rate_limit`."""
    if identity.rate_limit_per_minute:
        rate_limits.take(key_id=identity.id, limit=identity.rate_limit_per_minute)


async def acheck_rate_limit(identity: KeyIdentity) -> None:
    """:func:`check_rate_limit` for the event loop (the database is asked in a thread)."""
    if identity.rate_limit_per_minute:
        await rate_limits.atake(key_id=identity.id, limit=identity.rate_limit_per_minute)
