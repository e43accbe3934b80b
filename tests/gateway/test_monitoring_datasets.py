"""Logged requests become dataset rows (monitoring.requests_to_dataset); the default
endpoint name the Deploy page shows is the one deploy uses."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session

from studio.core.errors import ConflictError, NotFoundError, StudioError
from studio.services import endpoints
from studio.services.apps import create_app
from studio.services.datasets import list_versions, load_rows, upload_dataset
from studio.services.monitoring import requests_to_dataset
from studio.store.tables import RequestLog
from tests.gateway.conftest import make_variant


def _log(session: Session, request_id: str, body: object) -> None:
    session.add(
        RequestLog(
            request_id=request_id,
            route="/v1/endpoints/{name}/generate",
            status_code=200,
            latency_ms=5.0,
            request_body=body if isinstance(body, str) or body is None else json.dumps(body),
        )
    )
    session.flush()


@pytest.fixture
def app_id(session: Session) -> int:
    app = create_app(session=session, name="Support")
    assert app.id is not None
    _log(session, "a", {"inputs": {"question": "Where is my order?"}})
    _log(session, "b", {"inputs": {"question": "Refund?", "tone": "calm"}})
    _log(session, "chat", {"model": "x", "messages": []})  # no inputs: skipped
    _log(session, "broken", "not json")
    return app.id


def test_a_new_dataset_from_requests(session: Session, app_id: int) -> None:
    version = requests_to_dataset(
        session=session, app_id=app_id, request_ids=["a", "b", "chat", "broken"], name="traffic"
    )
    assert version.version == 1 and version.row_count == 2
    assert version.columns == ["question", "tone"]
    assert "2 logged request(s)" in version.note
    assert version.id is not None
    assert load_rows(session=session, version_id=version.id) == [
        {"question": "Where is my order?", "tone": ""},
        {"question": "Refund?", "tone": "calm"},
    ]


def test_a_new_version_of_an_existing_dataset_keeps_its_rows(session: Session, app_id: int) -> None:
    first = upload_dataset(
        session=session, app_id=app_id, name="faq", data=b"question\nHello?\n", filename="f.csv"
    )
    version = requests_to_dataset(
        session=session, app_id=app_id, request_ids=["b"], dataset_id=first.dataset_id
    )
    assert version.version == 2 and version.columns == ["question", "tone"]
    assert version.id is not None
    assert load_rows(session=session, version_id=version.id) == [
        {"question": "Hello?", "tone": ""},
        {"question": "Refund?", "tone": "calm"},
    ]
    assert [v.version for v in list_versions(session=session, dataset_id=first.dataset_id)] == [
        1,
        2,
    ]


def test_clear_errors(session: Session, app_id: int) -> None:
    with pytest.raises(StudioError, match="None of the chosen requests has template inputs"):
        requests_to_dataset(session=session, app_id=app_id, request_ids=["chat"], name="x")
    upload_dataset(session=session, app_id=app_id, name="faq", data=b"q\n1\n", filename="f.csv")
    with pytest.raises(ConflictError, match="already has a dataset called 'faq'"):
        requests_to_dataset(session=session, app_id=app_id, request_ids=["a"], name="faq")
    with pytest.raises(StudioError, match="needs a name"):
        requests_to_dataset(session=session, app_id=app_id, request_ids=["a"], name=" ")
    other = create_app(session=session, name="Other")
    assert other.id is not None
    theirs = upload_dataset(
        session=session, app_id=other.id, name="t", data=b"q\n1\n", filename="t.csv"
    )
    with pytest.raises(NotFoundError):
        requests_to_dataset(
            session=session, app_id=app_id, request_ids=["a"], dataset_id=theirs.dataset_id
        )


def test_default_endpoint_name_is_what_deploy_uses(session: Session, mock_provider: object) -> None:
    app = create_app(session=session, name="Marketing Copy")
    assert app.id is not None
    make_variant(session, app.id, "Email v1", "Hi {{who}}")
    expected = endpoints.default_endpoint_name("Marketing Copy", "Email v1")
    assert expected == "marketing-copy-email-v1"
    assert endpoints.deploy(session=session, app=app.id, variant="Email v1").name == expected
