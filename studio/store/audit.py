"""The audit log's one writer: who created, changed or removed what, from where.

Every layer that changes users, roles, connections, templates, models, endpoints,
deployments or keys calls :func:`record` in the same database transaction as the
change, so the log holds exactly what happened. The actor comes from
:func:`studio.core.identity.current_actor`. ``details`` is for names and settings;
fields whose names look secret (password, key, token, secret, credential) are dropped
here whatever the caller passes, and long values are cut.
"""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import Session

from studio.core.identity import Actor, current_actor
from studio.store.tables import AuditEvent

__all__ = ["SECRET_FIELD", "clean_details", "record"]

SECRET_FIELD = re.compile(r"pass|secret|token|key|credential|authori", re.IGNORECASE)
_ALLOWED_KEYISH = {"api_key_env", "key_prefix", "prefix", "scopes", "key_id"}
MAX_VALUE_CHARS = 300


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return clean_details(value)
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value[:50]]
    if isinstance(value, str):
        return value[:MAX_VALUE_CHARS]
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)[:MAX_VALUE_CHARS]


def clean_details(details: dict[str, Any]) -> dict[str, Any]:
    """``details`` without secret-looking fields, values cut to a readable length."""
    out: dict[str, Any] = {}
    for name, value in details.items():
        key = str(name)
        if SECRET_FIELD.search(key) and key not in _ALLOWED_KEYISH:
            continue
        out[key] = _clean(value)
    return out


def record(
    session: Session,
    *,
    action: str,
    target_kind: str,
    target_id: object = "",
    target_name: str = "",
    details: dict[str, Any] | None = None,
    actor: Actor | None = None,
) -> AuditEvent:
    """Add one audit event to ``session`` (committed with the change it describes)."""
    who = actor or current_actor()
    event = AuditEvent(
        actor=who.describe()[:200],
        actor_user_id=who.user_id,
        origin=(who.origin or who.kind)[:200],
        action=action[:40],
        target_kind=target_kind[:40],
        target_id=str(target_id if target_id is not None else "")[:100],
        target_name=(target_name or "")[:300],
        details=clean_details(details or {}),
    )
    session.add(event)
    return event
