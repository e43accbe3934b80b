"""No request can wipe request-log entries (issue 11, item 5).

Hostile paths (NUL, ``%00``, invalid UTF-8, very long, odd unicode), headers and bodies
are served and logged like any other request: the log holds exactly the requests
served, on SQLite and on PostgreSQL (which refuses NUL in text). An entry the database
still refuses is quarantined on its own; the bounded queue counts what it refused, and
the Monitoring page says so.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import func, select
from streamlit.testing.v1 import AppTest

from studio.gateway.request_log import LogEntry, RequestLogger, clean_text, log_stats
from studio.store import session_scope
from studio.store.tables import ModelCall, RequestLog
from tests.gateway.conftest import Deployed
from tests.gateway.test_request_log import INPUTS, LiveServer

ROOT = Path(__file__).resolve().parents[2]

HOSTILE_PATHS = [
    "/%00",
    "/a%00b%00",
    "/v1/endpoints/email%00/generate",
    "/%ff%fe%fd",  # not UTF-8
    "/%ED%A0%80",  # an encoded lone surrogate
    "/" + "a" * 12_000,
    "/ünïcødé/🙂/\u202eevil/\u200b",
    "/api/v1/models/mock%00echo/execute",
]


def _hostile_requests(http: httpx.AsyncClient, headers: dict[str, str]) -> list[Any]:
    calls: list[Any] = []
    for path in HOSTILE_PATHS:
        calls.append(http.get(path, headers=headers))
        calls.append(http.post(path, content=b"\x00\xff\xfe{", headers=headers))
    generate = "/v1/endpoints/email/generate"
    calls += [
        # NUL and a right-to-left mark in the inputs: rendered, sent to the model, echoed
        http.post(generate, json={"inputs": {"event": "a\x00b", "who": "\u200f"}}, headers=headers),
        http.post(generate, content=b"\x00" * 5000, headers=headers),  # not JSON at all
        http.post(generate, json={"inputs": {**INPUTS, "event": "x" * 300_000}}, headers=headers),
        http.post(
            generate,
            json={"inputs": INPUTS},
            headers={**headers, "x-odd": b"\xff\xfe\x80", "user-agent": "A" * 8000},
        ),
        http.post(generate, json={"inputs": INPUTS}, headers={"x-api-key": b"\xff" * 300}),
        http.post(generate, json={"inputs": INPUTS}, headers={"authorization": "Bearer %00"}),
        http.post(
            "/v1/chat/completions",
            json={"model": "mo\x00del", "messages": [{"role": "user", "content": "\x00"}]},
            headers=headers,
        ),
        http.post("/v1/embeddings", json={"model": "\x00", "input": ["\x00"]}, headers=headers),
    ]
    for _ in range(40):  # ordinary traffic in the same batches
        calls.append(http.post(generate, json={"inputs": INPUTS}, headers=headers))
    return calls


def test_hostile_requests_are_each_logged_once_and_take_no_entry_down(
    deployed: Deployed,
) -> None:
    live = LiveServer()
    live.logger.interval_s = 30  # everything lands in one batch, written by the drain
    live.start()

    async def flood() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=20)
        async with httpx.AsyncClient(base_url=live.url, limits=limits, timeout=30) as http:
            return list(await asyncio.gather(*_hostile_requests(http, deployed.headers)))

    try:
        responses = asyncio.run(flood())
    finally:
        live.stop()  # a clean shutdown drains the queue
    statuses = [r.status_code for r in responses]
    assert all(s < 500 for s in statuses), [
        (r.request.url.path[:60], r.status_code, r.text[:300])
        for r in responses
        if r.status_code >= 500
    ]
    assert statuses.count(200) >= 42  # the ordinary calls and the echoed NUL / surrogate ones
    ids = [r.headers["x-request-id"] for r in responses]
    assert len(set(ids)) == len(ids)
    stats = live.logger.stats()
    assert (stats.quarantined, stats.dropped, stats.refused) == (0, 0, 0)
    with session_scope() as session:
        logged = list(session.exec(select(RequestLog.request_id)).all())
        failed = session.exec(
            select(func.count()).select_from(RequestLog).where(RequestLog.status_code == 500)
        ).one()
        routes = list(session.exec(select(RequestLog.route)).all())
        calls = session.exec(select(func.count()).select_from(ModelCall)).one()
    assert sorted(logged) == sorted(ids)  # every request served, once, nothing else
    assert failed == 0
    assert not any("\x00" in r for r in routes)
    assert "GET /\ufffd" in routes  # the NUL is shown, not silently dropped
    assert max(len(r) for r in routes) < 2200  # the 12 000-character path is cut
    assert calls == statuses.count(200)  # each model call that answered is in the usage


def test_an_entry_the_database_still_refuses_is_quarantined_alone(deployed: Deployed) -> None:
    logger = RequestLogger()
    good = [
        LogEntry(request_id=f"ok-{i}", route="GET /x", status_code=200, latency_ms=1.0)
        for i in range(5)
    ]
    # A key id no key has: the foreign key refuses this row however it is cleaned.
    bad = LogEntry(
        request_id="bad", route="GET /x", status_code=200, latency_ms=1.0, api_key_id=987_654
    )
    for entry in [*good[:2], bad, *good[2:]]:
        logger.log(entry)
    assert logger.flush()
    assert logger.pending == 0
    with session_scope() as session:
        logged = set(session.exec(select(RequestLog.request_id)).all())
    assert logged == {e.request_id for e in good}
    assert (logger.written, logger.quarantined) == (5, 1)


def test_clean_text_replaces_nul_and_surrogates_and_cuts() -> None:
    assert clean_text("a\x00b", 10) == "a\ufffdb"
    assert "\udc80" not in (clean_text("x\udc80y", 10) or "")
    assert (clean_text("x\udc80y", 10) or "").encode("utf-8")  # now encodable
    cut = clean_text("z" * 50, 10) or ""
    assert cut.startswith("z" * 10) and "50 characters" in cut
    assert clean_text(None, 5) is None


def test_a_full_queue_counts_what_it_refused_and_the_monitoring_page_says_so(
    deployed: Deployed,
) -> None:
    logger = RequestLogger(interval_s=60, max_pending=3)
    logger.start()  # the embedded gateway's logger, as the UI process runs it
    try:
        for i in range(5):
            logger.log(
                LogEntry(request_id=f"q-{i}", route="GET /x", status_code=200, latency_ms=1.0)
            )
        assert (logger.pending, logger.refused) == (3, 2)
        assert log_stats().refused == 2
        r = deployed.client.post(  # something for the page to chart
            "/v1/endpoints/email/generate", json={"inputs": INPUTS}, headers=deployed.headers
        )
        assert r.status_code == 200
        deployed.flush()
        at = AppTest.from_file(str(ROOT / "pages" / "monitoring.py"), default_timeout=60)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        warnings = [w.value for w in at.warning]
        assert any(
            "2 requests were served but not logged because the log queue was full" in w
            for w in warnings
        ), warnings
    finally:
        logger.stop()
    assert log_stats().refused == 0  # a stopped logger no longer counts
