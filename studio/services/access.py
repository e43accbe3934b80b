"""Who may do what with an API key, in one place (the gateway's routes call these).

* An **administrative key** (``studio key create --admin``) may do everything the
  gateway offers: the Models API, raw model calls, every app's endpoints and traffic.
* An **app key** may call its own app's endpoints and read its own app's traffic and
  evaluations; everything else is refused with :class:`~studio.core.errors.PermissionDeniedError`.
* A key that is neither (an app key whose app is gone) may do nothing.

Deny by default: a check that does not positively allow the call refuses it.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from studio.core.errors import NotFoundError, PermissionDeniedError
from studio.services.api_keys import KeyIdentity
from studio.services.apps import get_app
from studio.store.tables import Endpoint, Evaluation

__all__ = [
    "evaluations_scope",
    "may_use_app",
    "readable_evaluation",
    "require_admin",
    "require_app",
    "visible_endpoint_ids",
]


def require_admin(key: KeyIdentity) -> None:
    """Refuse unless ``key`` is an administrative key."""
    if not key.is_admin:
        raise PermissionDeniedError(
            "This action needs an administrative API key; app keys may only call their "
            "own app's endpoints.",
            hint="Ask the operator for a key made with `studio key create --admin`.",
        )


def may_use_app(key: KeyIdentity, app_id: int | None) -> bool:
    """True when ``key`` may call the endpoints and read the traffic of app ``app_id``."""
    if key.is_admin:
        return True
    return key.app_id is not None and app_id is not None and key.app_id == app_id


def require_app(key: KeyIdentity, app_id: int | None) -> None:
    """Refuse unless ``key`` is an administrative key or a key of app ``app_id``."""
    if not may_use_app(key, app_id):
        raise PermissionDeniedError(
            "This API key belongs to another app.",
            hint="Use a key created for the endpoint's app (`studio key create --app APP`).",
        )


def visible_endpoint_ids(*, session: Session, key: KeyIdentity) -> list[int] | None:
    """The endpoints whose traffic ``key`` may read: ``None`` (all) for an administrative
    key, otherwise the ids of its app's endpoints (empty for a key without an app)."""
    if key.is_admin:
        return None
    if key.app_id is None:
        return []
    stmt = select(Endpoint.id).where(Endpoint.app_id == key.app_id).order_by(col(Endpoint.id))
    return [int(i) for i in session.exec(stmt).all() if i is not None]


def evaluations_scope(*, session: Session, key: KeyIdentity, app: str | None) -> int | None:
    """The app whose evaluations ``key`` lists: ``app`` (a name or id) when the key may read
    it (another app's: refused, like another app's endpoint in the monitoring reads), else
    the key's own app; ``None`` (every app) only for an administrative key naming none."""
    if app is not None and app.strip():
        found = get_app(session=session, ref=app)
        require_app(key, found.id)
        return found.id
    if key.is_admin:
        return None
    require_app(key, key.app_id)  # a key without an app reads nothing
    return key.app_id


MAX_ROW_ID = 2**31 - 1  # PostgreSQL's INTEGER


def readable_evaluation(*, session: Session, key: KeyIdentity, evaluation_id: int) -> Evaluation:
    """Evaluation ``evaluation_id`` if ``key`` may read it. Another app's evaluation is not
    found (404), as another app's logged request is: its existence is not told."""
    # an id no table can hold (SQLite: 64 bits, PostgreSQL: 32) is simply not found
    in_range = 1 <= evaluation_id <= MAX_ROW_ID
    evaluation = session.get(Evaluation, evaluation_id) if in_range else None
    if evaluation is None or not may_use_app(key, evaluation.app_id):
        raise NotFoundError(
            f"No evaluation {evaluation_id}.",
            hint="List the evaluations this key may read with GET /api/v1/evaluations.",
        )
    return evaluation
