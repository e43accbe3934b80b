"""External models end to end: CLI → registry → OpenAI-compatible provider → a real local server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from studio.models import registry
from studio.models.specs import ModelCreate
from studio.models.usage import usage_statistics
from studio.store import session_scope
from tests.providers.fakes import FakeServer, Step, chat_body

SECRET = "sk-local-0123456789-abcdef"


@pytest.fixture
def server() -> Iterator[FakeServer]:
    srv = FakeServer()
    srv.start()
    yield srv
    srv.stop()


def _write(tmp_path: Path, name: str, data: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def test_cli_chat_through_flaky_openai_compatible_server(
    cli: Any,
    server: FakeServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOCAL_KEY", SECRET)
    added = cli(
        "provider", "add", "local", "--kind", "openai", "--base-url", f"{server.url}/v1",
        "--api-key-env", "LOCAL_KEY",
    )  # fmt: skip
    assert added.code == 0, added.err
    server.then(
        Step(status=429, body={"error": {"message": "slow down"}}, headers={"Retry-After": "0"}),
        Step(status=500, body={"error": {"message": "boom"}}),
        Step(body=chat_body("Bonjour!", usage={"prompt_tokens": 9, "completion_tokens": 2})),
    )
    req = _write(tmp_path, "chat.json", {"prompt": "Say hi in French", "chat_history": []})
    result = cli("model", "execute", "local/tiny-model", req, "--json")
    assert result.code == 0, result.err
    assert result.json()["message"]["content"] == "Bonjour!"
    assert len(server.received) == 3  # two transient failures retried, then the answer
    path, body = server.received[-1]
    assert path == "/v1/chat/completions" and body["model"] == "tiny-model"
    assert body["messages"][-1] == {"role": "user", "content": "Say hi in French"}
    with session_scope() as session:
        stats = usage_statistics(session=session, model_name="local/tiny-model")
    assert (stats.requests, stats.prompt_tokens, stats.response_tokens) == (1, 9, 2)
    assert SECRET not in result.out + result.err


def test_cli_reports_provider_refusal_in_one_line_without_the_key(
    cli: Any,
    server: FakeServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOCAL_KEY", SECRET)
    cli(
        "provider", "add", "local", "--kind", "openai", "--base-url", f"{server.url}/v1",
        "--api-key-env", "LOCAL_KEY",
    )  # fmt: skip
    server.then(Step(status=401, body={"error": {"message": f"Invalid key {SECRET}"}}))
    req = _write(tmp_path, "chat.json", {"messages": [{"role": "user", "content": "hi"}]})
    result = cli("model", "execute", "local/tiny-model", req)
    assert result.code == 1
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: local: the API key was refused")
    assert "Invalid key" in lines[0]
    assert SECRET not in result.err
    assert len(server.received) == 1  # 4xx is not retried


def test_template_model_on_a_server_reaches_ready_or_fails_with_reason(
    server: FakeServer,
) -> None:
    server.then(Step(body={"object": "list", "data": [{"id": "served-model"}]}))
    with session_scope() as session:
        model = registry.create_model(
            session=session,
            data=ModelCreate(
                name="team-llm",
                model_template_id="openai-compatible-chat",
                model_creation_parameters={"base_url": f"{server.url}/v1", "model": "served-model"},
            ),
        )
        dep = registry.resolve_model(session=session, ref=model.id).deployment
        assert dep is not None and dep.status == "READY"
    server.then(Step(body=chat_body("ready and answering")))
    with session_scope() as session:
        response = registry.execute(
            session=session,
            ref="team-llm",
            payload={"messages": [{"role": "user", "content": "hello"}]},
        )
    assert response.message.content == "ready and answering"  # type: ignore[attr-defined]
    assert server.received[-1][1]["model"] == "served-model"

    with session_scope() as session:
        down = registry.create_model(
            session=session,
            data=ModelCreate(
                name="offline-llm",
                model_template_id="openai-compatible-chat",
                model_creation_parameters={"base_url": "http://127.0.0.1:9/v1", "model": "m"},
            ),
        )
        dep = registry.resolve_model(session=session, ref=down.id).deployment
        assert dep is not None and dep.status == "FAILED"
        assert "could not reach http://127.0.0.1:9/v1" in (dep.status_reason or "")
