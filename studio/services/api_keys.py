"""API keys for the gateway: one app's keys, shown once, stored hashed, revocable.

There are two kinds. An *app key* belongs to one app and may call that app's
endpoints and read that app's traffic, nothing else. An *administrative key*
(``studio key create --admin``) belongs to no app and may also use the Models
API and call raw models; :mod:`studio.services.access` holds the rules.

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
from studio.core.secrets import hash_api_key, new_api_key
from studio.services import rate_limits
from studio.services.apps import get_app
from studio.services.ttl_cache import TTLCache
from studio.store import session_scope
from studio.store.tables import ApiKey, App, utcnow

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


class ApiKeyPublic(BaseModel):
    """What may be shown about a key: never the key itself."""

    id: int
    app_id: int | None
    app_name: str | None
    name: str
    prefix: str
    is_admin: bool = False
    rate_limit_per_minute: int | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class CreatedKey(BaseModel):
    """A new key: ``secret`` is the plaintext, shown to the user once and never again."""

    key: ApiKeyPublic
    secret: str


@dataclass(frozen=True)
class KeyIdentity:
    """Who is calling: the verified key's id, app, kind and limit (the gateway's ApiKeyDep)."""

    id: int
    app_id: int | None
    name: str
    rate_limit_per_minute: int | None
    is_admin: bool = False


def _public(row: ApiKey, app_name: str | None) -> ApiKeyPublic:
    assert row.id is not None
    return ApiKeyPublic(
        id=row.id,
        app_id=row.app_id,
        app_name=app_name,
        name=row.name,
        prefix=row.prefix,
        is_admin=row.is_admin,
        rate_limit_per_minute=row.rate_limit_per_minute,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def create_key(
    *,
    session: Session,
    app: int | str | None = None,
    name: str = "default",
    rate_limit_per_minute: int | None = None,
    admin: bool = False,
) -> CreatedKey:
    """Create a key for ``app`` (name or id), or an administrative key (``admin=True``,
    no app); the plaintext is in the result only."""
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
    found = get_app(session=session, ref=app) if app is not None else None
    cleaned = (name or "").strip()
    problems = []
    if not cleaned or len(cleaned) > 200:
        problems.append(FieldProblem("name", "must be 1 to 200 characters"))
    if rate_limit_per_minute is not None and not 1 <= rate_limit_per_minute <= 1_000_000:
        problems.append(FieldProblem("rate_limit_per_minute", "must be between 1 and 1000000"))
    if problems:
        raise RequestValidationError(problems, what="API key")
    secret = new_api_key()
    row = ApiKey(
        app_id=found.id if found else None,
        name=cleaned,
        prefix=secret[:PREFIX_CHARS],
        key_hash=hash_api_key(secret),
        rate_limit_per_minute=rate_limit_per_minute,
        is_admin=admin,
    )
    session.add(row)
    session.flush()
    return CreatedKey(key=_public(row, found.name if found else None), secret=secret)


def list_keys(
    *, session: Session, app: int | str | None = None, include_revoked: bool = True
) -> list[ApiKeyPublic]:
    """Keys, newest first (of one app when ``app`` is given)."""
    stmt = select(ApiKey, App.name).join(App, col(App.id) == col(ApiKey.app_id), isouter=True)
    if app is not None:
        stmt = stmt.where(ApiKey.app_id == get_app(session=session, ref=app).id)
    if not include_revoked:
        stmt = stmt.where(col(ApiKey.revoked_at).is_(None))
    rows = session.exec(stmt.order_by(col(ApiKey.id).desc())).all()
    return [_public(row, app_name) for row, app_name in rows]


def revoke_key(*, session: Session, key_id: int) -> ApiKeyPublic:
    """Revoke a key; the gateway refuses it within :data:`KEY_CACHE_TTL_S` seconds."""
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFoundError(f"No API key {key_id}.", hint="See the keys with `studio key list`.")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
        session.flush()
    clear_key_cache()
    app = session.get(App, row.app_id) if row.app_id is not None else None
    return _public(row, app.name if app else None)


# -- verification (the hot path) ------------------------------------------------------


def _load_key(key_hash: str) -> tuple[KeyIdentity | None, bool]:
    with session_scope() as session:
        return _lookup(session, key_hash)


_keys: TTLCache[str, tuple[KeyIdentity | None, bool]] = TTLCache(_load_key, ttl_s=KEY_CACHE_TTL_S)


def clear_key_cache() -> None:
    _keys.clear()


def _lookup(session: Session, key_hash: str) -> tuple[KeyIdentity | None, bool]:
    row = session.exec(select(ApiKey).where(ApiKey.key_hash == key_hash)).first()
    if row is None:
        return None, False
    assert row.id is not None
    identity = KeyIdentity(
        id=row.id,
        app_id=row.app_id,
        name=row.name,
        rate_limit_per_minute=row.rate_limit_per_minute,
        is_admin=row.is_admin,
    )
    return identity, row.revoked_at is not None


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
