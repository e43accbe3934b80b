"""Usage statistics and the price table.

Every execute call becomes one :class:`~studio.store.tables.ModelCall` row.
Statistics aggregate them per day, per deployment or per model name. Cost is
computed from :class:`~studio.store.tables.ModelPrice` (USD per million
tokens), which the user edits with ``studio price set``.

Rules (:mod:`studio.models.permissions`): administrators and members read usage and
prices; setting a price is for administrators and is in the audit log. Recording usage
and looking a price up (the call path) check nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import case, func
from sqlmodel import Session, col, select

from studio.core.errors import RequestValidationError
from studio.core.schemas import ModelType
from studio.models.permissions import require_model_admin, require_model_reader
from studio.store import audit
from studio.store.tables import ModelCall, ModelPrice, utcnow

__all__ = [
    "MAX_ERROR_CHARS",
    "DayUsage",
    "Price",
    "UsageStatistics",
    "cost_for",
    "list_prices",
    "price_of",
    "record_call",
    "set_price",
    "usage_statistics",
    "usage_values",
]

MAX_ERROR_CHARS = 2000  # a usage row keeps the start of a long provider error


class DayUsage(BaseModel):
    day: date
    requests: int
    errors: int
    prompt_tokens: int
    response_tokens: int
    cost: float
    avg_latency_ms: float
    max_latency_ms: float


class UsageStatistics(BaseModel):
    deployment_id: str | None = None
    model_name: str | None = None
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    response_tokens: int = 0
    cost: float = 0.0
    avg_latency_ms: float = 0.0
    by_day: list[DayUsage] = []


@dataclass(frozen=True)
class Price:
    """USD per million prompt and response tokens (zero when a model has no price)."""

    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0

    def cost(self, prompt_tokens: int, response_tokens: int) -> float:
        """USD for one call with these token counts."""
        return (
            prompt_tokens * self.input_per_mtok + response_tokens * self.output_per_mtok
        ) / 1_000_000


def price_of(*, session: Session, names: Sequence[str]) -> Price:
    """The price of the first of ``names`` found in the price table (the one price lookup)."""
    for name in names:
        if name and "\x00" not in name:
            row = session.get(ModelPrice, name)
            if row is not None:
                return Price(row.input_per_mtok, row.output_per_mtok)
    return Price()


def cost_for(
    *, session: Session, names: Sequence[str], prompt_tokens: int, response_tokens: int
) -> float:
    """Cost of one call, using the first of ``names`` found in the price table."""
    return price_of(session=session, names=names).cost(prompt_tokens, response_tokens)


def set_price(
    *, session: Session, model: str, input_per_mtok: float, output_per_mtok: float
) -> ModelPrice:
    require_model_admin("set prices")
    if input_per_mtok < 0 or output_per_mtok < 0:
        from studio.core.errors import FieldProblem

        raise RequestValidationError(
            [FieldProblem("price", "must be >= 0 USD per million tokens")], what="price"
        )
    row = session.get(ModelPrice, model)
    if row is None:
        row = ModelPrice(model=model)
    row.input_per_mtok = input_per_mtok
    row.output_per_mtok = output_per_mtok
    row.updated_at = utcnow()
    session.add(row)
    audit.record(
        session,
        action="set-price",
        target_kind="price",
        target_id=model,
        target_name=model,
        details={"input_per_mtok": input_per_mtok, "output_per_mtok": output_per_mtok},
    )
    session.flush()
    return row


def list_prices(*, session: Session) -> list[ModelPrice]:
    require_model_reader("read prices")
    return list(session.exec(select(ModelPrice).order_by(col(ModelPrice.model))).all())


def usage_values(
    *,
    deployment_id: str | None,
    model_name: str,
    model_type: ModelType | str,
    latency_ms: float,
    prompt_tokens: int = 0,
    response_tokens: int = 0,
    cost: float = 0.0,
    error: str | None = None,
    source: str = "api",
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """The columns of one :class:`~studio.store.tables.ModelCall` row: the one place a
    model call's usage is shaped, for execute, runs and the gateway's request log alike."""
    now = created_at or utcnow()
    return {
        "deployment_id": deployment_id,
        "model_name": model_name,
        "model_type": str(model_type),
        "source": source,
        "day": now.date(),
        "created_at": now,
        "latency_ms": latency_ms,
        "prompt_tokens": prompt_tokens,
        "response_tokens": response_tokens,
        "cost": cost,
        "error": error[:MAX_ERROR_CHARS] if error is not None else None,
    }


def record_call(*, session: Session, **values: Any) -> ModelCall:
    """Add one usage row (see :func:`usage_values` for the fields) and flush."""
    row = ModelCall(**usage_values(**values))
    session.add(row)
    session.flush()
    return row


def usage_statistics(
    *,
    session: Session,
    deployment_id: str | None = None,
    model_name: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> UsageStatistics:
    """Requests, tokens, errors, cost and latency by day (for one deployment or model)."""
    require_model_reader("read model usage")
    is_error = case((col(ModelCall.error).is_not(None), 1), else_=0)
    stmt: Any = select(  # type: ignore[call-overload]
        ModelCall.day,
        func.count(),
        func.sum(is_error),
        func.sum(ModelCall.prompt_tokens),
        func.sum(ModelCall.response_tokens),
        func.sum(ModelCall.cost),
        func.avg(ModelCall.latency_ms),
        func.max(ModelCall.latency_ms),
    ).group_by(ModelCall.day)
    if deployment_id is not None:
        stmt = stmt.where(ModelCall.deployment_id == deployment_id)
    if model_name is not None:
        stmt = stmt.where(ModelCall.model_name == model_name)
    if since is not None:
        stmt = stmt.where(ModelCall.created_at >= since)
    if until is not None:
        stmt = stmt.where(ModelCall.created_at < until)
    days = [
        DayUsage(
            day=row[0],
            requests=int(row[1] or 0),
            errors=int(row[2] or 0),
            prompt_tokens=int(row[3] or 0),
            response_tokens=int(row[4] or 0),
            cost=float(row[5] or 0.0),
            avg_latency_ms=round(float(row[6] or 0.0), 2),
            max_latency_ms=round(float(row[7] or 0.0), 2),
        )
        for row in session.exec(stmt.order_by(ModelCall.day)).all()
    ]
    total = sum(d.requests for d in days)
    return UsageStatistics(
        deployment_id=deployment_id,
        model_name=model_name,
        requests=total,
        errors=sum(d.errors for d in days),
        prompt_tokens=sum(d.prompt_tokens for d in days),
        response_tokens=sum(d.response_tokens for d in days),
        cost=sum(d.cost for d in days),
        avg_latency_ms=round(sum(d.avg_latency_ms * d.requests for d in days) / total, 2)
        if total
        else 0.0,
        by_day=days,
    )
