"""Writing a run's finished rows: each row's result, the usage of its model call and
its cache entry, in one transaction for a batch of rows (see :mod:`studio.services.runs`).

Rules: no check here (the run engine checked who started the run).
"""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from studio.models import registry
from studio.models.usage import Price, price_of, usage_values
from studio.store import session_scope
from studio.store.tables import ModelCall, ResponseCache, RunResult

__all__ = ["Call", "model_prices", "persist"]


class Call(BaseModel):
    """What one model call left to record with its row."""

    model_config = {"arbitrary_types_allowed": True}

    latency_ms: float
    response: BaseModel | None = None
    error: str | None = None
    cache_key: str | None = None


def model_prices(session: Session, prepared: registry.PreparedModel) -> Price:
    """The model's price, read once per run."""
    return price_of(session=session, names=prepared.price_names)


def _write(
    session: Session,
    result: RunResult,
    call: Call | None,
    prepared: registry.PreparedModel,
    prices: Price,
    *,
    with_result: bool = True,
) -> None:
    """Add one finished row, the usage of its call and its cache entry to ``session``.

    Nothing is flushed here, so a batch of rows goes out as multi-row INSERTs.
    """
    if call is not None:
        prompt, answer = result.prompt_tokens or 0, result.response_tokens or 0
        result.cost = prices.cost(prompt, answer) if call.response else 0.0
        usage = ModelCall(
            **usage_values(
                deployment_id=prepared.deployment_id,
                model_name=prepared.name,
                model_type=prepared.model_type,
                source="run",
                latency_ms=call.latency_ms,
                prompt_tokens=prompt,
                response_tokens=answer,
                cost=result.cost,
                error=call.error,
            )
        )
        session.add(usage)
    if with_result:
        session.add(result)
    response = call.response if call is not None else None
    key = call.cache_key if call is not None else None
    if response is not None and key and session.get(ResponseCache, key) is None:
        data = response.model_dump(mode="json")
        session.add(ResponseCache(key=key, model=prepared.name, response=data))


def persist(
    items: list[tuple[RunResult, Call | None]], prepared: registry.PreparedModel, prices: Price
) -> list[bool]:
    """Write finished rows in one transaction; for each, False if it was already answered.

    A row can be answered already when another process resumed the same run;
    then each row is written on its own, and a call's usage is kept even when
    its row is not.
    """
    try:
        with session_scope() as session:
            for result, call in items:
                _write(session, result, call, prepared, prices)
        return [True] * len(items)
    except IntegrityError:
        pass
    written = []
    for result, call in items:
        result.id = None
        try:
            with session_scope() as session:
                _write(session, result, None, prepared, prices)
            written.append(True)
        except IntegrityError:
            written.append(False)
        if call is not None:
            with session_scope() as session:
                uncached = call.model_copy(update={"cache_key": None})
                _write(session, result, uncached, prepared, prices, with_result=False)
    return written
