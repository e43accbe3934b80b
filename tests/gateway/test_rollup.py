"""The monitoring statistics read a per-minute rollup; it must say exactly what the raw
request log says: after a restart, with two writers at once, and when a batch is retried."""

from __future__ import annotations

import math
import random
import threading
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import insert
from sqlmodel import Session, delete, select

from studio.gateway.request_log import LogEntry, RequestLogger
from studio.services import endpoints
from studio.services.apps import create_app
from studio.services.monitoring import (
    MonitoringStats,
    bin_latency_ms,
    epoch_minute,
    latency_bin,
    request_stats,
)
from studio.store import get_engine, reset_engine, session_scope
from studio.store.db import alembic_config
from studio.store.tables import RequestLog, RequestRollup, utcnow
from tests.gateway.conftest import make_variant

NOW = utcnow().replace(second=30, microsecond=0)
SINCE = NOW - timedelta(hours=3)


@pytest.fixture
def endpoint_ids(session: Session, mock_provider: Any) -> list[int]:
    app = create_app(session=session, name="Rollup")
    assert app.id is not None
    ids = []
    for name in ("one", "two"):
        make_variant(session, app.id, name, "Hi {{who}}.")
        ids.append(endpoints.deploy(session=session, app=app.id, variant=name, name=name).id)
    session.commit()
    return ids


def entries(n: int, endpoint_ids: list[int], *, seed: int, prefix: str) -> list[LogEntry]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        out.append(
            LogEntry(
                request_id=f"{prefix}-{i}",
                route="POST /v1/endpoints/x/generate",
                status_code=rng.choice([200, 200, 200, 200, 422, 502]),
                latency_ms=rng.lognormvariate(2.0, 0.8),
                created_at=NOW - timedelta(seconds=rng.uniform(0, 3 * 3600 - 60)),
                endpoint_id=rng.choice([*endpoint_ids, None]),
                prompt_tokens=rng.choice([None, rng.randint(1, 50)]),
                response_tokens=rng.randint(0, 30),
                cost=rng.choice([None, rng.uniform(0, 0.01)]),
            )
        )
    return out


def raw_stats(
    session: Session, since: datetime, until: datetime, width: int, endpoint_id: int | None
) -> dict[int, dict[str, Any]]:
    """What the raw rows say, computed here without the rollup or SQL aggregation."""
    first = epoch_minute(since)
    rows = session.exec(select(RequestLog)).all()
    out: dict[int, dict[str, Any]] = defaultdict(
        lambda: {"requests": 0, "errors": 0, "ptok": 0, "rtok": 0, "cost": 0.0, "bins": []}
    )
    for row in rows:
        minute = epoch_minute(row.created_at)
        if not first <= minute <= epoch_minute(until):
            continue
        if endpoint_id is not None and row.endpoint_id != endpoint_id:
            continue
        b = out[(minute - first) // width]
        b["requests"] += 1
        b["errors"] += row.status_code >= 400
        b["ptok"] += row.prompt_tokens or 0
        b["rtok"] += row.response_tokens or 0
        b["cost"] += row.cost or 0.0
        b["bins"].append(latency_bin(row.latency_ms))
    return out


def percentile(bins: list[int], q: float) -> float | None:
    if not bins:
        return None
    ordered = sorted(bins)
    return round(bin_latency_ms(ordered[math.ceil(q * len(ordered)) - 1]), 2)


def assert_same(stats: MonitoringStats, raw: dict[int, dict[str, Any]]) -> None:
    assert stats.totals.requests == sum(b["requests"] for b in raw.values())
    all_bins = [x for b in raw.values() for x in b["bins"]]
    assert stats.totals.p50_ms == percentile(all_bins, 0.50)
    assert stats.totals.p99_ms == percentile(all_bins, 0.99)
    for index, bucket in enumerate(stats.buckets):
        expected = raw.get(index)
        if expected is None:
            assert bucket.requests == 0
            continue
        assert bucket.requests == expected["requests"]
        assert bucket.errors == expected["errors"]
        assert bucket.prompt_tokens == expected["ptok"]
        assert bucket.response_tokens == expected["rtok"]
        assert bucket.cost == pytest.approx(expected["cost"], abs=1e-9)
        assert bucket.p50_ms == percentile(expected["bins"], 0.50)
        assert bucket.p95_ms == percentile(expected["bins"], 0.95)
        assert bucket.p99_ms == percentile(expected["bins"], 0.99)


def check_against_raw(endpoint_ids: list[int]) -> None:
    with session_scope() as session:
        for endpoint_id in [None, *endpoint_ids]:
            for width in (None, 1, 7):
                stats = request_stats(
                    session=session,
                    since=SINCE,
                    until=NOW,
                    endpoint_id=endpoint_id,
                    bucket_minutes=width,
                )
                raw = raw_stats(session, SINCE, NOW, stats.bucket_minutes, endpoint_id)
                assert_same(stats, raw)


def write_all(logger: RequestLogger, batch: list[LogEntry]) -> None:
    for entry in batch:
        logger.log(entry)
    while logger.pending:
        assert logger.flush()


def test_stats_from_the_rollup_equal_stats_from_the_raw_rows(endpoint_ids: list[int]) -> None:
    write_all(RequestLogger(), entries(1500, endpoint_ids, seed=1, prefix="a"))
    with session_scope() as session:
        assert len(session.exec(select(RequestRollup)).all()) < 1500  # it is a rollup
        stats = request_stats(session=session, since=SINCE, until=NOW)
    assert stats.totals.requests == 1500
    check_against_raw(endpoint_ids)


def test_the_rollup_keeps_counting_after_a_restart(endpoint_ids: list[int]) -> None:
    first = RequestLogger()
    first.start()
    for entry in entries(400, endpoint_ids, seed=2, prefix="before"):
        first.log(entry)
    first.stop()  # a clean shutdown drains the queue
    reset_engine()  # a new process: nothing kept in memory
    second = RequestLogger()
    second.start()
    for entry in entries(300, endpoint_ids, seed=3, prefix="after"):
        second.log(entry)
    second.stop()
    with session_scope() as session:
        assert request_stats(session=session, since=SINCE, until=NOW).totals.requests == 700
    check_against_raw(endpoint_ids)


def test_two_writers_at_once_add_up_exactly(endpoint_ids: list[int]) -> None:
    # Same minutes, endpoints and latency classes from both: every rollup row is shared.
    loggers = [RequestLogger(), RequestLogger()]
    batches = [entries(800, endpoint_ids, seed=4, prefix=p) for p in ("w1", "w2")]
    for batch in batches:  # the second writer's entries collide with the first's keys
        for e in batch[:400]:
            e.created_at, e.latency_ms = NOW - timedelta(minutes=5), 12.0

    def run(logger: RequestLogger, batch: list[LogEntry]) -> None:
        for start in range(0, len(batch), 50):
            for entry in batch[start : start + 50]:
                logger.log(entry)
            while logger.pending:
                logger.flush()  # a locked database leaves the batch queued for a retry

    threads = [
        threading.Thread(target=run, args=pair) for pair in zip(loggers, batches, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    with session_scope() as session:
        stats = request_stats(session=session, since=SINCE, until=NOW, bucket_minutes=1)
        shared = [
            b for b in stats.buckets if b.start == NOW.replace(second=0) - timedelta(minutes=5)
        ]
    assert stats.totals.requests == 1600
    assert shared[0].requests >= 800
    check_against_raw(endpoint_ids)


def test_a_retried_batch_that_was_written_is_not_counted_twice(endpoint_ids: list[int]) -> None:
    batch = entries(200, endpoint_ids, seed=5, prefix="r")
    RequestLogger._write(batch[:120], {})
    RequestLogger._write(batch, {})  # the first 120 again (the commit was not acknowledged)
    with session_scope() as session:
        assert request_stats(session=session, since=SINCE, until=NOW).totals.requests == 200
    check_against_raw(endpoint_ids)


def test_the_migration_fills_the_rollup_from_requests_logged_before_it(
    endpoint_ids: list[int],
) -> None:
    rows = [e.row() for e in entries(500, endpoint_ids, seed=6, prefix="old")]
    engine = get_engine()
    with engine.begin() as conn:
        conn.execute(insert(RequestLog), rows)  # no rollup: as logged before 0003
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    command.downgrade(cfg, "0002")
    command.upgrade(cfg, "head")
    check_against_raw(endpoint_ids)
    with session_scope() as session:
        session.execute(delete(RequestRollup))
        assert request_stats(session=session, since=SINCE, until=NOW).totals.requests == 0
