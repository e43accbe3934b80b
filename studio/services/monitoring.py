"""Monitoring: what the gateway's request log says about traffic, latency and errors.

* :func:`request_stats` gives requests per minute, error rate, tokens, cost and
  latency p50/p95/p99, overall and per time bucket, for a window and optionally
  one endpoint. It reads the per-minute rollup
  (:class:`~studio.store.tables.RequestRollup`), never the raw log: one row per
  (minute, endpoint, latency class), kept up to date by :func:`add_to_rollup`,
  which the gateway's request-log writer calls in the same transaction as it
  inserts the raw rows (an upsert, so several workers sharing PostgreSQL add to
  the same rows). A day of traffic is at most minutes x classes rows whatever
  the number of requests, and the percentiles are read from those histograms.
  Latency classes are 5% wide on a log scale (:func:`latency_bin`), so a
  percentile is within about 2.5% of the exact value.
* :func:`list_requests` and :func:`get_request`: the recent-requests table with
  filters (status, time, text) and one request in detail.
* :func:`usage_by_day`: requests, tokens and cost per day, endpoint and model.
* :func:`request_inputs`: the ``inputs`` of logged requests, as dataset rows.

Rules: a person reads the traffic of their apps' endpoints only (administrators all of it),
an API key its app's (:mod:`studio.services.app_access`); reviewers none.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from collections.abc import Collection
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import case, func, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from studio.core.errors import ConflictError, DatasetError, NotFoundError
from studio.services.app_access import check_app, visible_apps
from studio.services.datasets import latest_version, load_rows, save_edited_version, upload_dataset
from studio.services.members import require_member_role
from studio.store.tables import (
    Dataset,
    DatasetVersion,
    Endpoint,
    RequestLog,
    RequestRollup,
    utcnow,
)

__all__ = [
    "MonitoringStats",
    "RequestDetail",
    "RequestSummary",
    "StatsBucket",
    "UsageDay",
    "add_to_rollup",
    "bin_latency_ms",
    "epoch_minute",
    "get_request",
    "latency_bin",
    "list_requests",
    "request_inputs",
    "request_stats",
    "requests_to_dataset",
    "usage_by_day",
]

_RATIO = math.log(1.05)
_FLOOR_MS = 0.01


def _scope(session: Session, ids: Collection[int] | None, action: str) -> Collection[int] | None:
    """``ids`` narrowed to the endpoints of the caller's apps (administrators: as given)."""
    visible = visible_apps(session=session, action=action)
    if visible is None:
        return ids
    stmt = select(Endpoint.id).where(col(Endpoint.app_id).in_(visible))
    mine = {int(i) for i in session.exec(stmt).all() if i is not None}
    return mine if ids is None else mine & set(ids)


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


# -- the rollup -----------------------------------------------------------------------

_ROLLUP_KEY = ("minute", "endpoint_id", "latency_bin")
_ROLLUP_SUMS = ("requests", "errors", "prompt_tokens", "response_tokens", "cost")


def add_to_rollup(*, session: Session, rows: list[dict[str, Any]]) -> int:
    """Add raw request-log rows (dicts with ``minute``, ``endpoint_id``, ``latency_bin``,
    ``status_code``, tokens and cost) to the per-minute rollup; returns the rollup rows
    touched.

    Call it in the transaction that inserts those rows, with exactly the rows that
    were inserted, so the rollup counts each request once. Rows are upserted in key
    order, so concurrent writers (several workers on PostgreSQL) add up without
    deadlocking.
    """
    totals: dict[tuple[int, int, int], list[Any]] = {}
    for row in rows:
        key = (int(row["minute"]), int(row.get("endpoint_id") or 0), int(row["latency_bin"]))
        acc = totals.get(key)
        if acc is None:
            acc = totals[key] = [0, 0, 0, 0, 0.0]
        acc[0] += 1
        acc[1] += row["status_code"] >= 400
        acc[2] += row.get("prompt_tokens") or 0
        acc[3] += row.get("response_tokens") or 0
        acc[4] += row.get("cost") or 0.0
    if not totals:
        return 0
    values = [
        {**dict(zip(_ROLLUP_KEY, key, strict=True)), **dict(zip(_ROLLUP_SUMS, acc, strict=True))}
        for key, acc in sorted(totals.items())
    ]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = RequestRollup.__table__  # type: ignore[attr-defined]
    stmt = insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(_ROLLUP_KEY),
        set_={name: table.c[name] + stmt.excluded[name] for name in _ROLLUP_SUMS},
    )
    session.connection().execute(stmt, values)  # Core executemany, not the ORM bulk path
    return len(values)


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
    endpoint_ids: Collection[int] | None = None,
) -> MonitoringStats:
    """Traffic, errors, tokens, cost and latency percentiles from ``since`` to ``until``.

    ``bucket_minutes`` defaults to a width that gives about 60 buckets. ``endpoint_ids``
    (when not ``None``) limits the figures to those endpoints: the gateway passes the
    endpoints of the calling key's app.
    """
    endpoint_ids = _scope(session, endpoint_ids, "read traffic")
    until = until or utcnow()
    first, last = epoch_minute(since), epoch_minute(until) + 1
    span = max(1, last - first)
    width = min(bucket_minutes or max(1, math.ceil(span / 60)), span)
    bucket = ((col(RequestRollup.minute) - first) // width).label("bucket")
    stmt: Any = (
        select(  # type: ignore[call-overload]
            bucket,
            RequestRollup.latency_bin,
            func.sum(RequestRollup.requests),
            func.sum(RequestRollup.errors),
            func.sum(RequestRollup.prompt_tokens),
            func.sum(RequestRollup.response_tokens),
            func.sum(RequestRollup.cost),
        )
        .where(col(RequestRollup.minute) >= first, col(RequestRollup.minute) < last)
        .group_by(bucket, RequestRollup.latency_bin)
    )
    if endpoint_id is not None:
        stmt = stmt.where(RequestRollup.endpoint_id == endpoint_id)
    if endpoint_ids is not None:
        stmt = stmt.where(col(RequestRollup.endpoint_id).in_(list(endpoint_ids)))
    # Plain lists while summing (pydantic attribute writes are slow at this volume).
    sums: dict[int, list[Any]] = {}  # bucket -> [requests, errors, ptok, rtok, cost]
    histograms: dict[int, dict[int, int]] = defaultdict(dict)
    overall: dict[int, int] = defaultdict(int)
    for b, lbin, count, errors, ptok, rtok, cost in session.exec(stmt).all():
        index, lbin, count = int(b), int(lbin), int(count)
        acc = sums.get(index)
        if acc is None:
            acc = sums[index] = [0, 0, 0, 0, 0.0]
        acc[0] += count
        acc[1] += int(errors or 0)
        acc[2] += int(ptok or 0)
        acc[3] += int(rtok or 0)
        acc[4] += float(cost or 0.0)
        hist = histograms[index]
        hist[lbin] = hist.get(lbin, 0) + count
        overall[lbin] += count
    series = []
    for index in range(math.ceil(span / width)):
        acc = sums.get(index, [0, 0, 0, 0, 0.0])
        row = StatsBucket(
            start=_from_minute(first + index * width),
            requests=acc[0],
            errors=acc[1],
            prompt_tokens=acc[2],
            response_tokens=acc[3],
            cost=acc[4],
        )
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
    retrieval: dict[str, Any] | None = None  # the chunks an endpoint's retrieval step used


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
    endpoint_ids: Collection[int] | None = None,
) -> list[RequestSummary]:
    """Logged requests, newest first. ``status`` is all, ok, error or one HTTP status;
    ``text`` matches the request id, the error and the bodies; ``endpoint_ids`` (when
    not ``None``) keeps only requests to those endpoints."""
    endpoint_ids = _scope(session, endpoint_ids, "read traffic")
    stmt = select(RequestLog)
    if endpoint_id is not None:
        stmt = stmt.where(RequestLog.endpoint_id == endpoint_id)
    if endpoint_ids is not None:
        stmt = stmt.where(col(RequestLog.endpoint_id).in_(list(endpoint_ids)))
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


def get_request(
    *, session: Session, request_id: str, endpoint_ids: Collection[int] | None = None
) -> RequestDetail:
    """One logged request with its bodies. With ``endpoint_ids``, a request to another
    endpoint is reported as missing (the caller may not learn that it exists)."""
    endpoint_ids = _scope(session, endpoint_ids, "read traffic")
    row = session.exec(select(RequestLog).where(RequestLog.request_id == request_id)).first()
    if row is not None and endpoint_ids is not None and row.endpoint_id not in endpoint_ids:
        row = None
    if row is None:
        raise NotFoundError(
            f"No logged request '{request_id}'.",
            hint="Entries appear within a second of the answer; check the id.",
        )
    return RequestDetail.model_validate(row, from_attributes=True)


def request_inputs(*, session: Session, request_ids: list[str]) -> list[dict[str, str]]:
    """The ``inputs`` of logged generate requests, as dataset rows (others are skipped)."""
    visible = _scope(session, None, "read traffic")
    stmt = select(RequestLog).where(col(RequestLog.request_id).in_(request_ids))
    if visible is not None:
        stmt = stmt.where(col(RequestLog.endpoint_id).in_(list(visible)))
    rows = session.exec(stmt).all()
    out = []
    for row in sorted(rows, key=lambda r: r.created_at):
        try:
            inputs = json.loads(row.request_body or "").get("inputs")
        except (ValueError, AttributeError):
            continue
        if isinstance(inputs, dict) and inputs:
            out.append({str(k): "" if v is None else str(v) for k, v in inputs.items()})
    return out


def requests_to_dataset(
    *,
    session: Session,
    app_id: int,
    request_ids: list[str],
    dataset_id: int | None = None,
    name: str | None = None,
) -> DatasetVersion:
    """Turn logged requests into test rows: a new version of dataset ``dataset_id`` with the
    requests' ``inputs`` appended (new columns added), or a new dataset called ``name``."""
    require_member_role("add requests to datasets")
    check_app(session=session, app_id=app_id, action="add requests to datasets")
    rows = request_inputs(session=session, request_ids=request_ids)
    if not rows:
        raise DatasetError(
            "None of the chosen requests has template inputs to turn into rows.",
            hint="Only calls that send 'inputs' (an endpoint's generate route, or the "
            "OpenAI-compatible routes with an 'inputs' field) can become dataset rows.",
        )
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    note = f"added {len(rows)} logged request(s) from the gateway"
    if dataset_id is not None:
        dataset = session.get(Dataset, dataset_id)
        if dataset is None or dataset.app_id != app_id:
            raise NotFoundError(
                f"No dataset {dataset_id} in this app.", hint="Pick one of the app's datasets."
            )
        base = latest_version(session=session, dataset_id=dataset_id)
        assert base.id is not None
        merged = list(base.columns) + [c for c in columns if c not in base.columns]
        existing = load_rows(session=session, version_id=base.id)
        return save_edited_version(
            session=session, version_id=base.id, rows=existing + rows, columns=merged, note=note
        )
    clean = (name or "").strip()
    taken = session.exec(
        select(Dataset).where(Dataset.app_id == app_id, Dataset.name == clean)
    ).first()
    if clean and taken is not None:
        raise ConflictError(
            f"This app already has a dataset called '{clean}'.",
            hint="Add the requests to that dataset instead, or pick another name.",
        )
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    version = upload_dataset(
        session=session,
        app_id=app_id,
        name=clean,
        data=out.getvalue().encode("utf-8"),
        filename="gateway-requests.csv",
    )
    version.note = note
    session.add(version)
    session.flush()
    return version


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
    endpoint_ids: Collection[int] | None = None,
) -> list[UsageDay]:
    """Gateway requests, errors, tokens and cost per day, endpoint and model (last 30 days
    by default); requests that reached neither (e.g. the monitoring API) are left out."""
    endpoint_ids = _scope(session, endpoint_ids, "read usage")
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
    if endpoint_ids is not None:
        stmt = stmt.where(col(RequestLog.endpoint_id).in_(list(endpoint_ids)))
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
