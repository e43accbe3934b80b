"""Personal access tokens: a person's own key for the gateway.

A token is an :class:`~studio.store.tables.ApiKey` row with ``user_id`` set and no app.
It looks different from an app key (it starts with :data:`TOKEN_START`), is shown
once and stored hashed like one, and acts with its person's *current* role
(:mod:`studio.services.access`): the gateway reads the role with the key, so a role
change is seen within :data:`~studio.services.api_keys.KEY_CACHE_TTL_S` seconds, and
disabling the account revokes its tokens. Revoke one with
:func:`studio.services.api_keys.revoke_key`.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from studio.core.errors import ConflictError, FieldProblem, RequestValidationError
from studio.core.identity import current_actor, require_admin
from studio.core.secrets import hash_api_key, new_api_key
from studio.services.api_keys import (
    TOKEN_PREFIX_CHARS,
    TOKEN_START,
    ApiKeyPublic,
    CreatedKey,
    _audit,
    _checked,
    _public,
)
from studio.store.tables import ApiKey, StudioUser

__all__ = ["TOKEN_START", "create_token", "list_tokens"]


def _person(session: Session, user: int | str | None, action: str) -> StudioUser:
    """The account ``user`` names (default: the caller's own); someone else's needs an
    administrator."""
    from studio.services.users import _find

    actor = current_actor()
    if user is None:
        if actor.kind != "user" or actor.user_id is None:
            raise RequestValidationError(
                [FieldProblem("user", f"name the person to {action} (--user NAME)")],
                what="personal access token",
            )
        return _find(session, actor.user_id)
    row = _find(session, user)
    if not (actor.kind == "user" and actor.user_id == row.id):
        require_admin(f"{action} of other people")
    return row


def create_token(
    *, session: Session, name: str = "default", user: int | str | None = None
) -> CreatedKey:
    """A personal access token of ``user`` (default: the caller): it acts on the gateway
    with that person's current role. Its plaintext is in the result only."""
    person = _person(session, user, "create personal access tokens")
    if person.disabled:
        raise ConflictError(
            f"{person.name}'s account is disabled; a token of it would be refused.",
            hint=f"Enable the account first: `studio user enable {person.name}`.",
        )
    cleaned = _checked(name, None)
    secret = TOKEN_START + new_api_key().removeprefix("sk-studio-")
    row = ApiKey(
        app_id=None,
        name=cleaned,
        prefix=secret[:TOKEN_PREFIX_CHARS],
        key_hash=hash_api_key(secret),
        scopes="",
        user_id=person.id,
    )
    session.add(row)
    session.flush()
    _audit(session, "create", row, None)
    return CreatedKey(key=_public(row, None, person.name), secret=secret)


def list_tokens(
    *, session: Session, user: int | str | None = None, include_revoked: bool = True
) -> list[ApiKeyPublic]:
    """Personal access tokens, newest first: ``user``'s (default: the caller's own; the
    local operator, who is nobody, sees everyone's)."""
    stmt = select(ApiKey, StudioUser.name).join(
        StudioUser, col(StudioUser.id) == col(ApiKey.user_id)
    )
    if user is not None or current_actor().kind != "operator":
        person = _person(session, user, "list personal access tokens")
        stmt = stmt.where(ApiKey.user_id == person.id)
    if not include_revoked:
        stmt = stmt.where(col(ApiKey.revoked_at).is_(None))
    rows = session.exec(stmt.order_by(col(ApiKey.id).desc())).all()
    return [_public(row, None, user_name) for row, user_name in rows]
