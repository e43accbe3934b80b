"""Issue 11: app keys stay inside their app; administrative keys; no server secrets or
files reachable from the gateway; credentials only to the connection's own host."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from studio.core.errors import ProviderError, RequestValidationError
from studio.core.settings import reset_settings
from studio.providers.openai import OpenAIProvider
from studio.services import api_keys, endpoints
from studio.services.apps import create_app as create_studio_app
from studio.store import session_scope
from tests.gateway.conftest import Deployed, make_variant
from tests.providers.fakes import FakeAPI, FakeServer, Step

INPUTS = {"event": "a summer fair", "who": "families"}

LEAKY_MODEL = {
    "name": "leaky",
    "model_template_id": "openai-compatible-chat",
    "model_creation_parameters": {
        "base_url": "http://127.0.0.1:9/v1",
        "model": "m",
        "api_key_env": "STUDIO_SECRET_KEY",
    },
}


def _other_app_key(session: Session) -> dict[str, str]:
    other = create_studio_app(session=session, name="Other app")
    assert other.id is not None
    make_variant(session, other.id, "note", "Note {{event}}")
    endpoints.deploy(session=session, app=other.id, variant="note", name="note")
    created = api_keys.create_key(session=session, app=other.id, name="other")
    session.commit()
    return {"Authorization": f"Bearer {created.secret}"}


# -- who may call what ----------------------------------------------------------------------


def test_app_key_cannot_create_or_delete_models_or_call_raw_models(deployed: Deployed) -> None:
    c, h = deployed.client, deployed.headers
    r = c.post("/api/v1/models", json=LEAKY_MODEL, headers=h)
    assert r.status_code == 403 and "lacks the 'manage' scope" in r.json()["error"]["message"]
    assert c.delete("/api/v1/models/builtin/all-minilm-l6-v2", headers=h).status_code == 403
    r = c.post(
        "/api/v1/models/mock/echo/execute",
        json={"messages": [{"role": "user", "content": "free credit"}]},
        headers=h,
    )
    assert r.status_code == 403
    raw = {"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]}
    assert c.post("/v1/chat/completions", json=raw, headers=h).status_code == 403
    assert c.post("/v1/embeddings", json={"model": "x", "input": "a"}, headers=h).status_code == 403
    assert deployed.provider.calls == []  # the model was never called on the studio's credit
    # its own endpoint still works
    r = c.post("/v1/endpoints/email/generate", json={"inputs": INPUTS}, headers=h)
    assert r.status_code == 200


def test_admin_key_may_manage_models(deployed: Deployed) -> None:
    c, h = deployed.client, deployed.admin_headers
    r = c.post(
        "/api/v1/models",
        json={
            "name": "ext",
            "connection": "mock",
            "provider_model": "echo",
            "model_type": "CHAT_COMPLETION",
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    assert c.delete("/api/v1/models/ext", headers=h).status_code == 204
    r = c.post("/v1/endpoints/email/generate", json={"inputs": INPUTS}, headers=h)
    assert r.status_code == 200  # an administrative key may call any app's endpoint


def test_a_key_of_a_deleted_app_may_do_nothing(deployed: Deployed, session: Session) -> None:
    """A key without app and without the admin flag is refused everywhere (deny by default)."""
    key = api_keys.create_key(session=session, app=deployed.app_id, name="orphan")
    from studio.store.tables import ApiKey

    row = session.get(ApiKey, key.key.id)
    assert row is not None
    row.app_id = None
    session.add(row)
    session.commit()
    api_keys.clear_key_cache()
    h = {"Authorization": f"Bearer {key.secret}"}
    c = deployed.client
    r = c.post("/v1/endpoints/email/generate", json={"inputs": INPUTS}, headers=h)
    assert r.status_code == 403
    assert c.get("/api/v1/models", headers=h).status_code == 403
    assert c.get("/v1/models", headers=h).json()["data"] == []
    r = c.get("/api/v1/monitoring/requests", headers=h)
    assert r.status_code == 403 and "app no longer exists" in r.json()["error"]["message"]


# -- no server environment variables or files over HTTP -----------------------------------------


def test_model_over_http_may_not_name_an_environment_variable(deployed: Deployed) -> None:
    server = FakeServer().then(Step(body={"data": []}))
    server.start()
    try:
        payload = {**LEAKY_MODEL}
        payload["model_creation_parameters"] = {
            **LEAKY_MODEL["model_creation_parameters"],
            "base_url": server.url + "/v1",
        }
        os.environ["STUDIO_SECRET_KEY"] = "do-not-send-me"
        r = deployed.client.post("/api/v1/models", json=payload, headers=deployed.admin_headers)
        upper = {
            **payload,
            "model_creation_parameters": {
                "base_url": server.url + "/v1",
                "model": "m",
                "API_KEY_ENV": "DATABASE_URL",
            },
        }
        r2 = deployed.client.post("/api/v1/models", json=upper, headers=deployed.admin_headers)
    finally:
        os.environ.pop("STUDIO_SECRET_KEY", None)
        server.stop()
    assert r.status_code == 422
    message = r.json()["error"]["message"]
    assert "api_key_env" in message and "environment variable" in message
    assert "connection" in message  # says what to do instead
    assert "do-not-send-me" not in r.text
    assert r2.status_code == 422  # parameter names are matched case-insensitively
    assert server.received == []  # no probe went out at all
    models = deployed.client.get("/api/v1/models", headers=deployed.admin_headers).json()
    assert "leaky" not in [m["name"] for m in models]


def test_template_over_http_may_not_name_an_environment_variable(deployed: Deployed) -> None:
    # Every model later made from such a template, even by the operator, would send the
    # variable's value to the template's base_url.
    template = {
        "name": "leaky-template",
        "model_type": "CHAT_COMPLETION",
        "runtime": "openai-compatible",
        "runtime_config": {"base_url": "http://127.0.0.1:9/v1", "api_key_env": "DATABASE_URL"},
        "model_creation_parameters_schema": {"parameters": []},
    }
    r = deployed.client.post(
        "/api/v1/model-templates", json=template, headers=deployed.admin_headers
    )
    assert r.status_code == 422, r.text
    assert "environment variable" in r.json()["error"]["message"]
    names = [
        t["name"]
        for t in deployed.client.get(
            "/api/v1/model-templates", headers=deployed.admin_headers
        ).json()
    ]
    assert "leaky-template" not in names
    clean = {**template, "runtime_config": {"base_url": "http://127.0.0.1:9/v1"}}
    r = deployed.client.post("/api/v1/model-templates", json=clean, headers=deployed.admin_headers)
    assert r.status_code == 201, r.text


def test_the_cli_may_still_use_api_key_env(cli: Any, session: Session, tmp_path: Path) -> None:
    from studio.models import registry
    from studio.models.specs import ModelCreate

    data = ModelCreate.model_validate({**LEAKY_MODEL, "name": "operator-made"})
    with pytest.raises(RequestValidationError):
        registry.create_model(session=session, data=data, deploy=False)
    model = registry.create_model(session=session, data=data, deploy=False, local=True)
    assert model.model_creation_parameters["api_key_env"] == "STUDIO_SECRET_KEY"


def _llama(path: str) -> dict[str, Any]:
    return {
        "name": "weights",
        "model_template_id": "llama-cpp-chat",
        "model_creation_parameters": {"model_path": path},
    }


def test_weights_path_must_lie_in_the_models_directory(
    deployed: Deployed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c, h = deployed.client, deployed.admin_headers
    r = c.post("/api/v1/models", json=_llama("/etc/passwd"), headers=h)
    assert r.status_code == 422 and "STUDIO_MODELS_DIR" in r.json()["error"]["message"]
    assert "has not configured" in r.json()["error"]["message"]

    models_dir = tmp_path / "weights"
    models_dir.mkdir()
    (models_dir / "escape.gguf").symlink_to("/etc/passwd")
    monkeypatch.setenv("STUDIO_MODELS_DIR", str(models_dir))
    reset_settings()
    answers = {}
    for path in ["/etc/passwd", "/no/such/file.gguf", "../../etc/passwd", "escape.gguf"]:
        r = c.post("/api/v1/models", json=_llama(path), headers=h)
        assert r.status_code == 422, path
        message = r.json()["error"]["message"]
        assert "inside the studio's models directory (STUDIO_MODELS_DIR)" in message
        answers[path] = message
    # the same sentence whether or not the file exists: no probing the server's disk
    assert answers["/etc/passwd"] == answers["/no/such/file.gguf"]
    r = c.post("/api/v1/models", json=_llama("tiny.gguf"), headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["model_creation_parameters"]["model_path"] == str(
        (models_dir / "tiny.gguf").resolve()
    )


# -- credentials only to the connection's own host ------------------------------------------------


def test_the_key_is_sent_only_to_the_base_urls_origin() -> None:
    api = FakeAPI(default=lambda request: httpx.Response(200, json={"ok": True}))
    provider = OpenAIProvider(
        name="oai",
        base_url="https://api.example.com/v1",
        api_key="sk-secret",
        options={"max_retries": 0},
        transport=api.transport,
    )

    async def calls() -> None:
        await provider.request_json("GET", "/models")
        await provider.request_json("GET", "https://api.example.com:443/v1/models")
        await provider.request_json("GET", "https://evil.example.net/v1/models")
        await provider.request_json("GET", "http://api.example.com/v1/models")  # other scheme
        await provider.aclose()

    asyncio.run(calls())
    sent = [(str(r.url), r.headers.get("authorization")) for r in api.requests]
    assert sent[0][1] == "Bearer sk-secret" and sent[1][1] == "Bearer sk-secret"
    assert sent[2] == ("https://evil.example.net/v1/models", None)
    assert sent[3][1] is None


def test_a_redirect_does_not_carry_the_key_to_another_host() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "api.example.com":
            return httpx.Response(307, headers={"location": "https://evil.example.net/steal"})
        return httpx.Response(200, json={"data": []})

    api = FakeAPI(default=answer)
    provider = OpenAIProvider(
        name="oai",
        base_url="https://api.example.com/v1",
        api_key="sk-secret",
        options={"max_retries": 0},
        transport=api.transport,
    )

    async def call() -> None:
        try:
            await provider.request_json("GET", "/models")
        finally:
            await provider.aclose()

    with pytest.raises(ProviderError):
        asyncio.run(call())
    assert [r.url.host for r in api.requests] == ["api.example.com"]


# -- monitoring reads are scoped to the key's app ------------------------------------------------


def test_monitoring_shows_a_key_only_its_own_apps_traffic(
    deployed: Deployed, session: Session
) -> None:
    c = deployed.client
    other = _other_app_key(session)
    r = c.post("/v1/endpoints/email/generate", json={"inputs": INPUTS}, headers=deployed.headers)
    assert r.status_code == 200
    r = c.post("/v1/endpoints/note/generate", json={"inputs": {"event": "x"}}, headers=other)
    assert r.status_code == 200
    deployed.flush()

    def seen(headers: dict[str, str]) -> set[str]:
        rows = c.get("/api/v1/monitoring/requests", headers=headers).json()
        return {row["route"] for row in rows}

    assert seen(deployed.headers) == {"POST /v1/endpoints/email/generate"}
    assert seen(other) == {"POST /v1/endpoints/note/generate"}
    assert seen(deployed.admin_headers) >= {
        "POST /v1/endpoints/email/generate",
        "POST /v1/endpoints/note/generate",
    }
    mine = c.get("/api/v1/monitoring/requests", headers=deployed.headers).json()[0]
    r = c.get(f"/api/v1/monitoring/requests/{mine['request_id']}", headers=other)
    assert r.status_code == 404 and "summer fair" not in r.text
    r = c.get(f"/api/v1/monitoring/requests/{mine['request_id']}", headers=deployed.headers)
    assert r.status_code == 200 and "summer fair" in r.json()["request_body"]
    stats = c.get("/api/v1/monitoring/stats?minutes=10", headers=other).json()
    assert stats["totals"]["requests"] == 1
    admin_stats = c.get("/api/v1/monitoring/stats?minutes=10", headers=deployed.admin_headers)
    assert admin_stats.json()["totals"]["requests"] >= 2
    days = c.get("/api/v1/usage/by-day", headers=other).json()
    assert {d["endpoint"] for d in days} == {"note"}
    assert [e["name"] for e in c.get("/api/v1/endpoints", headers=other).json()] == ["note"]
    r = c.get("/api/v1/monitoring/stats?endpoint=email", headers=other)
    assert r.status_code == 403


# -- the CLI ----------------------------------------------------------------------------------


def test_cli_creates_and_lists_admin_keys(cli: Any, session: Session) -> None:
    create_studio_app(session=session, name="Copy")
    session.commit()
    r = cli("key", "create", "--admin", "--name", "ops")
    assert r.code == 0, r.err
    secret = r.out.splitlines()[0]
    assert secret.startswith("sk-studio-") and "ADMINISTRATIVE" in r.out
    listed = cli("key", "list")
    assert "(admin)" in listed.out and secret not in listed.out
    data = cli("key", "list", "--json").json()
    assert data[0]["is_admin"] is True and data[0]["app_id"] is None
    assert api_keys.verify_key(secret=secret).is_admin
    with session_scope() as s:
        stored = [k for k in api_keys.list_keys(session=s) if k.is_admin]
    assert len(stored) == 1
    r = cli("key", "create")
    assert r.code != 0 and "--admin" in r.err
    r = cli("key", "create", "--app", "Copy", "--admin")
    assert r.code != 0 and "not both" in r.err
