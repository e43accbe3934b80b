"""``generate-batch`` records usage per row, and ``/v1/embeddings`` calls a
``connection/model`` name as an embedding model (issue 11, item 9)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from httpx import Response
from sqlmodel import Session, col, func, select

from studio.models.connections import ConnectionCreate, add_connection
from studio.store import session_scope
from studio.store.tables import ModelCall, RequestLog
from tests.gateway.conftest import Deployed
from tests.providers.fakes import FakeServer, Step


def _usage(deployed: Deployed, *responses: Response) -> list[ModelCall]:
    """The gateway's usage rows, once the request log holds the rows of ``responses``.

    It waits for these requests' own rows (by their ``x-request-id``), not for a count:
    the request log's writer thread may hold a batch it has taken but not yet committed,
    and a count could be met by rows that are not these requests'."""
    ids = [r.headers["x-request-id"] for r in responses]
    deadline = time.monotonic() + 60
    while True:
        deployed.flush()
        with session_scope() as session:
            stmt = select(func.count()).where(col(RequestLog.request_id).in_(ids))
            if session.exec(stmt).one() == len(ids) or time.monotonic() > deadline:
                stmt2 = select(ModelCall).where(ModelCall.source == "gateway")
                return list(session.exec(stmt2).all())
        time.sleep(0.02)


def test_generate_batch_records_a_usage_row_per_model_call(deployed: Deployed) -> None:
    csv = b"event,who\nfair,kids\nexpo,CTOs\nrun,everyone\n"
    r = deployed.client.post(
        "/v1/endpoints/email/generate-batch",
        files={"file": ("rows.csv", csv, "text/csv")},
        headers=deployed.headers,
    )
    assert r.status_code == 200, r.text
    rows = _usage(deployed, r)
    assert len(rows) == 3  # one per row, as the runs and /generate count them
    assert {row.model_name for row in rows} == {"mock/echo"}
    assert all(row.prompt_tokens > 0 and row.error is None for row in rows)


def test_generate_batch_does_not_count_rows_refused_before_the_model(deployed: Deployed) -> None:
    csv = b"event\nfair\n"  # the template also needs {{who}}: no model call is made
    r = deployed.client.post(
        "/v1/endpoints/email/generate-batch",
        files={"file": ("rows.csv", csv, "text/csv")},
        headers=deployed.headers,
    )
    assert r.status_code == 200 and "required" in r.text
    assert _usage(deployed, r) == []


@pytest.fixture
def embedding_server() -> Iterator[FakeServer]:
    server = FakeServer()
    server.start()
    yield server
    server.stop()


def test_embeddings_with_a_connection_model_name_are_answered(
    deployed: Deployed, embedding_server: FakeServer, session: Session
) -> None:
    add_connection(
        session=session,
        data=ConnectionCreate(name="up", kind="openai", base_url=embedding_server.url + "/v1"),
    )
    session.commit()
    body = {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 0, "embedding": [0.1, 0.2]},
            {"object": "embedding", "index": 1, "embedding": [0.3, 0.4]},
        ],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 4, "total_tokens": 4},
    }
    embedding_server.then(Step(body=body), Step(body=body))
    answers = []
    for _ in range(2):  # the second answer comes through the cached model, typed the same
        r = deployed.client.post(
            "/v1/embeddings",
            json={"model": "up/text-embedding-3-small", "input": ["hello", "world"]},
            headers=deployed.admin_headers,
        )
        assert r.status_code == 200, r.text
        assert [d["embedding"] for d in r.json()["data"]] == [[0.1, 0.2], [0.3, 0.4]]
        answers.append(r)
    assert [path for path, _ in embedding_server.received] == ["/v1/embeddings"] * 2
    assert embedding_server.received[0][1]["input"] == ["hello", "world"]
    assert [(u.model_name, u.model_type) for u in _usage(deployed, *answers)] == [
        ("up/text-embedding-3-small", "EMBEDDING")
    ] * 2
