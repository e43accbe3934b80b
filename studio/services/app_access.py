"""The role check in front of every app-scoped service (apps, datasets, variants, runs,
evaluations, comparisons, jobs, endpoints, monitoring), on top of
:mod:`studio.services.members`' membership rules.

* Administrators (and the local operator, and job workers) use every app.
* Members use the apps they belong to; another app is "not found", as a missing one.
* An API key (the gateway) uses its own app; another app's is refused with a 403
  sentence (the gateway's rule, :mod:`studio.services.access`).
* Reviewers and anonymous callers are refused with a sentence saying what is needed.

The actor comes from :func:`studio.core.identity.current_actor`: the faces set it.
"""

from __future__ import annotations

from sqlmodel import Session

from studio.core.errors import NotFoundError, PermissionDeniedError
from studio.core.identity import Actor, current_actor
from studio.services.members import may_use_app, visible_app_ids

__all__ = ["check_app", "require_app_user", "visible_apps"]


def require_app_user(action: str) -> Actor:
    """The current actor if it may use apps at all (administrators, members, API keys);
    otherwise a :class:`PermissionDeniedError` saying so (``action``: "list runs")."""
    actor = current_actor()
    if actor.is_admin or (actor.kind == "user" and actor.role == "member"):
        return actor
    if actor.kind == "key" and actor.app_id is not None:
        return actor
    if not actor.signed_in:
        raise PermissionDeniedError(
            f"Sign in to {action}.", hint="Open the studio and sign in, or use the CLI."
        )
    if actor.kind == "user" and actor.role == "reviewer":
        raise PermissionDeniedError(
            f"Reviewers cannot {action}: a reviewer sees only their review queues.",
            hint="Ask an administrator to make you a member and add you to the app.",
        )
    raise PermissionDeniedError(
        f"Only administrators and app members can {action}.",
        hint="Ask an administrator of this studio for access.",
    )


def visible_apps(*, session: Session, action: str) -> set[int] | None:
    """The ids of the apps the caller may use (``None``: every app), after the role check."""
    actor = require_app_user(action)
    return visible_app_ids(session=session, actor=actor)


def check_app(*, session: Session, app_id: int | None, action: str, what: str = "app") -> Actor:
    """Refuse unless the caller may ``action`` in app ``app_id``. For a person, another
    app's ``what`` is not found (its existence is not told); for an API key, refused."""
    actor = require_app_user(action)
    if may_use_app(session=session, app_id=app_id, actor=actor):
        return actor
    if actor.kind == "key":
        raise PermissionDeniedError(
            "This API key belongs to another app.",
            hint="Use a key created for the endpoint's app (`studio key create --app APP`).",
        )
    raise NotFoundError(
        f"No such {what}, or it belongs to an app you are not a member of.",
        hint="Ask an administrator to add you to the app.",
    )
