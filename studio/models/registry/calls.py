"""Execute: validate a request against the model type's schema, call the provider, and
record usage (tokens, latency, cost, errors).

:class:`PreparedModel` is a model resolved once and called many times (batch
runs, deployed endpoints); it holds no database session.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session

from studio.core.errors import (
    ModelNotReadyError,
    StudioError,
)
from studio.core.prompting import response_tokens as tokens_of
from studio.core.schemas import (
    ModelType,
    validate_request,
)
from studio.models.dispatch import dispatch
from studio.models.registry.models import READY, _lookup, _provider_for
from studio.models.usage import cost_for, record_call
from studio.providers import Provider

__all__ = [
    "PreparedModel",
    "acall_prepared",
    "aexecute",
    "execute",
    "prepare_model",
    "record_usage",
    "validate_model_request",
]


def validate_model_request(*, session: Session, ref: str, payload: Any) -> BaseModel:
    """Check ``payload`` against the schema of the model's type, without calling it."""
    resolved = _lookup(session, ref, payload)
    return validate_request(resolved.model.model_type, payload)


class PreparedModel(BaseModel):
    """A model resolved once and called many times (batch runs).

    It holds no database session, so calls in flight keep no connection busy;
    usage is written afterwards with :func:`record_usage`.
    """

    model_config = {"arbitrary_types_allowed": True}

    name: str
    provider_model: str | None
    deployment_id: str | None
    model_type: ModelType
    provider: Provider
    upstream: str

    @property
    def price_names(self) -> list[str]:
        """Names to look up in the price table, in order."""
        return [self.name, self.provider_model or ""]


def prepare_model(*, session: Session, ref: str, payload: Any = None) -> PreparedModel:
    """Resolve ``ref`` and check it is ready to call.

    ``payload`` tells the model type of a ``connection/model`` name (a chat
    model when it is not given).
    """
    if payload is None:
        payload = {"messages": []}
    resolved = _lookup(session, ref, payload)
    model, dep = resolved.model, resolved.deployment
    if dep is not None and dep.status != READY:
        reason = f": {dep.status_reason}" if dep.status_reason else ""
        raise ModelNotReadyError(
            f"Model '{model.name}' is not ready (deployment status {dep.status}{reason}).",
            hint=f"Retry the deployment with `studio model deploy {model.name}`.",
        )
    provider, upstream = _provider_for(session, model)
    return PreparedModel(
        name=model.name,
        provider_model=model.provider_model,
        deployment_id=dep.id if dep else None,
        model_type=ModelType(model.model_type),
        provider=provider,
        upstream=upstream,
    )


async def acall_prepared(prepared: PreparedModel, payload: Any) -> BaseModel:
    """Validate ``payload`` against the model's type and call it (usage is not recorded)."""
    request = validate_request(prepared.model_type, payload)
    return await dispatch(prepared.provider, prepared.upstream, prepared.model_type, request)


def record_usage(
    *,
    session: Session,
    prepared: PreparedModel,
    latency_ms: float,
    response: BaseModel | None = None,
    error: str | None = None,
    source: str = "api",
) -> float:
    """Log one call of ``prepared`` (a response, or the error it ended with); returns its cost."""
    prompt_tokens, response_tokens = (
        tokens_of(response.model_dump()) if response is not None else (0, 0)
    )
    cost = 0.0
    if response is not None:
        cost = cost_for(
            session=session,
            names=prepared.price_names,
            prompt_tokens=prompt_tokens,
            response_tokens=response_tokens,
        )
    record_call(
        session=session,
        deployment_id=prepared.deployment_id,
        model_name=prepared.name,
        model_type=prepared.model_type,
        latency_ms=latency_ms,
        prompt_tokens=prompt_tokens,
        response_tokens=response_tokens,
        cost=cost,
        error=error,
        source=source,
    )
    return cost


async def aexecute(*, session: Session, ref: str, payload: Any, source: str = "api") -> BaseModel:
    """Validate ``payload`` for the model ``ref`` names, call it, record usage."""
    prepared = prepare_model(session=session, ref=ref, payload=payload)
    request = validate_request(prepared.model_type, payload)
    started = time.perf_counter()
    try:
        response = await dispatch(
            prepared.provider, prepared.upstream, prepared.model_type, request
        )
    except StudioError as exc:
        latency_ms = (time.perf_counter() - started) * 1000
        record_usage(
            session=session, prepared=prepared, latency_ms=latency_ms, error=str(exc), source=source
        )
        session.commit()
        raise
    latency_ms = (time.perf_counter() - started) * 1000
    record_usage(
        session=session, prepared=prepared, latency_ms=latency_ms, response=response, source=source
    )
    session.commit()
    return response


def execute(*, session: Session, ref: str, payload: Any, source: str = "api") -> BaseModel:
    """Synchronous :func:`aexecute`, for the CLI and the Streamlit pages."""
    return asyncio.run(aexecute(session=session, ref=ref, payload=payload, source=source))
