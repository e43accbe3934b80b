"""Monitoring: what the gateway's request log says about traffic, latency and errors.

* :func:`request_stats` gives requests per minute, error rate, tokens, cost and
  latency p50/p95/p99, overall and per time bucket, for a window and optionally
  one endpoint. It is one SQL aggregation over the covering index
  ``ix_requestlog_stats``: rows are grouped by (bucket, latency class), so the
  database returns at most buckets x classes rows whatever the traffic, and
  the percentiles are read from those histograms. Latency classes are 5% wide
  on a log scale (:func:`latency_bin`), so a percentile is within about 2.5% of
  the exact value.
* :func:`list_requests` and :func:`get_request`: the recent-requests table with
  filters (status, time, text) and one request in detail.
* :func:`usage_by_day`: requests, tokens and cost per day, endpoint and model.
* :func:`request_inputs`: the ``inputs`` of logged requests, as dataset rows.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import case, func, or_
from sqlmodel import Session, col, select

from studio.errors import NotFoundError
from studio.store.tables import Endpoint, RequestLog, utcnow

__all__ = [
    "MonitoringStats",
    "RequestDetail",
    "RequestSummary",
    "StatsBucket",
    "UsageDay",
    "bin_latency_ms",
    "epoch_minute",
    "get_request",
    "latency_bin",
    "list_requests",
    "request_inputs",
    "request_stats",
    "usage_by_day",
]

_RATIO = math.log(1.05)
_FLOOR_MS = 0.01


def latency_bin(ms: float) -> int:
    """The log-scale latency class of ``ms`` (classes are 5% wide, from 0.01 ms)."""
    return max(0, int(math.log(max(ms, _FLOOR_MS) / _FLOOR_MS) / _RATIO))


def bin_latency_ms(index: int) -> float:
    """The middle of latency class ``index``, in milliseconds."""
    return _FLOOR_MS * math.exp((index + 0.5) * _RATIO)


def epoch_minute(when: datetime) -> int:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() // 60)


def _from_minute(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * 60, tz=UTC)


class StatsBucket(BaseModel):
    start: datetime
    requests: int = 0
    errors: int = 0
    error_rate: float = 0.0
    requests_per_minute: float = 0.0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    prompt_tokens: int = 0
    response_tokens: int = 0
    cost: float = 0.0


class MonitoringStats(BaseModel):
    since: datetime
    until: datetime
    endpoint_id: int | None
    bucket_minutes: int
    totals: StatsBucket
    buckets: list[StatsBucket]


def _percentiles(histogram: dict[int, int], total: int) -> tuple[float | None, ...]:
    if not total:
        return None, None, None
    out: list[float | None] = []
    ordered = sorted(histogram.items())
    for q in (0.50, 0.95, 0.99):
        rank, seen = math.ceil(q * total), 0
        for index, count in ordered:
            seen += count
            if seen >= rank:
                out.append(round(bin_latency_ms(index), 2))
                break
    return tuple(out)


def _fill(bucket: StatsBucket, histogram: dict[int, int], minutes: int) -> StatsBucket:
    bucket.error_rate = round(bucket.errors / bucket.requests, 4) if bucket.requests else 0.0
    bucket.requests_per_minute = round(bucket.requests / max(1, minutes), 3)
    bucket.p50_ms, bucket.p95_ms, bucket.p99_ms = _percentiles(histogram, bucket.requests)
    return bucket


def request_stats(
    *,
    session: Session,
    since: datetime,
    until: datetime | None = None,
    endpoint_id: int | None = None,
    bucket_minutes: int | None = None,
) -> MonitoringStats:
    """Traffic, errors, tokens, cost and latency percentiles from ``since`` to ``until``.

    ``bucket_minutes`` defaults to a width that gives about 60 buckets.
    """
    until = until or utcnow()
    first, last = epoch_minute(since), epoch_minute(until) + 1
    span = max(1, last - first)
    width = bucket_minutes or max(1, math.ceil(span / 60))
    bucket = ((col(RequestLog.minute) - first) // width).label("bucket")
    is_error = case((col(RequestLog.status_code) >= 400, 1), else_=0)
    stmt: Any = (
        select(  # type: ignore[call-overload]
            bucket,
            RequestLog.latency_bin,
            func.count(),
            func.sum(is_error),
            func.sum(RequestLog.prompt_tokens),
            func.sum(RequestLog.response_tokens),
            func.sum(RequestLog.cost),
        )
        .where(col(RequestLog.minute) >= first, col(RequestLog.minute) < last)
        .group_by(bucket, RequestLog.latency_bin)
    )
    if endpoint_id is not None:
        stmt = stmt.where(RequestLog.endpoint_id == endpoint_id)
    buckets: dict[int, StatsBucket] = {}
    histograms: dict[int, dict[int, int]] = defaultdict(dict)
    overall: dict[int, int] = defaultdict(int)
    for b, lbin, count, errors, ptok, rtok, cost in session.exec(stmt).all():
        index = int(b)
        row = buckets.get(index)
        if row is None:
            row = buckets[index] = StatsBucket(start=_from_minute(first + index * width))
        row.requests += int(count)
        row.errors += int(errors or 0)
        row.prompt_tokens += int(ptok or 0)
        row.response_tokens += int(rtok or 0)
        row.cost += float(cost or 0.0)
        histograms[index][int(lbin)] = histograms[index].get(int(lbin), 0) + int(count)
        overall[int(lbin)] += int(count)
    series = []
    for index in range(math.ceil(span / width)):
        row = buckets.get(index) or StatsBucket(start=_from_minute(first + index * width))
        series.append(_fill(row, histograms.get(index, {}), width))
    totals = StatsBucket(
        start=_from_minute(first),
        requests=sum(b.requests for b in series),
        errors=sum(b.errors for b in series),
        prompt_tokens=sum(b.prompt_tokens for b in series),
        response_tokens=sum(b.response_tokens for b in series),
        cost=sum(b.cost for b in series),
    )
    return MonitoringStats(
        since=_from_minute(first),
        until=_from_minute(last),
        endpoint_id=endpoint_id,
        bucket_minutes=width,
        totals=_fill(totals, overall, span),
        buckets=series,
    )


# -- recent requests --------------------------------------------------------------------


class RequestSummary(BaseModel):
    request_id: str
    created_at: datetime
    route: str
    endpoint_id: int | None
    model: str | None
    api_key_id: int | None
    status_code: int
    latency_ms: float
    model_latency_ms: float | None
    overhead_ms: float | None
    prompt_tokens: int | None
    response_tokens: int | None
    cost: float | None
    error: str | None


class RequestDetail(RequestSummary):
    request_body: str | None
    response_body: str | None


StatusFilter = Literal["all", "ok", "error"] | int


def list_requests(
    *,
    session: Session,
    endpoint_id: int | None = None,
    status: StatusFilter = "all",
    since: datetime | None = None,
    until: datetime | None = None,
    text: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[RequestSummary]:
    """Logged requests, newest first. ``status`` is all, ok, error or one HTTP status;
    ``text`` matches the request id, the error and the bodies."""
    stmt = select(RequestLog)
    if endpoint_id is not None:
        stmt = stmt.where(RequestLog.endpoint_id == endpoint_id)
    if status == "ok":
        stmt = stmt.where(col(RequestLog.status_code) < 400)
    elif status == "error":
        stmt = stmt.where(col(RequestLog.status_code) >= 400)
    elif isinstance(status, int):
        stmt = stmt.where(RequestLog.status_code == status)
    if since is not None:
        stmt = stmt.where(col(RequestLog.created_at) >= since)
    if until is not None:
        stmt = stmt.where(col(RequestLog.created_at) < until)
    if text:
        pattern = f"%{text}%"
        stmt = stmt.where(
            or_(
                col(RequestLog.request_id).like(pattern),
                col(RequestLog.error).like(pattern),
                col(RequestLog.request_body).like(pattern),
                col(RequestLog.response_body).like(pattern),
            )
        )
    stmt = stmt.order_by(col(RequestLog.created_at).desc(), col(RequestLog.id).desc())
    rows = session.exec(stmt.offset(max(0, offset)).limit(max(1, min(limit, 1000)))).all()
    return [RequestSummary.model_validate(r, from_attributes=True) for r in rows]


def get_request(*, session: Session, request_id: str) -> RequestDetail:
    row = session.exec(select(RequestLog).where(RequestLog.request_id == request_id)).first()
    if row is None:
        raise NotFoundError(
            f"No logged request '{request_id}'.",
            hint="Entries appear within a second of the answer; check the id.",
        )
    return RequestDetail.model_validate(row, from_attributes=True)


def request_inputs(*, session: Session, request_ids: list[str]) -> list[dict[str, str]]:
    """The ``inputs`` of logged generate requests, as dataset rows (others are skipped)."""
    rows = session.exec(select(RequestLog).where(col(RequestLog.request_id).in_(request_ids))).all()
    out = []
    for row in sorted(rows, key=lambda r: r.created_at):
        try:
            inputs = json.loads(row.request_body or "").get("inputs")
        except (ValueError, AttributeError):
            continue
        if isinstance(inputs, dict) and inputs:
            out.append({str(k): "" if v is None else str(v) for k, v in inputs.items()})
    return out


# -- usage by day -----------------------------------------------------------------------------


class UsageDay(BaseModel):
    day: date
    endpoint_id: int | None
    endpoint: str | None
    model: str | None
    requests: int
    errors: int
    prompt_tokens: int
    response_tokens: int
    cost: float


def usage_by_day(
    *,
    session: Session,
    since: datetime | None = None,
    until: datetime | None = None,
    endpoint_id: int | None = None,
) -> list[UsageDay]:
    """Gateway requests, errors, tokens and cost per day, endpoint and model (last 30 days
    by default); requests that reached neither (e.g. the monitoring API) are left out."""
    until = until or utcnow()
    since = since or until - timedelta(days=30)
    day = (col(RequestLog.minute) // 1440).label("day")
    is_error = case((col(RequestLog.status_code) >= 400, 1), else_=0)
    stmt: Any = (
        select(  # type: ignore[call-overload]
            day,
            RequestLog.endpoint_id,
            RequestLog.model,
            func.count(),
            func.sum(is_error),
            func.sum(RequestLog.prompt_tokens),
            func.sum(RequestLog.response_tokens),
            func.sum(RequestLog.cost),
        )
        .where(
            col(RequestLog.minute) >= epoch_minute(since),
            col(RequestLog.minute) <= epoch_minute(until),
            or_(col(RequestLog.endpoint_id).is_not(None), col(RequestLog.model).is_not(None)),
        )
        .group_by(day, RequestLog.endpoint_id, RequestLog.model)
    )
    if endpoint_id is not None:
        stmt = stmt.where(RequestLog.endpoint_id == endpoint_id)
    names = {e.id: e.name for e in session.exec(select(Endpoint)).all()}
    out = [
        UsageDay(
            day=(_from_minute(int(d) * 1440)).date(),
            endpoint_id=eid,
            endpoint=names.get(eid) if eid is not None else None,
            model=model,
            requests=int(count),
            errors=int(errors or 0),
            prompt_tokens=int(ptok or 0),
            response_tokens=int(rtok or 0),
            cost=float(cost or 0.0),
        )
        for d, eid, model, count, errors, ptok, rtok, cost in session.exec(stmt).all()
    ]
    return sorted(out, key=lambda u: (u.day, u.endpoint or "", u.model or ""))
