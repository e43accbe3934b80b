"""Per-key requests-per-minute limits: the sliding-window arithmetic, the in-memory
counter (SQLite), the shared counter (PostgreSQL), and two real gateway workers
sharing one PostgreSQL database that together allow exactly the key's limit."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, col, select

from studio.core.errors import RateLimitedError
from studio.services import api_keys, rate_limits
from studio.services.apps import create_app as create_studio_app
from studio.services.rate_limits import WINDOW_S, allows, retry_after_s
from studio.store.tables import KeyRateWindow

ON_POSTGRES = os.environ.get("DATABASE_URL", "").startswith("postgres")
postgres_only = pytest.mark.skipif(
    not ON_POSTGRES, reason="the limit is shared by workers through PostgreSQL"
)
ROOT = Path(__file__).resolve().parents[2]
T0 = 1_800_000_000.0  # a minute's start (divisible by 60)


@pytest.fixture(autouse=True)
def fresh_counts() -> Iterator[None]:
    rate_limits.clear_rate_limits()  # key ids repeat in each test's fresh database
    yield
    rate_limits.clear_rate_limits()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _taken(key_id: int, limit: int, clock: Clock) -> bool:
    try:
        rate_limits.take(key_id=key_id, limit=limit, clock=clock)
    except RateLimitedError:
        return False
    return True


# -- the arithmetic --------------------------------------------------------------------


def test_a_fresh_key_gets_exactly_its_limit_in_a_minute() -> None:
    assert allows(limit=3, current=2, previous=0, elapsed=59.0)
    assert not allows(limit=3, current=3, previous=0, elapsed=0.0)


def test_the_previous_minute_fades_out_instead_of_resetting_at_the_edge() -> None:
    # 6 allowed last minute: 1 s into this one, nearly all of them still count ...
    assert not allows(limit=6, current=0, previous=6, elapsed=1.0)
    # ... and one place opens each 10 s (60 s / 6) as they fade.
    assert allows(limit=6, current=0, previous=6, elapsed=10.0)
    assert not allows(limit=6, current=1, previous=6, elapsed=19.0)
    assert allows(limit=6, current=1, previous=6, elapsed=20.0)


@pytest.mark.parametrize(
    ("limit", "current", "previous", "elapsed"),
    [(6, 0, 6, 1.0), (6, 1, 6, 12.5), (5, 5, 0, 3.0), (5, 5, 5, 40.0), (1, 1, 1, 59.5)],
)
def test_retry_after_names_the_first_moment_a_request_fits(
    limit: int, current: int, previous: int, elapsed: float
) -> None:
    wait = retry_after_s(limit=limit, current=current, previous=previous, elapsed=elapsed)
    assert wait > 0

    def fits_at(t: float) -> bool:  # the windows as they will be at `elapsed + t`
        later = elapsed + t
        if later < WINDOW_S:
            return allows(limit=limit, current=current, previous=previous, elapsed=later)
        return allows(limit=limit, current=0, previous=current, elapsed=later - WINDOW_S)

    assert fits_at(wait + 1e-6)
    assert not fits_at(wait - 0.01)


# -- in memory (SQLite) ----------------------------------------------------------------


def test_in_memory_counter_holds_across_the_minute_edge() -> None:
    if ON_POSTGRES:
        pytest.skip("on PostgreSQL the counts are shared (tested below)")
    clock = Clock(T0 + 50)
    assert [_taken(1, 4, clock) for _ in range(5)] == [True, True, True, True, False]
    clock.now = T0 + 61  # a new minute: the 4 just allowed still count (weight 59/60)
    with pytest.raises(RateLimitedError) as refused:
        rate_limits.take(key_id=1, limit=4, clock=clock)
    assert refused.value.retry_after_s == 14  # at T0 + 75 a quarter has faded: one fits
    assert "4 requests per minute" in refused.value.message
    clock.now = T0 + 75.5
    assert _taken(1, 4, clock)
    assert _taken(2, 4, clock), "another key has its own count"


# -- PostgreSQL --------------------------------------------------------------------------


def _limited_key(session: Session, limit: int) -> api_keys.CreatedKey:
    app = create_studio_app(session=session, name="Limited")
    created = api_keys.create_key(
        session=session, app=app.id, name="limited", rate_limit_per_minute=limit
    )
    session.commit()
    return created


@postgres_only
def test_shared_counter_allows_the_limit_and_refuses_with_retry_after(session: Session) -> None:
    key_id = _limited_key(session, 3).key.id
    clock = Clock(T0 + 30)
    assert [_taken(key_id, 3, clock) for _ in range(3)] == [True, True, True]
    rate_limits.clear_rate_limits()  # as another worker: it has not seen the refusal
    with pytest.raises(RateLimitedError) as refused:
        rate_limits.take(key_id=key_id, limit=3, clock=clock)
    assert refused.value.retry_after_s == 30 + 20  # next minute, once a third has faded
    clock.now = T0 + 60 + 20.5
    assert _taken(key_id, 3, clock)
    rows = session.exec(select(KeyRateWindow).order_by(col(KeyRateWindow.window_start))).all()
    assert [(r.window_start, r.count) for r in rows] == [(T0, 3), (T0 + 60, 1)]


@postgres_only
def test_old_windows_are_deleted_from_time_to_time(session: Session) -> None:
    key_id = _limited_key(session, 10).key.id
    assert _taken(key_id, 10, Clock(T0))
    assert _taken(key_id, 10, Clock(T0 + 60))  # cleaned just now: not again within a minute
    rate_limits.clear_rate_limits()  # a minute later in this process
    assert _taken(key_id, 10, Clock(T0 + 60 * 7))
    session.expire_all()
    starts = session.exec(select(KeyRateWindow.window_start)).all()
    assert sorted(starts) == [T0 + 60 * 7]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def gateways(tmp_path: Path) -> Iterator[Callable[[int], list[str]]]:
    """Start ``n`` real gateway processes (``studio serve``) on one database."""
    started: list[subprocess.Popen[bytes]] = []

    def start(n: int) -> list[str]:
        urls = []
        for i in range(n):
            port = _free_port()
            log = (tmp_path / f"gateway-{i}.log").open("wb")
            code = f"from studio.cli.main import main; main(['serve', '--port', '{port}'])"
            started.append(
                subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=log, stderr=log)
            )
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 60
        for proc, url in zip(started, urls, strict=True):
            while True:
                assert proc.poll() is None, (tmp_path / "gateway-0.log").read_text()
                assert time.monotonic() < deadline, "the gateways did not start"
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        return urls

    yield start
    for proc in started:
        proc.send_signal(signal.SIGTERM)
    for proc in started:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@postgres_only
def test_two_gateway_workers_together_allow_exactly_the_limit(
    session: Session, gateways: Callable[[int], list[str]]
) -> None:
    limit = 5
    secret = _limited_key(session, limit).secret
    other = api_keys.create_key(session=session, app="Limited", name="free").secret
    session.commit()
    first, second = gateways(2)
    headers = {"Authorization": f"Bearer {secret}"}
    answers = [
        httpx.get(f"{(first, second)[i % 2]}/v1/models", headers=headers, timeout=10)
        for i in range(3 * limit)
    ]
    statuses = [r.status_code for r in answers]
    assert statuses.count(200) == limit, statuses
    assert statuses.count(429) == 2 * limit, statuses
    assert {r.url.port for r in answers if r.status_code == 200} == {
        httpx.URL(first).port,
        httpx.URL(second).port,
    }, "both workers served some of the limit"
    for refused in (r for r in answers if r.status_code == 429):
        assert int(refused.headers["retry-after"]) >= 1
        message = refused.json()["error"]["message"]
        assert message == f"This API key allows {limit} requests per minute; that limit is used up."
    free = {"Authorization": f"Bearer {other}"}
    assert httpx.get(f"{first}/v1/models", headers=free, timeout=10).status_code == 200
