"""What still uses a model: the active endpoints and the unarchived variants whose latest
version runs on it (:func:`~studio.models.registry.models.delete_model` refuses while any
do). Lookups only; no checks (the caller checked).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, and_, col, func, or_, select

from studio.store.tables import App, Endpoint, Model, Variant, VariantVersion

__all__ = ["endpoints_using", "quoted", "uses", "variants_using"]


def quoted(names: list[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def uses(model: Model) -> Any:
    """Variant versions that reference ``model`` (by id, or by name if saved before ids)."""
    return or_(
        col(VariantVersion.model_id) == model.id,
        and_(col(VariantVersion.model_id).is_(None), col(VariantVersion.model) == model.name),
    )


def endpoints_using(session: Session, model: Model) -> list[str]:
    rows = session.exec(
        select(Endpoint.name)
        .join(VariantVersion, col(VariantVersion.id) == col(Endpoint.variant_version_id))
        .where(col(Endpoint.active).is_(True), uses(model))
        .order_by(col(Endpoint.name))
    ).all()
    return list(rows)


def variants_using(session: Session, model: Model) -> list[str]:
    """``app / variant`` of the unarchived variants whose latest version uses ``model``."""
    newest = (
        select(VariantVersion.variant_id, func.max(VariantVersion.version).label("version"))
        .group_by(col(VariantVersion.variant_id))
        .subquery()
    )
    rows = session.exec(
        select(App.name, Variant.name)
        .join(Variant, col(Variant.app_id) == col(App.id))
        .join(newest, newest.c.variant_id == col(Variant.id))
        .join(
            VariantVersion,
            (col(VariantVersion.variant_id) == newest.c.variant_id)
            & (col(VariantVersion.version) == newest.c.version),
        )
        .where(col(Variant.archived).is_(False), uses(model))
        .order_by(col(App.name), col(Variant.name))
    ).all()
    return [f"{app} / {variant}" for app, variant in rows]
