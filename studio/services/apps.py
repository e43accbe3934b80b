"""Apps: one per use case ("marketing email generator").

An app owns variants, datasets, runs and endpoints. Apps are archived rather
than deleted, so their runs stay reproducible; archived apps are hidden from
:func:`list_apps` unless asked for and can be restored.

Rules: administrators and members create apps (the creator becomes a member); reading and
changing an app needs access to it (:mod:`studio.services.app_access`); reviewers none.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from studio.core.errors import ConflictError, FieldProblem, NotFoundError, RequestValidationError
from studio.core.ids import row_id
from studio.services.app_access import check_app, visible_apps
from studio.services.members import require_member_role
from studio.store.tables import (
    App,
    AppMember,
    Dataset,
    DatasetVersion,
    Run,
    Variant,
    VariantVersion,
    utcnow,
)

__all__ = [
    "MAX_NAME_LENGTH",
    "AppSummary",
    "archive_app",
    "create_app",
    "describe_app",
    "get_app",
    "list_apps",
    "rename_app",
]

MAX_NAME_LENGTH = 200


class AppSummary(BaseModel):
    """One line of the apps list: the app and how much is in it."""

    id: int
    name: str
    description: str
    archived: bool
    variants: int
    datasets: int
    runs: int
    created_at: datetime
    last_activity: datetime


def _as_utc(value: datetime) -> datetime:
    """Databases hand back naive UTC datetimes; fresh objects hold aware ones."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _clean_name(name: str) -> str:
    cleaned = (name or "").strip()
    if not cleaned:
        raise RequestValidationError(
            [FieldProblem("name", "must not be empty; give the app a name")], what="app"
        )
    if len(cleaned) > MAX_NAME_LENGTH:
        raise RequestValidationError(
            [
                FieldProblem(
                    "name",
                    f"must be at most {MAX_NAME_LENGTH} characters (got {len(cleaned)})",
                )
            ],
            what="app",
        )
    return cleaned


def _name_taken(session: Session, name: str, *, except_id: int | None = None) -> bool:
    query = select(App.id).where(App.name == name)
    if except_id is not None:
        query = query.where(App.id != except_id)
    return session.exec(query).first() is not None


def _conflict(name: str) -> ConflictError:
    return ConflictError(
        f"An app named '{name}' already exists.",
        hint="Pick another name, or open the existing app (it may be archived).",
    )


def _flush(session: Session, name: str) -> None:
    try:
        session.flush()
    except IntegrityError as exc:  # another process took the name a moment ago
        raise _conflict(name) from exc


def create_app(*, session: Session, name: str, description: str = "") -> App:
    """Create an app; names are unique across the studio. A person who creates an app
    becomes its member."""
    actor = require_member_role("create apps")
    cleaned = _clean_name(name)
    if _name_taken(session, cleaned):
        raise _conflict(cleaned)
    app = App(name=cleaned, description=description or "")
    session.add(app)
    _flush(session, cleaned)
    if actor.kind == "user" and actor.user_id is not None and app.id is not None:
        session.add(AppMember(app_id=app.id, user_id=actor.user_id))
        session.flush()
    return app


def get_app(*, session: Session, ref: int | str) -> App:
    """Find an app by id or by name (a name wins over an id that looks the same); an app
    the caller may not use is not found either."""
    app: App | None = None
    if isinstance(ref, int):
        app = session.get(App, ref) if row_id(ref) is not None else None
    else:
        text = ref.strip()
        app = session.exec(select(App).where(App.name == text)).first()
        number = row_id(text)
        if app is None and number is not None:
            app = session.get(App, number)
    if app is None:
        raise NotFoundError(
            f"No app '{ref}'.", hint="Check the name or id in the apps list (archived included)."
        )
    check_app(session=session, app_id=app.id, action="use apps")
    return app


def rename_app(*, session: Session, ref: int | str, name: str) -> App:
    require_member_role("rename apps")
    app = get_app(session=session, ref=ref)
    cleaned = _clean_name(name)
    if cleaned == app.name:
        return app
    if _name_taken(session, cleaned, except_id=app.id):
        raise _conflict(cleaned)
    app.name = cleaned
    app.updated_at = utcnow()
    session.add(app)
    _flush(session, cleaned)
    return app


def describe_app(*, session: Session, ref: int | str, description: str) -> App:
    require_member_role("change apps")
    app = get_app(session=session, ref=ref)
    app.description = description or ""
    app.updated_at = utcnow()
    session.add(app)
    session.flush()
    return app


def archive_app(*, session: Session, ref: int | str, archived: bool = True) -> App:
    """Hide an app from the default list (``archived=False`` restores it)."""
    require_member_role("archive apps")
    app = get_app(session=session, ref=ref)
    if app.archived != archived:
        app.archived = archived
        app.updated_at = utcnow()
        session.add(app)
        session.flush()
    return app


def _grouped(session: Session, query: Any) -> dict[int, tuple[int, datetime | None]]:
    return {row[0]: (int(row[1]), row[2]) for row in session.execute(query).all()}


def list_apps(*, session: Session, include_archived: bool = False) -> list[AppSummary]:
    """Apps with their counts, the most recently active first (only the caller's apps)."""
    visible = visible_apps(session=session, action="list apps")
    query = select(App)
    if visible is not None:
        query = query.where(col(App.id).in_(visible))
    if not include_archived:
        query = query.where(col(App.archived).is_(False))
    apps = list(session.exec(query).all())
    if not apps:
        return []

    variants = _grouped(
        session,
        select(Variant.app_id, func.count(col(Variant.id)), func.max(Variant.created_at)).group_by(
            col(Variant.app_id)
        ),
    )
    variant_versions = _grouped(
        session,
        select(
            Variant.app_id, func.count(col(VariantVersion.id)), func.max(VariantVersion.created_at)
        )
        .join(VariantVersion, col(VariantVersion.variant_id) == col(Variant.id))
        .group_by(col(Variant.app_id)),
    )
    datasets = _grouped(
        session,
        select(Dataset.app_id, func.count(col(Dataset.id)), func.max(Dataset.created_at))
        .where(col(Dataset.archived).is_(False))
        .group_by(col(Dataset.app_id)),
    )
    dataset_versions = _grouped(
        session,
        select(
            Dataset.app_id, func.count(col(DatasetVersion.id)), func.max(DatasetVersion.created_at)
        )
        .join(DatasetVersion, col(DatasetVersion.dataset_id) == col(Dataset.id))
        .group_by(col(Dataset.app_id)),
    )
    runs = _grouped(
        session,
        select(Run.app_id, func.count(col(Run.id)), func.max(Run.created_at)).group_by(
            col(Run.app_id)
        ),
    )

    summaries: list[AppSummary] = []
    for app in apps:
        assert app.id is not None
        moments = [app.updated_at, app.created_at]
        for table in (variants, variant_versions, datasets, dataset_versions, runs):
            newest = table.get(app.id, (0, None))[1]
            if newest is not None:
                moments.append(newest)
        summaries.append(
            AppSummary(
                id=app.id,
                name=app.name,
                description=app.description,
                archived=app.archived,
                variants=variants.get(app.id, (0, None))[0],
                datasets=datasets.get(app.id, (0, None))[0],
                runs=runs.get(app.id, (0, None))[0],
                created_at=_as_utc(app.created_at),
                last_activity=max(_as_utc(m) for m in moments),
            )
        )
    summaries.sort(key=lambda s: (s.last_activity, s.id), reverse=True)
    return summaries
