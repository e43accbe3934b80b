"""The model zoo: every callable model in one list, as the Models page shows it.

Registered models (built-in, from templates, external) come with their
deployment status; models that connections offer are added as
``connection/model`` (callable by that name without creating anything). Each
entry carries its price per million tokens from the price table and whether
it runs offline.

Rules (:mod:`studio.models.permissions`): administrators and members; reviewers none.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel
from sqlmodel import Session, col, select

from studio.models.connections import BUILTIN_CONNECTION
from studio.models.permissions import require_model_reader
from studio.models.registry import list_deployments, list_model_groups, list_models, list_templates
from studio.models.usage import list_prices
from studio.providers import ModelInfo
from studio.store.tables import ModelCall

__all__ = ["OFFLINE_RUNTIMES", "ZooEntry", "used_model_names", "zoo_entries"]

OFFLINE_RUNTIMES = frozenset({"llama-cpp", "sentence-transformers"})


class ZooEntry(BaseModel):
    """One callable model."""

    name: str
    model_type: str
    provider: str
    source: str  # builtin | custom | external | connection
    status: str
    status_reason: str | None = None
    builtin: bool = False
    offline: bool = False
    context_window: int | None = None
    input_per_mtok: float | None = None
    output_per_mtok: float | None = None
    group: str | None = None
    description: str = ""


def zoo_entries(
    *, session: Session, connection_models: Mapping[str, list[ModelInfo]] | None = None
) -> list[ZooEntry]:
    """Registered models first (built-ins leading), then the models connections offer.

    ``connection_models`` maps a connection name to what its server listed
    (the page asks each server and caches the answer).
    """
    require_model_reader("see the models")
    prices = {p.model: p for p in list_prices(session=session)}
    templates = {t.id: t for t in list_templates(session=session)}
    groups = {g.id: g.name for g in list_model_groups(session=session)}
    deployments = {d.model_id: d for d in list_deployments(session=session)}

    def price(*names: str | None) -> tuple[float | None, float | None]:
        for name in names:
            if name and name in prices:
                return prices[name].input_per_mtok, prices[name].output_per_mtok
        return None, None

    entries: list[ZooEntry] = []
    for m in list_models(session=session):
        dep = deployments.get(m.id)
        template = templates.get(m.model_template_id or "")
        if m.is_builtin:
            provider, source, offline = BUILTIN_CONNECTION, "builtin", True
        elif template is not None:
            provider, source = template.runtime, "custom"
            offline = template.runtime in OFFLINE_RUNTIMES
        else:
            provider, source = m.connection or "", "external"
            offline = m.connection == BUILTIN_CONNECTION
        inp, out = price(m.name, m.provider_model)
        entries.append(
            ZooEntry(
                name=m.name,
                model_type=m.model_type,
                provider=provider,
                source=source,
                status=dep.status if dep else "N/A",
                status_reason=dep.status_reason if dep else None,
                builtin=m.is_builtin,
                offline=offline,
                context_window=m.context_window,
                input_per_mtok=inp,
                output_per_mtok=out,
                group=groups.get(m.model_group_id or ""),
                description=m.description,
            )
        )
    known = {e.name for e in entries}
    for conn, infos in sorted((connection_models or {}).items()):
        if conn == BUILTIN_CONNECTION:
            continue  # the built-ins are registered models already
        for info in infos:
            name = f"{conn}/{info.id}"
            if name in known:
                continue
            inp, out = price(name, info.id)
            entries.append(
                ZooEntry(
                    name=name,
                    model_type=info.model_type.value,
                    provider=conn,
                    source="connection",
                    status="READY",
                    offline=info.offline,
                    context_window=info.context_window,
                    input_per_mtok=inp,
                    output_per_mtok=out,
                    description=info.description,
                )
            )
    return entries


def used_model_names(*, session: Session) -> list[str]:
    """Every model name that has usage records (including ``connection/model`` calls)."""
    require_model_reader("read model usage")
    rows = session.exec(select(ModelCall.model_name).distinct().order_by(col(ModelCall.model_name)))
    return [str(r) for r in rows.all()]
