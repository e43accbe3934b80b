"""Sentences about a run's concurrency, for the user, before the run starts.

Rules: the admin or member role (it reads the model's connection).
"""

from __future__ import annotations

from sqlmodel import Session

from studio.core.errors import StudioError
from studio.core.prompting import build_payload
from studio.models import registry
from studio.models.registry import models as registry_models
from studio.services.members import require_member_role

__all__ = ["concurrency_note"]


def concurrency_note(
    *, session: Session, model: str, concurrency: int | None, model_id: str | None = None
) -> str | None:
    """A sentence for the user when the connection's own limit caps a run below
    ``concurrency``; None when the run's concurrency is what runs, when none was
    asked for (the connection's limit is then the run's), or when the model
    cannot be resolved (the run itself reports that)."""
    require_member_role("plan runs")
    if concurrency is None:
        return None
    try:
        ref = registry_models.referenced_model(session=session, model_id=model_id, name=model)
        mtype = registry.model_type(session=session, ref=ref)
        prepared = registry.prepare_model(
            session=session, ref=ref, payload=build_payload(mtype, "", {})
        )
    except StudioError:
        return None
    provider = prepared.provider
    limit = provider.options.concurrency
    if limit is None or limit >= concurrency:
        return None
    return (
        f"Connection '{provider.name}' allows at most {limit} calls at a time, so this run "
        f"makes {limit} at once, not {concurrency}. Change the connection's concurrency to "
        "lift it."
    )
