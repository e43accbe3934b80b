"""Endpoints: a variant version deployed under a stable name.

* :func:`deploy` pins a variant version (the latest unless one is chosen) to an
  endpoint name; deploying to an existing name of the same app is a redeploy.
  :func:`rollback` returns to the previous (or a chosen) version and
  :func:`undeploy` switches the endpoint off. Every change adds an
  :class:`~studio.store.tables.EndpointRevision`, so the history is kept.
* Calling an endpoint (the gateway's hot path) lives in
  :mod:`studio.services.endpoint_calls`; a change here clears its cache, so
  it is live at once in this process and within
  :data:`~studio.services.endpoint_calls.ENDPOINT_CACHE_TTL_S` elsewhere.

Rules: an endpoint is its app's (:mod:`studio.services.app_access`): reading needs access
to the app, deploy, rollback and undeploy also the admin or member role, and each of
those is in the audit log.
"""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel
from sqlmodel import Session, col, select

from studio.core.errors import ConflictError, FieldProblem, NotFoundError, RequestValidationError
from studio.services.app_access import check_app, visible_apps
from studio.services.apps import get_app
from studio.services.members import require_member_role
from studio.services.variants import get_variant, latest_version, model_reference
from studio.store import audit
from studio.store.tables import (
    App,
    Endpoint,
    EndpointRevision,
    Variant,
    VariantVersion,
    utcnow,
)

__all__ = [
    "EndpointPublic",
    "RevisionPublic",
    "default_endpoint_name",
    "deploy",
    "endpoint_history",
    "get_endpoint",
    "list_endpoints",
    "rollback",
    "undeploy",
]


class EndpointPublic(BaseModel):
    id: int
    name: str
    app_id: int
    app_name: str
    variant_id: int | None
    variant_name: str | None
    version: int | None
    variant_version_id: int | None
    model: str | None
    active: bool
    created_at: datetime
    updated_at: datetime

    @property
    def path(self) -> str:
        """The generate route, relative to the gateway's base URL."""
        return f"/v1/endpoints/{self.name}/generate"


class RevisionPublic(BaseModel):
    id: int
    action: str
    variant_version_id: int | None
    version: int | None
    created_at: datetime


# -- deploy, rollback, undeploy ------------------------------------------------------


def _clean_name(name: str) -> str:
    from studio.services.endpoint_calls import NAME_PATTERN

    cleaned = (name or "").strip().lower()
    if not NAME_PATTERN.match(cleaned):
        raise RequestValidationError(
            [
                FieldProblem(
                    "name",
                    "1-100 characters: lowercase letters, digits, '.', '-' or '_', "
                    "starting with a letter or digit",
                )
            ],
            what="endpoint name",
        )
    return cleaned


def default_endpoint_name(app_name: str, variant_name: str) -> str:
    """The name :func:`deploy` uses when none is given: ``<app>-<variant>`` as a slug."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", f"{app_name}-{variant_name}".lower()).strip("-._")
    return (slug or "endpoint")[:100]


def _default_name(app: App, variant: Variant) -> str:
    return default_endpoint_name(app.name, variant.name)


def _public(session: Session, row: Endpoint) -> EndpointPublic:
    assert row.id is not None
    app = session.get(App, row.app_id)
    version = (
        session.get(VariantVersion, row.variant_version_id) if row.variant_version_id else None
    )
    variant = session.get(Variant, version.variant_id) if version else None
    return EndpointPublic(
        id=row.id,
        name=row.name,
        app_id=row.app_id,
        app_name=app.name if app else "",
        variant_id=variant.id if variant else None,
        variant_name=variant.name if variant else None,
        version=version.version if version else None,
        variant_version_id=row.variant_version_id,
        model=version.model if version else None,
        active=row.active,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _endpoint(session: Session, name: str) -> Endpoint:
    wanted = name.strip().lower()
    # No stored name holds a control character (PostgreSQL would refuse a NUL in the query).
    storable = wanted.isprintable() and len(wanted) <= 200
    row = (
        session.exec(select(Endpoint).where(Endpoint.name == wanted)).first() if storable else None
    )
    if row is None:
        shown = wanted if storable else repr(wanted[:60])
        raise NotFoundError(
            f"No endpoint '{shown}'.", hint="See the endpoints with `studio endpoint list`."
        )
    check_app(session=session, app_id=row.app_id, action="use endpoints", what="endpoint")
    return row


def _version(session: Session, variant_id: int, number: int | None) -> VariantVersion:
    if number is None:
        return latest_version(session=session, variant_id=variant_id)
    found = session.exec(
        select(VariantVersion).where(
            VariantVersion.variant_id == variant_id, VariantVersion.version == number
        )
    ).first()
    if found is None:
        raise NotFoundError(f"This variant has no version {number}.")
    return found


def _pin(session: Session, row: Endpoint, version: VariantVersion, action: str) -> None:
    # The model layer and the call path are imported by what changes an endpoint, not by
    # listing endpoints: `studio endpoint list` starts fast (bench/bench_cli.py).
    from studio.models import registry
    from studio.services.endpoint_calls import CHAT_PROBE, clear_endpoint_cache

    ref = model_reference(session=session, version=version)  # by id: renames do not matter
    registry.prepare_model(session=session, ref=ref, payload=CHAT_PROBE)  # callable?
    row.variant_version_id, row.active, row.updated_at = version.id, True, utcnow()
    session.add(row)
    session.flush()
    assert row.id is not None
    session.add(EndpointRevision(endpoint_id=row.id, variant_version_id=version.id, action=action))
    _audit(session, row, action, version)
    session.flush()
    clear_endpoint_cache()


def _audit(session: Session, row: Endpoint, action: str, version: VariantVersion | None) -> None:
    """One audit event for a deploy, rollback or undeploy (in the change's transaction)."""
    variant = session.get(Variant, version.variant_id) if version is not None else None
    audit.record(
        session,
        action=action,
        target_kind="endpoint",
        target_id=row.id,
        target_name=row.name,
        details={
            "app_id": row.app_id,
            "variant": variant.name if variant is not None else None,
            "version": version.version if version is not None else None,
            "model": version.model if version is not None else None,
        },
    )


def deploy(
    *,
    session: Session,
    app: int | str,
    variant: int | str,
    version: int | None = None,
    name: str | None = None,
) -> EndpointPublic:
    """Pin ``variant``'s ``version`` (default: latest) to endpoint ``name``; live at once.

    ``name`` defaults to ``<app>-<variant>``. An existing endpoint of the same
    app is redeployed; a name taken by another app is a conflict.
    """
    require_member_role("deploy endpoints")
    found_app = get_app(session=session, ref=app)
    assert found_app.id is not None
    found_variant = get_variant(session=session, app_id=found_app.id, ref=variant)
    assert found_variant.id is not None
    pinned = _version(session, found_variant.id, version)
    cleaned = _clean_name(name) if name else _default_name(found_app, found_variant)
    row = session.exec(select(Endpoint).where(Endpoint.name == cleaned)).first()
    if row is not None and row.app_id != found_app.id:
        raise ConflictError(
            f"The endpoint name '{cleaned}' is used by another app.",
            hint="Pick another name with --name.",
        )
    if row is None:
        row = Endpoint(app_id=found_app.id, name=cleaned)
    _pin(session, row, pinned, "deploy")
    return _public(session, row)


def rollback(*, session: Session, name: str, version: int | None = None) -> EndpointPublic:
    """Go back to the version deployed before the current one, or to ``version``."""
    require_member_role("roll endpoints back")
    row = _endpoint(session, name)
    current = (
        session.get(VariantVersion, row.variant_version_id) if row.variant_version_id else None
    )
    if current is None:
        raise ConflictError(f"Endpoint '{row.name}' has no deployed version to roll back from.")
    if version is not None:
        target = _version(session, current.variant_id, version)
    else:
        revisions = session.exec(
            select(EndpointRevision)
            .where(
                EndpointRevision.endpoint_id == row.id,
                col(EndpointRevision.action).in_(["deploy", "rollback"]),
            )
            .order_by(col(EndpointRevision.id).desc())
        ).all()
        earlier = [r for r in revisions if r.variant_version_id not in (None, current.id)]
        if not earlier:
            raise ConflictError(
                f"Endpoint '{row.name}' has no earlier version to roll back to.",
                hint="Pass --version N to pick one of the variant's versions.",
            )
        found = session.get(VariantVersion, earlier[0].variant_version_id)
        assert found is not None
        target = found
    _pin(session, row, target, "rollback")
    return _public(session, row)


def undeploy(*, session: Session, name: str) -> EndpointPublic:
    """Switch an endpoint off (its history stays; deploying again switches it on)."""
    from studio.services.endpoint_calls import clear_endpoint_cache

    require_member_role("undeploy endpoints")
    row = _endpoint(session, name)
    row.active, row.updated_at = False, utcnow()
    session.add(row)
    session.flush()
    assert row.id is not None
    session.add(
        EndpointRevision(
            endpoint_id=row.id, variant_version_id=row.variant_version_id, action="undeploy"
        )
    )
    current = (
        session.get(VariantVersion, row.variant_version_id) if row.variant_version_id else None
    )
    _audit(session, row, "undeploy", current)
    session.flush()
    clear_endpoint_cache()
    return _public(session, row)


def get_endpoint(*, session: Session, name: str) -> EndpointPublic:
    return _public(session, _endpoint(session, name))


def list_endpoints(
    *, session: Session, app: int | str | None = None, include_inactive: bool = True
) -> list[EndpointPublic]:
    """Endpoints by name (of one app when ``app`` is given; of the caller's apps)."""
    stmt = select(Endpoint)
    if app is not None:
        stmt = stmt.where(Endpoint.app_id == get_app(session=session, ref=app).id)
    else:
        visible = visible_apps(session=session, action="list endpoints")
        if visible is not None:
            stmt = stmt.where(col(Endpoint.app_id).in_(visible))
    if not include_inactive:
        stmt = stmt.where(col(Endpoint.active).is_(True))
    return [_public(session, row) for row in session.exec(stmt.order_by(col(Endpoint.name)))]


def endpoint_history(*, session: Session, name: str) -> list[RevisionPublic]:
    """Every deploy, rollback and undeploy of an endpoint, newest first."""
    row = _endpoint(session, name)
    revisions = session.exec(
        select(EndpointRevision, VariantVersion.version)
        .join(
            VariantVersion,
            col(VariantVersion.id) == col(EndpointRevision.variant_version_id),
            isouter=True,
        )
        .where(EndpointRevision.endpoint_id == row.id)
        .order_by(col(EndpointRevision.id).desc())
    ).all()
    out = []
    for rev, number in revisions:
        assert rev.id is not None
        out.append(
            RevisionPublic(
                id=rev.id,
                action=rev.action,
                variant_version_id=rev.variant_version_id,
                version=number,
                created_at=rev.created_at,
            )
        )
    return out
