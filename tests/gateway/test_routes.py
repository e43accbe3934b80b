"""Every gateway route: answers, auth failures, invalid bodies, provider failures."""

from __future__ import annotations

import json

from sqlmodel import Session

from studio.core.errors import ProviderTimeoutError, ProviderUnavailableError
from studio.core.schemas import ChatCompletionResponse, Message
from studio.services import api_keys
from studio.services.apps import create_app as create_studio_app
from studio.store import session_scope
from tests.gateway.conftest import Deployed

INPUTS = {"event": "a summer fair", "who": "families"}


def generate(d: Deployed, inputs: dict[str, str] | None = None, **kw: object):  # type: ignore[no-untyped-def]
    headers = kw.pop("headers", d.headers)
    return d.client.post(
        "/v1/endpoints/email/generate", json={"inputs": inputs or INPUTS}, headers=headers
    )


def test_generate_answers_with_output_usage_latency_and_request_id(deployed: Deployed) -> None:
    r = generate(deployed)
    assert r.status_code == 200
    body = r.json()
    assert body["output"] == "echo: Write about a summer fair for families."
    assert body["endpoint"] == "email" and body["version"] == 1
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + 2
    assert body["request_id"] == r.headers["x-request-id"]
    assert float(r.headers["x-studio-overhead-ms"]) >= 0
    assert body["latency_ms"] >= body["model_latency_ms"] >= 0


def test_missing_template_variables_are_named_in_a_422(deployed: Deployed) -> None:
    r = generate(deployed, {"event": "x"})
    assert r.status_code == 422
    error = r.json()["error"]
    assert "inputs.who" in error["message"] and error["type"] == "invalid_request"
    assert deployed.provider.calls == []


def test_invalid_bodies_are_422_with_a_sentence(deployed: Deployed) -> None:
    r = deployed.client.post(
        "/v1/endpoints/email/generate",
        content=b"{not json",
        headers={**deployed.headers, "content-type": "application/json"},
    )
    assert r.status_code == 422 and "not valid JSON" in r.json()["error"]["message"]
    r = deployed.client.post(
        "/v1/endpoints/email/generate", content=b"[1]", headers=deployed.headers
    )
    assert r.status_code == 422 and "must be a JSON object" in r.json()["error"]["message"]
    r = deployed.client.post(
        "/v1/endpoints/email/generate", json={"inputz": {}}, headers=deployed.headers
    )
    assert r.status_code == 422 and "inputz" in r.json()["error"]["message"]
    r = deployed.client.post(
        "/v1/chat/completions", json={"messages": []}, headers=deployed.headers
    )
    assert r.status_code == 422 and "model: required field is missing" in r.text


def test_unknown_endpoint_and_route_are_404(deployed: Deployed) -> None:
    r = deployed.client.post(
        "/v1/endpoints/nope/generate", json={"inputs": {}}, headers=deployed.headers
    )
    assert r.status_code == 404 and "nope" in r.json()["error"]["message"]
    r = deployed.client.get("/v1/nothing-here", headers=deployed.headers)
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found"


def test_missing_and_wrong_keys_are_401(deployed: Deployed) -> None:
    r = generate(deployed, headers={})
    assert r.status_code == 401 and "no API key" in r.json()["error"]["message"]
    r = generate(deployed, headers={"Authorization": "Bearer sk-studio-wrong"})
    assert r.status_code == 401 and "not valid" in r.json()["error"]["message"]
    assert generate(deployed, headers={"x-api-key": deployed.key}).status_code == 200
    assert deployed.provider.calls and len(deployed.provider.calls) == 1


def test_revoked_key_is_401_at_once(deployed: Deployed) -> None:
    assert generate(deployed).status_code == 200
    with session_scope() as session:
        key_id = api_keys.list_keys(session=session, app=deployed.app_id)[0].id
        api_keys.revoke_key(session=session, key_id=key_id)
    r = generate(deployed)
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]


def test_a_key_of_another_app_is_403(deployed: Deployed, session: Session) -> None:
    other = create_studio_app(session=session, name="Other")
    secret = api_keys.create_key(session=session, app=other.name).secret
    session.commit()
    r = generate(deployed, headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 403 and "another app" in r.json()["error"]["message"]


def test_rate_limit_answers_429_with_retry_after(deployed: Deployed, session: Session) -> None:
    secret = api_keys.create_key(
        session=session, app=deployed.app_id, name="slow", rate_limit_per_minute=2
    ).secret
    session.commit()
    headers = {"Authorization": f"Bearer {secret}"}
    assert generate(deployed, headers=headers).status_code == 200
    assert generate(deployed, headers=headers).status_code == 200
    r = generate(deployed, headers=headers)
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    assert "2 requests per minute" in r.json()["error"]["message"]
    assert generate(deployed).status_code == 200  # other keys are not affected


def test_provider_failures_are_502_and_504_never_500(deployed: Deployed) -> None:
    deployed.provider.replies.extend(
        [
            ProviderUnavailableError("server error 503", provider="mock", status_code=503),
            ProviderTimeoutError("no answer within 60 s", provider="mock"),
        ]
    )
    r = generate(deployed)
    assert r.status_code == 502
    assert r.json()["error"]["type"] == "provider_unavailable"
    assert "503" in r.json()["error"]["message"]
    r = generate(deployed)
    assert r.status_code == 504 and r.json()["error"]["type"] == "provider_timeout"


def test_batch_csv_returns_the_rows_with_an_output_column(deployed: Deployed) -> None:
    csv = "event,who\nfair,kids\n=SUM(A1),adults\nparty,\n"
    r = deployed.client.post(
        "/v1/endpoints/email/generate-batch",
        files={"file": ("rows.csv", csv.encode(), "text/csv")},
        headers=deployed.headers,
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = r.text.lstrip("\ufeff").strip().splitlines()
    assert lines[0] == "event,who,output,error"
    assert lines[1] == "fair,kids,echo: Write about fair for kids.,"
    assert lines[2].startswith("'=SUM(A1),adults,")  # formula cells are neutralised
    assert len(lines) == 4


def test_batch_rejects_a_non_csv_upload(deployed: Deployed) -> None:
    r = deployed.client.post(
        "/v1/endpoints/email/generate-batch",
        files={"file": ("rows.csv", b"", "text/csv")},
        headers=deployed.headers,
    )
    assert r.status_code == 400 and "empty" in r.json()["error"]["message"]


def test_chat_completions_on_an_endpoint_and_on_a_model(deployed: Deployed) -> None:
    r = deployed.client.post(
        "/v1/chat/completions",
        json={"model": "email", "inputs": INPUTS, "messages": []},
        headers=deployed.headers,
    )
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"].startswith("echo: Write about a summer fair")
    assert body["usage"]["completion_tokens"] == 2
    raw = {"model": "mock/echo", "messages": [{"role": "user", "content": "hello"}]}
    r = deployed.client.post("/v1/chat/completions", json=raw, headers=deployed.headers)
    assert r.status_code == 403 and "lacks the 'models' scope" in r.json()["error"]["message"]
    r = deployed.client.post("/v1/chat/completions", json=raw, headers=deployed.admin_headers)
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] == "echo: hello"


def test_chat_completions_stream_sends_sse_chunks(deployed: Deployed) -> None:
    deployed.provider.replies.append(
        ChatCompletionResponse(
            message=Message(role="assistant", content="Hello there friend"), finish_reason="stop"
        )
    )
    with deployed.client.stream(
        "POST",
        "/v1/chat/completions",
        json={"model": "email", "inputs": INPUTS, "stream": True},
        headers=deployed.headers,
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == "Hello there friend"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_completions_and_embeddings(deployed: Deployed) -> None:
    r = deployed.client.post(
        "/v1/completions",
        json={"model": "mock/echo", "prompt": "Once upon", "max_tokens": 5},
        headers=deployed.admin_headers,
    )
    assert r.status_code == 200 and r.json()["choices"][0]["text"] == "echo: Once upon"
    r = deployed.client.post(
        "/v1/completions", json={"model": "email", "inputs": INPUTS}, headers=deployed.headers
    )
    assert r.status_code == 200 and "summer fair" in r.json()["choices"][0]["text"]
    r = deployed.client.post(
        "/v1/embeddings",
        json={"model": "mock/embed", "input": ["ab", "abc"]},
        headers=deployed.admin_headers,
    )
    assert r.status_code == 200, r.text  # a connection/model name is typed by the request
    assert [d["index"] for d in r.json()["data"]] == [0, 1]
    r = deployed.client.post(
        "/v1/embeddings",
        json={"model": "builtin/smollm2-135m-instruct", "input": ["ab"]},
        headers=deployed.admin_headers,
    )
    assert r.status_code == 422 and "not EMBEDDING" in r.json()["error"]["message"]


def test_models_list_has_endpoints_and_ready_deployments(deployed: Deployed) -> None:
    r = deployed.client.get("/v1/models", headers=deployed.admin_headers)
    ids = [m["id"] for m in r.json()["data"]]
    assert "email" in ids and "builtin/smollm2-135m-instruct" in ids
    r = deployed.client.get("/v1/models", headers=deployed.headers)
    assert [m["id"] for m in r.json()["data"]] == ["email"]  # an app key: its endpoints only
    assert deployed.client.get("/v1/models").status_code == 401


def test_models_api_lists_validates_and_executes(deployed: Deployed) -> None:
    h = deployed.admin_headers
    c = deployed.client
    assert any(t["name"] for t in c.get("/api/v1/model-templates", headers=h).json())
    models = c.get("/api/v1/models", headers=h).json()
    assert any(m["name"] == "builtin/all-minilm-l6-v2" for m in models)
    model = c.get("/api/v1/models/builtin/all-minilm-l6-v2", headers=h).json()
    assert model["model_type"] == "EMBEDDING" and model["deployment"]["status"] == "READY"
    usage = c.get("/api/v1/models/builtin/all-minilm-l6-v2/usage", headers=h).json()
    assert usage["requests"] == 0
    assert "CHAT_COMPLETION" in c.get("/api/v1/model-schemas", headers=h).json()
    assert len(c.get("/api/v1/deployments", headers=h).json()) >= 5
    r = c.post(
        "/api/v1/models/mock/echo/validate",
        json={"prompts": ["x"], "stop_sequences": ["a", "b", "c", "d", "e"]},
        headers=h,
    )
    assert r.status_code == 422 and "stop_sequences" in r.json()["error"]["message"]
    r = c.post(
        "/api/v1/models/mock/echo/execute",
        json={"messages": [{"role": "user", "content": "yo"}]},
        headers=h,
    )
    assert r.status_code == 200 and r.json()["message"]["content"] == "echo: yo"
    r = c.post("/api/v1/model-templates", json={"name": "x"}, headers=h)
    assert r.status_code in (403, 422)
    r = c.post("/api/v1/models", json={"name": "m1"}, headers=h)
    assert r.status_code == 422 and "model_template_id" in r.json()["error"]["message"]


def test_model_usage_and_monitoring_routes(deployed: Deployed) -> None:
    h = deployed.headers
    c = deployed.client
    assert generate(deployed).status_code == 200
    assert generate(deployed, {"event": "x"}).status_code == 422
    deployed.flush()
    stats = c.get("/api/v1/monitoring/stats?endpoint=email&minutes=10", headers=h).json()
    assert stats["totals"]["requests"] == 2 and stats["totals"]["errors"] == 1
    recent = c.get("/api/v1/monitoring/requests?status=error", headers=h).json()
    assert len(recent) == 1 and recent[0]["status_code"] == 422
    detail = c.get(f"/api/v1/monitoring/requests/{recent[0]['request_id']}", headers=h).json()
    assert '"event":"x"' in detail["request_body"]
    days = c.get("/api/v1/usage/by-day", headers=h).json()
    assert days[0]["endpoint"] == "email" and days[0]["requests"] == 2
    eps = c.get("/api/v1/endpoints", headers=h).json()
    assert eps[0]["name"] == "email" and eps[0]["version"] == 1
    r = c.get("/api/v1/monitoring/requests?status=weird", headers=h)
    assert r.status_code == 422


def test_health_needs_no_key_and_docs_are_served(deployed: Deployed) -> None:
    assert deployed.client.get("/healthz").json() == {"status": "ok"}
    assert deployed.client.get("/readyz").json()["status"] == "ready"
    spec = deployed.client.get("/openapi.json").json()
    assert "/v1/endpoints/{name}/generate" in spec["paths"]
    assert deployed.client.get("/docs").status_code == 200
