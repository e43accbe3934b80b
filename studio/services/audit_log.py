"""Reading the audit log (administrators only); :mod:`studio.store.audit` writes it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session, col, select

from studio.core.identity import require_admin
from studio.store.tables import AuditEvent

__all__ = ["AuditEntry", "audit_actions", "list_audit"]

MAX_ROWS = 5000


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor: str
    origin: str
    action: str
    target_kind: str
    target_id: str
    target_name: str
    details: dict[str, Any]


def list_audit(
    *,
    session: Session,
    actor: str | None = None,
    action: str | None = None,
    target_kind: str | None = None,
    search: str | None = None,
    since: datetime | None = None,
    limit: int = 500,
) -> list[AuditEntry]:
    """The newest events first, filtered; ``search`` matches the actor or target name."""
    require_admin("read the audit log")
    stmt = select(AuditEvent)
    if actor:
        stmt = stmt.where(col(AuditEvent.actor).contains(actor))
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if target_kind:
        stmt = stmt.where(AuditEvent.target_kind == target_kind)
    if since is not None:
        stmt = stmt.where(AuditEvent.at >= since)
    if search:
        needle = search.strip()
        stmt = stmt.where(
            col(AuditEvent.target_name).contains(needle) | col(AuditEvent.actor).contains(needle)
        )
    stmt = stmt.order_by(col(AuditEvent.id).desc()).limit(max(1, min(limit, MAX_ROWS)))
    return [
        AuditEntry(
            id=int(e.id or 0),
            at=e.at,
            actor=e.actor,
            origin=e.origin,
            action=e.action,
            target_kind=e.target_kind,
            target_id=e.target_id,
            target_name=e.target_name,
            details=e.details or {},
        )
        for e in session.exec(stmt).all()
    ]


def audit_actions(*, session: Session) -> tuple[list[str], list[str]]:
    """The actions and target kinds the log holds (for the page's filters)."""
    require_admin("read the audit log")
    actions = session.exec(select(AuditEvent.action).distinct()).all()
    kinds = session.exec(select(AuditEvent.target_kind).distinct()).all()
    return sorted(actions), sorted(kinds)
