"""Deploy, redeploy, rollback, undeploy, history; live within a second; keys; monitoring."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session

from studio.core.errors import (
    ConflictError,
    NotFoundError,
    RequestValidationError,
    RevokedApiKeyError,
)
from studio.core.prompting import build_payload, output_text, response_tokens
from studio.core.schemas import Message, ModelType
from studio.gateway.request_log import LogEntry, RequestLogger
from studio.services import api_keys, endpoint_calls, endpoints, monitoring
from studio.services.apps import create_app as create_studio_app
from studio.store import session_scope
from studio.store.tables import utcnow
from tests.gateway.conftest import make_variant, save_template


@pytest.fixture
def app_id(session: Session, mock_provider: Any) -> int:
    app = create_studio_app(session=session, name="Copy")
    assert app.id is not None
    make_variant(session, app.id, "email", "v1 {{event}}")
    session.commit()
    return app.id


def _answer(name: str = "copy-email") -> str:
    return asyncio.run(endpoint_calls.generate(name=name, inputs={"event": "fair"})).output


def test_deploy_redeploy_rollback_undeploy_keep_history(session: Session, app_id: int) -> None:
    row = endpoints.deploy(session=session, app="Copy", variant="email")
    assert (row.name, row.version, row.active) == ("copy-email", 1, True)
    assert row.path == "/v1/endpoints/copy-email/generate"
    session.commit()
    assert _answer() == "echo: v1 fair"
    variant_id = endpoints.get_endpoint(session=session, name="copy-email").variant_id
    assert variant_id is not None
    save_template(session, variant_id, "v2 {{event}}")
    endpoints.deploy(session=session, app="Copy", variant="email", name="copy-email")
    session.commit()
    assert _answer() == "echo: v2 fair"  # live at once in this process
    back = endpoints.rollback(session=session, name="copy-email")
    session.commit()
    assert back.version == 1 and _answer() == "echo: v1 fair"
    assert endpoints.rollback(session=session, name="copy-email", version=2).version == 2
    off = endpoints.undeploy(session=session, name="copy-email")
    session.commit()
    assert off.active is False
    with pytest.raises(NotFoundError, match="No deployed endpoint"):
        _answer()
    actions = [
        (r.action, r.version)
        for r in endpoints.endpoint_history(session=session, name="copy-email")
    ]
    assert actions == [
        ("undeploy", 2),
        ("rollback", 2),
        ("rollback", 1),
        ("deploy", 2),
        ("deploy", 1),
    ]


def test_another_process_sees_a_redeploy_within_a_second(session: Session, app_id: int) -> None:
    endpoints.deploy(session=session, app="Copy", variant="email", name="e")
    session.commit()
    assert _answer("e") == "echo: v1 fair"
    variant_id = endpoints.get_endpoint(session=session, name="e").variant_id
    assert variant_id is not None
    save_template(session, variant_id, "v2 {{event}}")
    session.commit()
    # Another process deploys: this process's cache is not cleared, only the database changes.
    with session_scope() as other:
        from sqlmodel import select

        from studio.store.tables import Endpoint, VariantVersion

        ep = other.exec(select(Endpoint).where(Endpoint.name == "e")).one()
        v2 = other.exec(select(VariantVersion).where(VariantVersion.version == 2)).one()
        ep.variant_version_id = v2.id
        other.add(ep)
    started = time.monotonic()
    while _answer("e") != "echo: v2 fair":
        assert time.monotonic() - started < 1.0
        time.sleep(0.05)


def test_deploy_checks_names_versions_and_other_apps(session: Session, app_id: int) -> None:
    with pytest.raises(RequestValidationError, match="name"):
        endpoints.deploy(session=session, app="Copy", variant="email", name="Bad Name!")
    with pytest.raises(NotFoundError, match="no version 7"):
        endpoints.deploy(session=session, app="Copy", variant="email", version=7)
    endpoints.deploy(session=session, app="Copy", variant="email", name="shared")
    other = create_studio_app(session=session, name="Other")
    assert other.id is not None
    make_variant(session, other.id, "x", "hi")
    with pytest.raises(ConflictError, match="another app"):
        endpoints.deploy(session=session, app="Other", variant="x", name="shared")
    with pytest.raises(ConflictError, match="no earlier version"):
        endpoints.rollback(session=session, name="shared")


def test_keys_are_shown_once_stored_hashed_and_revocable(session: Session, app_id: int) -> None:
    created = api_keys.create_key(session=session, app="Copy", name="web", rate_limit_per_minute=5)
    session.commit()
    assert created.secret.startswith("sk-studio-")
    listed = api_keys.list_keys(session=session)
    assert listed[0].prefix == created.secret[:14] and not hasattr(listed[0], "secret")
    assert created.secret not in repr(listed)
    identity = api_keys.verify_key(secret=created.secret)
    assert identity.app_id == app_id and identity.rate_limit_per_minute == 5
    api_keys.revoke_key(session=session, key_id=identity.id)
    session.commit()
    with pytest.raises(RevokedApiKeyError):
        api_keys.verify_key(secret=created.secret)
    with pytest.raises(RequestValidationError, match="rate_limit_per_minute"):
        api_keys.create_key(session=session, app="Copy", rate_limit_per_minute=0)


def test_last_used_is_written_by_the_log_writer(session: Session, app_id: int) -> None:
    created = api_keys.create_key(session=session, app="Copy")
    session.commit()
    api_keys.note_used(created.key.id)
    logger = RequestLogger()
    logger.flush()
    with session_scope() as s:
        assert api_keys.list_keys(session=s)[0].last_used_at is not None


def _entry(i: int, latency: float, status: int = 200, minutes_ago: int = 0) -> LogEntry:
    return LogEntry(
        request_id=f"r{i}",
        route="POST /v1/endpoints/e/generate",
        status_code=status,
        latency_ms=latency,
        created_at=utcnow() - timedelta(minutes=minutes_ago),
        model="mock/echo",
        prompt_tokens=10,
        response_tokens=5,
        cost=0.001,
        request_body=f'{{"inputs": {{"event": "fair {i}"}}}}',
        error="boom" if status >= 400 else None,
    )


def test_monitoring_stats_percentiles_errors_and_buckets(session: Session) -> None:
    logger = RequestLogger()
    for i in range(100):
        logger.log(_entry(i, latency=float(i + 1), status=500 if i % 10 == 0 else 200))
    logger.log(_entry(1000, latency=5.0, minutes_ago=30))
    assert logger.flush()
    stats = monitoring.request_stats(
        session=session, since=utcnow() - timedelta(minutes=60), bucket_minutes=10
    )
    t = stats.totals
    assert t.requests == 101 and t.errors == 10 and t.prompt_tokens == 1010
    assert t.p50_ms == pytest.approx(50, rel=0.05)
    assert t.p95_ms == pytest.approx(95, rel=0.05)
    assert t.p99_ms == pytest.approx(99, rel=0.05)
    assert sum(b.requests for b in stats.buckets) == 101
    assert len([b for b in stats.buckets if b.requests]) == 2
    errors = monitoring.list_requests(session=session, status="error", limit=5)
    assert len(errors) == 5 and all(e.status_code == 500 for e in errors)
    assert [r.request_id for r in monitoring.list_requests(session=session, text="fair 42")] == [
        "r42"
    ]
    assert monitoring.request_inputs(session=session, request_ids=["r1", "r2"]) == [
        {"event": "fair 1"},
        {"event": "fair 2"},
    ]
    days = monitoring.usage_by_day(session=session)
    assert sum(d.requests for d in days) == 101 and days[0].model == "mock/echo"


def test_prompting_builds_payloads_and_reads_outputs() -> None:
    assert build_payload(ModelType.COMPLETION, "hi", {"max_tokens": 3}) == {
        "prompts": ["hi"],
        "max_tokens": 3,
    }
    assert build_payload("CHAT_COMPLETION", "hi") == {"prompt": "hi", "chat_history": []}
    msgs = [Message(role="system", content="be brief"), Message(role="user", content="hi")]
    assert build_payload(ModelType.COMPLETION, msgs) == {"prompts": ["be brief\n\nhi"]}
    assert build_payload(ModelType.CHAT_COMPLETION, msgs)["messages"][1] == {
        "role": "user",
        "content": "hi",
    }
    assert output_text({"message": {"role": "assistant", "content": "ok"}}) == "ok"
    assert output_text({"completions": [["p", ["done"]]]}) == "done"
    assert response_tokens({"tokens_used": 4}) == (4, 0)
    assert response_tokens({"prompt_tokens": 3, "response_tokens": 2}) == (3, 2)
