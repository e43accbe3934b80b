"""App membership, and the one check every app-scoped service calls.

* An administrator (and the local operator, and job workers) may use every app.
* A member may use the apps they belong to (:class:`~studio.store.tables.AppMember`);
  creating an app makes its creator a member.
* A reviewer uses no app (only their review queues).
* An API key acting in a service call may use its own app only.

:func:`require_app_access` raises :class:`~studio.core.errors.NotFoundError` for an app the
caller may not use, the same answer as for an app that does not exist, so its existence
is not told; :func:`visible_app_ids` is the filter for lists.
"""

from __future__ import annotations

from sqlmodel import Session, select

from studio.core.errors import ConflictError, NotFoundError, PermissionDeniedError
from studio.core.identity import Actor, current_actor, require_admin
from studio.store import audit
from studio.store.tables import App, AppMember, StudioUser

__all__ = [
    "add_member",
    "app_members",
    "may_use_app",
    "remove_member",
    "require_app_access",
    "require_member_role",
    "visible_app_ids",
]


def visible_app_ids(*, session: Session, actor: Actor | None = None) -> set[int] | None:
    """The apps ``actor`` (default: the current one) may use: ``None`` means every app."""
    who = actor or current_actor()
    if who.is_admin:
        return None
    if who.kind == "key":
        return {who.app_id} if who.app_id is not None else set()
    if who.kind == "user" and who.role == "member":
        stmt = select(AppMember.app_id).where(AppMember.user_id == who.user_id)
        return {int(a) for a in session.exec(stmt).all()}
    return set()


def may_use_app(*, session: Session, app_id: int | None, actor: Actor | None = None) -> bool:
    who = actor or current_actor()
    if who.is_admin:
        return True
    if app_id is None:
        return False
    visible = visible_app_ids(session=session, actor=who)
    return visible is None or app_id in visible


def require_app_access(
    *, session: Session, app_id: int | None, what: str = "app", actor: Actor | None = None
) -> None:
    """Refuse (as not found) unless the caller may use app ``app_id``."""
    who = actor or current_actor()
    if not who.signed_in:
        raise PermissionDeniedError(
            "Sign in to use the studio.", hint="Open the studio and sign in, or use the CLI."
        )
    if not may_use_app(session=session, app_id=app_id, actor=who):
        raise NotFoundError(
            f"No such {what}, or it belongs to an app you are not a member of.",
            hint="Ask an administrator to add you to the app.",
        )


def require_member_role(action: str) -> Actor:
    """Administrators and members may ``action``; reviewers and anonymous callers not."""
    from studio.core.identity import require_role

    return require_role("admin", "member", action=action)


def _user(session: Session, ref: int | str) -> StudioUser:
    from studio.services.users import _find

    return _find(session, ref)


def _app(session: Session, ref: int | str) -> App:
    from studio.services.apps import get_app

    return get_app(session=session, ref=ref)


def add_member(*, session: Session, app: int | str, user: int | str) -> None:
    """Make ``user`` a member of ``app`` (administrators only; idempotent)."""
    require_admin("add people to apps")
    found_app, found_user = _app(session, app), _user(session, user)
    if found_user.role == "reviewer":
        raise ConflictError(
            f"{found_user.name} is a reviewer; reviewers see only their review queues.",
            hint=f"Make them a member first: `studio user set-role {found_user.name} member`.",
        )
    assert found_app.id is not None and found_user.id is not None
    if session.get(AppMember, (found_app.id, found_user.id)) is None:
        session.add(AppMember(app_id=found_app.id, user_id=found_user.id))
        audit.record(
            session,
            action="add-member",
            target_kind="app",
            target_id=found_app.id,
            target_name=found_app.name,
            details={"user": found_user.name},
        )
        session.commit()


def remove_member(*, session: Session, app: int | str, user: int | str) -> None:
    """Take ``user`` out of ``app`` (administrators only)."""
    require_admin("remove people from apps")
    found_app, found_user = _app(session, app), _user(session, user)
    row = session.get(AppMember, (found_app.id, found_user.id))
    if row is None:
        raise NotFoundError(f"{found_user.name} is not a member of {found_app.name!r}.")
    session.delete(row)
    audit.record(
        session,
        action="remove-member",
        target_kind="app",
        target_id=found_app.id,
        target_name=found_app.name,
        details={"user": found_user.name},
    )
    session.commit()


def app_members(*, session: Session, app: int | str) -> list[str]:
    """The names of ``app``'s members (administrators, or a member of the app)."""
    found = _app(session, app)
    require_app_access(session=session, app_id=found.id)
    stmt = (
        select(StudioUser.name)
        .join(AppMember, AppMember.user_id == StudioUser.id)  # type: ignore[arg-type]
        .where(AppMember.app_id == found.id)
        .order_by(StudioUser.name)
    )
    return list(session.exec(stmt).all())
