"""The Audit log page's parts: the filters and the table of events."""

from __future__ import annotations

import json
from dataclasses import astuple, dataclass

import pandas as pd
import streamlit as st

from studio.services.audit_log import AuditEntry, audit_actions, list_audit
from studio.ui.common import studio_session

__all__ = ["Filters", "audit_filters", "audit_table"]

ANY = "Everyone"
ANY_ACTION = "Any action"
ANY_KIND = "Any kind"
SHOWN = 500


@dataclass(frozen=True)
class Filters:
    actor: str | None
    action: str | None
    target_kind: str | None
    search: str | None


def audit_filters() -> Filters:
    """The person, action, object kind and search text the visitor picked."""
    with studio_session() as session:
        actions, kinds = audit_actions(session=session)
        people = sorted({e.actor for e in list_audit(session=session, limit=5000)})
    cols = st.columns([2, 2, 2, 3])
    person = cols[0].selectbox("Person", [ANY, *people], key="audit_person")
    action = cols[1].selectbox("Action", [ANY_ACTION, *actions], key="audit_action")
    kind = cols[2].selectbox("Object kind", [ANY_KIND, *kinds], key="audit_kind")
    search = cols[3].text_input(
        "Search", key="audit_search", placeholder="A name: of a person, app, model, key…"
    )
    return Filters(
        actor=None if person == ANY else person,
        action=None if action == ANY_ACTION else action,
        target_kind=None if kind == ANY_KIND else kind,
        search=search.strip() or None,
    )


def _details(entry: AuditEntry) -> str:
    """``role: member; first admin: yes``: the event's settings, as a reader says them."""
    parts = []
    for name, value in sorted(entry.details.items()):
        if isinstance(value, bool):
            shown = "yes" if value else "no"
        elif isinstance(value, str | int | float) or value is None:
            shown = str(value)
        else:
            shown = json.dumps(value, ensure_ascii=False, sort_keys=True)
        parts.append(f"{name.replace('_', ' ')}: {shown}")
    return "; ".join(parts)


_ORIGINS = {"ui": "browser", "cli": "command line", "gateway": "gateway", "worker": "worker"}


def _origin(origin: str) -> str:
    """``ui 10.0.0.7`` → ``browser (10.0.0.7)``, ``cli`` → ``command line``."""
    head, _, rest = origin.partition(" ")
    name = _ORIGINS.get(head, head)
    return f"{name} ({rest})" if rest else name


def audit_table(filters: Filters) -> None:
    with studio_session() as session:
        events = list_audit(
            session=session,
            actor=filters.actor,
            action=filters.action,
            target_kind=filters.target_kind,
            search=filters.search,
            limit=SHOWN,
        )
    if not events:
        if any(astuple(filters)):
            st.info("No event matches these filters. Choose Everyone, Any action, Any kind or "
                    "clear the search to see more.")  # fmt: skip
        else:
            st.info(
                "Nothing is in the audit log yet. It fills as people create, change or remove "
                "accounts, roles, connections, models, endpoints, deployments and keys."
            )
        return
    st.caption(
        f"The newest {len(events)} change{'s' if len(events) != 1 else ''} first"
        + (f" (at most {SHOWN})" if len(events) >= SHOWN else "")
        + ": who did it, from where (the browser's address, the command line or the "
        "gateway), what they did and to which object. Passwords, keys and tokens are never "
        "written here."
    )
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "When (UTC)": e.at.strftime("%Y-%m-%d %H:%M:%S"),
                    "Who": e.actor,
                    "From": _origin(e.origin),
                    "Action": e.action,
                    "Object kind": e.target_kind,
                    "Object": e.target_name or e.target_id,
                    "Details": _details(e),
                }
                for e in events
            ]
        ),
        hide_index=True,
        width="stretch",
        key="audit_table",
    )
