"""The gateway in front of a real misbehaving upstream (a loopback OpenAI-compatible server).

Transient faults are retried away by the model layer; a provider that stays
down answers 502 and one that stays too slow answers 504, each with a sentence
naming the connection, never a bare 500.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from studio.core.templates import PromptTemplate
from studio.gateway import create_app
from studio.gateway.request_log import RequestLogger
from studio.models.connections import ConnectionCreate, add_connection
from studio.services import api_keys, endpoint_calls, endpoints
from studio.services.apps import create_app as create_studio_app
from studio.services.variants import VariantConfig, create_variant
from tests.providers.fakes import FaultyOpenAIServer

Start = Callable[..., FaultyOpenAIServer]


@pytest.fixture
def gateway_over(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[FaultyOpenAIServer], tuple[TestClient, dict[str, str]]]]:
    monkeypatch.setenv("STUDIO_REQUEST_TIMEOUT", "0.5")
    monkeypatch.setenv("STUDIO_MAX_RETRIES", "5")
    from studio.core.settings import reset_settings

    reset_settings()
    clients: list[Any] = []

    def build(server: FaultyOpenAIServer) -> tuple[TestClient, dict[str, str]]:
        add_connection(
            session=session,
            data=ConnectionCreate(name="upstream", kind="openai", base_url=server.url),
        )
        app = create_studio_app(session=session, name="Support")
        assert app.id is not None
        create_variant(
            session=session,
            app_id=app.id,
            name="answer",
            config=VariantConfig(
                model="upstream/fake-chat",
                prompt=PromptTemplate.completion("Answer: {{question}}"),
            ),
        )
        endpoints.deploy(session=session, app=app.id, variant="answer", name="answer")
        key = api_keys.create_key(session=session, app=app.id, name="k")
        session.commit()
        client = TestClient(create_app(logger=RequestLogger(interval_s=0.05)))
        client.__enter__()
        clients.append(client)
        return client, {"Authorization": f"Bearer {key.secret}"}

    yield build
    for client in clients:
        client.__exit__(None, None, None)
    api_keys.clear_key_cache()
    endpoint_calls.clear_endpoint_cache()


def _generate(client: TestClient, headers: dict[str, str], question: str) -> Any:
    return client.post(
        "/v1/endpoints/answer/generate", json={"inputs": {"question": question}}, headers=headers
    )


def test_transient_faults_are_retried_into_answers(faulty_server: Start, gateway_over: Any) -> None:
    server = faulty_server(fault_rate=1 / 3, faults=("rate_limit", "server_error", "drop"), seed=3)
    client, headers = gateway_over(server)
    responses = [_generate(client, headers, f"question {i}") for i in range(20)]
    assert [r.status_code for r in responses] == [200] * 20, [
        r.text for r in responses if r.status_code != 200
    ]
    assert [r.json()["output"] for r in responses] == [
        f"answer to: Answer: question {i}" for i in range(20)
    ]
    assert sum(server.injected.values()) > 0, "the server did inject faults"


def test_a_provider_that_stays_down_is_a_502_with_a_sentence(
    faulty_server: Start, gateway_over: Any
) -> None:
    server = faulty_server(always_fail=lambda prompt: True)
    client, headers = gateway_over(server)
    response = _generate(client, headers, "anything")
    assert response.status_code == 502
    message = response.json()["error"]["message"]
    assert "upstream" in message and "503" in message
    assert "Traceback" not in response.text


def test_a_provider_that_stays_too_slow_is_a_504(faulty_server: Start, gateway_over: Any) -> None:
    server = faulty_server(fault_rate=1.0, faults=("slow",), slow_s=2.0)
    client, headers = gateway_over(server)
    response = _generate(client, headers, "anything")
    assert response.status_code == 504
    assert "upstream" in response.json()["error"]["message"]
