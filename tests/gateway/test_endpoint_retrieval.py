"""A deployed endpoint whose variant retrieves: each request searches the knowledge base
with its own inputs, the model sees the chunks, the request log records which chunks were
used, no pooled connection is held while the query is embedded, and an embedding model
that is down is the request's error (a 502 saying so), not a crash."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from studio.core.schemas import EmbeddingRequest, EmbeddingResponse
from studio.core.templates import PromptTemplate
from studio.gateway import create_app
from studio.gateway.request_log import RequestLogger
from studio.providers import register
from studio.services import api_keys, endpoint_calls, endpoints
from studio.services.retrieval_spec import RetrievalSpec
from studio.services.variants import VariantConfig, create_variant
from studio.store import get_engine, session_scope
from studio.store.tables import RequestLog
from tests.services.retrieval_setup import FlakyWords, handbook, help_app

PROMPT = "Notes:\n{{context}}\nQuestion: {{question}}"


class WatchedWords(FlakyWords):
    """Flaky bag-of-words embeddings that note how many pooled database connections are
    checked out while they answer (none should be: the gateway holds no session then)."""

    kind = "watchedwords"
    checked_out: list[int] = []

    async def embed(self, model: str, request: EmbeddingRequest) -> EmbeddingResponse:
        pool: Any = get_engine().pool
        type(self).checked_out.append(int(pool.checkedout()))
        return await super().embed(model, request)


@dataclass
class Gateway:
    client: TestClient
    logger: RequestLogger
    headers: dict[str, str]

    def logged(self) -> list[RequestLog]:
        while self.logger.pending:
            assert self.logger.flush()
        with session_scope() as s:
            return list(s.exec(select(RequestLog).order_by(RequestLog.id)).all())  # type: ignore[arg-type]


@pytest.fixture
def gateway(session: Session, mock_provider: Any) -> Iterator[Gateway]:
    from studio.models.connections import ConnectionCreate, add_connection

    register(WatchedWords)
    WatchedWords.fail_on, WatchedWords.checked_out = None, []
    add_connection(
        session=session,
        data=ConnectionCreate(name="watched", kind="watchedwords", base_url="http://w.invalid"),
    )
    session.commit()
    app_id = help_app(session)
    kb_id = handbook(session, app_id, model="watched/bag")
    create_variant(
        session=session,
        app_id=app_id,
        name="rag",
        config=VariantConfig(
            model="mock/echo",
            prompt=PromptTemplate.completion(PROMPT),
            retrieval=RetrievalSpec(kb_id=kb_id, top_k=2),
        ),
    )
    endpoints.deploy(session=session, app=app_id, variant="rag", name="helpdesk")
    key = api_keys.create_key(session=session, app=app_id, name="site")
    session.commit()
    logger = RequestLogger(interval_s=3600)  # flushed by the test, so no writer is busy
    with TestClient(create_app(logger=logger)) as client:
        yield Gateway(client, logger, {"Authorization": f"Bearer {key.secret}"})
    api_keys.clear_key_cache()
    api_keys.forget_last_used()
    endpoint_calls.clear_endpoint_cache()


def _ask(gateway: Gateway, question: str, **body: Any) -> Any:
    return gateway.client.post(
        "/v1/endpoints/helpdesk/generate",
        json={"inputs": {"question": question}, **body},
        headers=gateway.headers,
    )


def test_a_request_retrieves_and_the_log_records_its_chunks(gateway: Gateway) -> None:
    WatchedWords.checked_out.clear()
    answer = _ask(gateway, "Where is customer data stored?")
    assert answer.status_code == 200, answer.text
    assert "Customer data is stored in Frankfurt." in answer.json()["output"]
    assert WatchedWords.checked_out == [0]  # no session held while the query was embedded

    (row,) = gateway.logged()
    assert row.retrieval is not None
    assert row.retrieval["query"] == "Where is customer data stored?"
    chunks = row.retrieval["chunks"]
    assert len(chunks) == 2 and chunks[0]["document"] == "data.md"
    assert set(chunks[0]) == {"id", "document", "score"}  # no chunk text in the log


def test_a_streamed_request_logs_its_chunks_too(gateway: Gateway) -> None:
    answer = _ask(gateway, "Are yearly plans refunded?", stream=True)
    assert answer.status_code == 200
    pieces = [
        json.loads(line[6:]) for line in answer.text.splitlines() if line.startswith("data: {")
    ]
    text = "".join(p["choices"][0].get("text") or "" for p in pieces if p.get("choices"))
    assert "Yearly plans are refunded within 30 days." in text
    (row,) = gateway.logged()
    assert row.retrieval is not None and row.retrieval["chunks"][0]["document"] == "refunds.md"


def test_the_query_input_is_required_by_name(gateway: Gateway) -> None:
    answer = gateway.client.post(
        "/v1/endpoints/helpdesk/generate", json={"inputs": {}}, headers=gateway.headers
    )
    assert answer.status_code == 422
    assert "inputs.question" in answer.text
    assert "inputs.context" not in answer.text  # the retrieval step fills that one


def test_an_embedding_model_that_is_down_is_a_502_that_says_so(gateway: Gateway) -> None:
    WatchedWords.fail_on = "refunded"
    answer = _ask(gateway, "Are yearly plans refunded?")
    assert answer.status_code == 502
    assert "embedding server is down" in answer.json()["error"]["message"]
    (row,) = gateway.logged()
    assert row.status_code == 502 and row.retrieval is None
