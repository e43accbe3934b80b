"""Endpoints: a variant version deployed under a stable name, and calling it.

* :func:`deploy` pins a variant version (the latest unless one is chosen) to an
  endpoint name; deploying to an existing name of the same app is a redeploy.
  :func:`rollback` returns to the previous (or a chosen) version and
  :func:`undeploy` switches the endpoint off. Every change adds an
  :class:`~studio.store.tables.EndpointRevision`, so the history is kept.
* :func:`generate` answers one request: it renders the pinned template with the
  caller's inputs and calls the model. The gateway reads the endpoint through
  :func:`load_runtime`, cached for :data:`ENDPOINT_CACHE_TTL_S` seconds, so a
  deploy in any process that shares the database is live within that time
  (and at once in the process that made it).
* :func:`call_model` calls a model deployment by name the same way (the
  OpenAI-compatible surface, where ``model`` may be an endpoint or a model).

Neither :func:`generate` nor :func:`call_model` writes to the database: the
gateway's request log records usage in batches, off the request path.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session, col, select

from studio import registry
from studio.errors import ConflictError, FieldProblem, NotFoundError, RequestValidationError
from studio.prompting import build_payload, output_text, response_tokens
from studio.schemas import Message, ModelType
from studio.services.apps import get_app
from studio.services.variants import get_variant, latest_version, version_config
from studio.store import session_scope
from studio.store.tables import (
    App,
    Endpoint,
    EndpointRevision,
    ModelPrice,
    Variant,
    VariantVersion,
    utcnow,
)
from studio.templates import prompt_variables, render

__all__ = [
    "ENDPOINT_CACHE_TTL_S",
    "EndpointPublic",
    "EndpointRuntime",
    "GenerateResult",
    "RevisionPublic",
    "call_model",
    "clear_endpoint_cache",
    "default_endpoint_name",
    "deploy",
    "endpoint_history",
    "generate",
    "get_endpoint",
    "list_endpoints",
    "load_runtime",
    "model_type_of",
    "rollback",
    "undeploy",
]

ENDPOINT_CACHE_TTL_S = 0.5
# Variants call ``connection/model`` names as chat models (as runs do).
CHAT_PROBE: dict[str, Any] = {"messages": []}
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


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


class GenerateResult(BaseModel):
    """One answer: the text, its usage and where it came from."""

    output: str
    finish_reason: str | None = None
    model: str
    endpoint: str | None = None
    endpoint_id: int | None = None
    app_id: int | None = None
    version: int | None = None
    prompt_tokens: int = 0
    response_tokens: int = 0
    cost: float = 0.0
    latency_ms: float
    model_latency_ms: float
    response: dict[str, Any]

    @property
    def usage(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "response_tokens": self.response_tokens,
            "total_tokens": self.prompt_tokens + self.response_tokens,
            "cost": self.cost,
        }


# -- deploy, rollback, undeploy ------------------------------------------------------


def _clean_name(name: str) -> str:
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
    row = session.exec(select(Endpoint).where(Endpoint.name == name.strip().lower())).first()
    if row is None:
        raise NotFoundError(
            f"No endpoint '{name}'.", hint="See the endpoints with `studio endpoint list`."
        )
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
    registry.prepare_model(session=session, ref=version.model, payload=CHAT_PROBE)  # callable?
    row.variant_version_id, row.active, row.updated_at = version.id, True, utcnow()
    session.add(row)
    session.flush()
    assert row.id is not None
    session.add(EndpointRevision(endpoint_id=row.id, variant_version_id=version.id, action=action))
    session.flush()
    clear_endpoint_cache()


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
    session.flush()
    clear_endpoint_cache()
    return _public(session, row)


def get_endpoint(*, session: Session, name: str) -> EndpointPublic:
    return _public(session, _endpoint(session, name))


def list_endpoints(
    *, session: Session, app: int | str | None = None, include_inactive: bool = True
) -> list[EndpointPublic]:
    """Endpoints by name (of one app when ``app`` is given)."""
    stmt = select(Endpoint)
    if app is not None:
        stmt = stmt.where(Endpoint.app_id == get_app(session=session, ref=app).id)
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


# -- the hot path: cached runtimes -----------------------------------------------------


@dataclass(frozen=True)
class EndpointRuntime:
    """Everything a request to an endpoint needs, read once from the database."""

    endpoint_id: int
    app_id: int
    name: str
    version: int
    variant_version_id: int
    prompt: Any  # PromptTemplate
    parameters: dict[str, Any]
    variables: tuple[str, ...]
    prepared: registry.PreparedModel
    price: tuple[float, float]  # USD per million prompt / response tokens


_cache_lock = threading.Lock()
_runtimes: dict[str, tuple[float, EndpointRuntime | None]] = {}
_models: dict[str, tuple[float, registry.PreparedModel, tuple[float, float]]] = {}


def clear_endpoint_cache() -> None:
    with _cache_lock:
        _runtimes.clear()
        _models.clear()


def _price(session: Session, names: Sequence[str]) -> tuple[float, float]:
    for name in names:
        if name:
            row = session.get(ModelPrice, name)
            if row is not None:
                return row.input_per_mtok, row.output_per_mtok
    return 0.0, 0.0


def _load_runtime(session: Session, name: str) -> EndpointRuntime | None:
    row = session.exec(select(Endpoint).where(Endpoint.name == name)).first()
    if row is None or not row.active or row.variant_version_id is None:
        return None
    version = session.get(VariantVersion, row.variant_version_id)
    assert version is not None and row.id is not None and version.id is not None
    config = version_config(version)
    prepared = registry.prepare_model(session=session, ref=config.model, payload=CHAT_PROBE)
    return EndpointRuntime(
        endpoint_id=row.id,
        app_id=row.app_id,
        name=row.name,
        version=version.version,
        variant_version_id=version.id,
        prompt=config.prompt,
        parameters=config.parameter_dict(),
        variables=tuple(prompt_variables(config.prompt)),
        prepared=prepared,
        price=_price(session, [prepared.name, prepared.provider_model or ""]),
    )


def load_runtime(name: str, *, missing_ok: bool = False) -> EndpointRuntime | None:
    """The active endpoint ``name`` (cached for :data:`ENDPOINT_CACHE_TTL_S` seconds).

    Raises :class:`NotFoundError` when there is none, unless ``missing_ok``.
    """
    key = name.strip().lower()
    now = time.monotonic()
    with _cache_lock:
        cached = _runtimes.get(key)
    if cached is not None and now - cached[0] <= ENDPOINT_CACHE_TTL_S:
        runtime = cached[1]
    elif not NAME_PATTERN.match(key):
        runtime = None  # no endpoint can have this name: no database round trip
    else:
        with session_scope() as session:
            runtime = _load_runtime(session, key)
        with _cache_lock:
            _runtimes[key] = (now, runtime)
    if runtime is None and not missing_ok:
        raise NotFoundError(
            f"No deployed endpoint '{name}'.",
            hint="Deploy a variant to it first (`studio deploy --app APP --variant NAME`).",
        )
    return runtime


def _prepared(ref: str, payload: Any) -> tuple[registry.PreparedModel, tuple[float, float]]:
    now = time.monotonic()
    with _cache_lock:
        cached = _models.get(ref)
    if cached is not None and now - cached[0] <= ENDPOINT_CACHE_TTL_S:
        return cached[1], cached[2]
    if "\x00" in ref:  # PostgreSQL refuses NUL in text; no model is named so
        raise NotFoundError(f"No model {ref!r}.", hint="See the models with `studio model list`.")
    with session_scope() as session:
        prepared = registry.prepare_model(
            session=session, ref=ref, payload=CHAT_PROBE if payload is None else payload
        )
        price = _price(session, [prepared.name, prepared.provider_model or ""])
    with _cache_lock:
        _models[ref] = (now, prepared, price)
    return prepared, price


async def _call(
    prepared: registry.PreparedModel, price: tuple[float, float], payload: Any, started: float
) -> GenerateResult:
    model_started = time.perf_counter()
    response = await registry.acall_prepared(prepared, payload)
    finished = time.perf_counter()
    data = response.model_dump(mode="json")
    prompt_tokens, answer_tokens = response_tokens(data)
    return GenerateResult(
        output=output_text(data),
        finish_reason=data.get("finish_reason"),
        model=prepared.name,
        prompt_tokens=prompt_tokens,
        response_tokens=answer_tokens,
        cost=(prompt_tokens * price[0] + answer_tokens * price[1]) / 1_000_000,
        latency_ms=(finished - started) * 1000,
        model_latency_ms=(finished - model_started) * 1000,
        response=data,
    )


async def generate(
    *,
    name: str,
    inputs: Mapping[str, Any],
    messages: Sequence[Message] = (),
    parameters: Mapping[str, Any] | None = None,
) -> GenerateResult:
    """Render endpoint ``name``'s template with ``inputs`` and call its model.

    ``messages`` are appended after the rendered prompt (chat continuation);
    ``parameters`` override the variant's sampling parameters.
    """
    started = time.perf_counter()
    runtime = load_runtime(name)
    assert runtime is not None
    missing = [v for v in runtime.variables if v not in inputs]
    if missing:
        raise RequestValidationError(
            [FieldProblem(f"inputs.{v}", "required by the endpoint's template") for v in missing],
            what="request",
        )
    rendered: str | list[Message] = render(runtime.prompt, inputs)
    if messages:
        head = [Message(role="user", content=rendered)] if isinstance(rendered, str) else rendered
        rendered = [*head, *messages]
    mtype = runtime.prepared.model_type
    if mtype not in (ModelType.COMPLETION, ModelType.CHAT_COMPLETION):
        raise RequestValidationError(
            [FieldProblem("model", f"an endpoint needs a completion or chat model, not {mtype}")]
        )
    payload = build_payload(mtype, rendered, {**runtime.parameters, **(parameters or {})})
    result = await _call(runtime.prepared, runtime.price, payload, started)
    return result.model_copy(
        update={
            "endpoint": runtime.name,
            "endpoint_id": runtime.endpoint_id,
            "app_id": runtime.app_id,
            "version": runtime.version,
        }
    )


async def call_model(*, ref: str, payload: Mapping[str, Any]) -> GenerateResult:
    """Call model deployment ``ref`` with a request of its type (no usage written here)."""
    started = time.perf_counter()
    prepared, price = _prepared(ref, dict(payload))
    return await _call(prepared, price, dict(payload), started)


def model_type_of(ref: str) -> ModelType:
    """The type of model deployment ``ref`` (cached like :func:`call_model`)."""
    return _prepared(ref, None)[0].model_type
