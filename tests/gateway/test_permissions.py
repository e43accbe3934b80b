"""Who may do what on the gateway: ONE table, checked route by route.

Every route of the FastAPI app must have at least one row; a new route without a
row fails :func:`test_every_route_has_a_row`. Each row sends one concrete request
with five callers and expects the status in its column:

* ``app``: a key of the app that owns the endpoint ``email``;
* ``other``: a key of another app;
* ``admin``: an administrative key (``studio key create --admin``);
* ``revoked``: a revoked key of the same app as ``app``;
* ``none``: no key at all.

The callers go in that table's column order reversed (no key first, the
administrative key last), so a row that creates or deletes something does it once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlmodel import Session

from studio.core.settings import reset_settings
from studio.gateway import create_app
from studio.models import registry
from studio.models.specs import ModelCreate
from studio.services import api_keys, endpoints
from studio.services.apps import create_app as create_studio_app
from tests.gateway.conftest import Deployed, make_variant
from tests.gateway.test_evaluations_api import make_evaluation

EMAIL = {"inputs": {"event": "a fair", "who": "families"}}
CALLERS = ("none", "revoked", "other", "app", "admin")
PUBLIC = {c: 200 for c in CALLERS}


@dataclass(frozen=True)
class Row:
    method: str
    route: str  # the route's path as FastAPI lists it
    url: str  # the concrete URL sent
    app: int
    other: int
    admin: int
    revoked: int = 403
    none: int = 401
    json: Any = None
    files: dict[str, Any] | None = field(default=None, hash=False)
    note: str = ""

    def expected(self, caller: str) -> int:
        return int(getattr(self, caller))


def public(method: str, route: str) -> Row:
    return Row(method, route, route, 200, 200, 200, revoked=200, none=200)


RAW_CHAT = {"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]}
TEMPLATE = {
    "name": "perm-template",
    "model_type": "CHAT_COMPLETION",
    "runtime": "openai-compatible",
    "runtime_config": {"base_url": "http://127.0.0.1:9/v1"},
}
EXTERNAL = {
    "name": "perm-model",
    "connection": "mock",
    "provider_model": "echo",
    "model_type": "CHAT_COMPLETION",
}
MINILM = "builtin/all-minilm-l6-v2"

# fmt: off
TABLE: list[Row] = [
    public("GET", "/openapi.json"),
    public("GET", "/docs"),
    public("GET", "/docs/oauth2-redirect"),
    public("GET", "/redoc"),
    public("GET", "/healthz"),
    public("GET", "/readyz"),
    # deployed endpoints: the owning app's keys and administrative keys
    Row("POST", "/v1/endpoints/{name}/generate", "/v1/endpoints/email/generate",
        app=200, other=403, admin=200, json=EMAIL),
    Row("POST", "/v1/endpoints/{name}/generate-batch", "/v1/endpoints/email/generate-batch",
        app=200, other=403, admin=200,
        files={"file": ("rows.csv", b"event,who\nfair,kids\n", "text/csv")}),
    # OpenAI-compatible: an endpoint by its owners; a raw model only by administrators
    Row("POST", "/v1/chat/completions", "/v1/chat/completions",
        app=200, other=403, admin=200, json={"model": "email", **EMAIL, "messages": []}),
    Row("POST", "/v1/chat/completions", "/v1/chat/completions",
        app=403, other=403, admin=200, json=RAW_CHAT, note="raw model"),
    Row("POST", "/v1/completions", "/v1/completions",
        app=200, other=403, admin=200, json={"model": "email", **EMAIL}),
    Row("POST", "/v1/completions", "/v1/completions",
        app=403, other=403, admin=200, json={"model": "mock/echo", "prompt": "x"},
        note="raw model"),
    Row("POST", "/v1/embeddings", "/v1/embeddings",
        app=403, other=403, admin=200, json={"model": MINILM, "input": "hello"}),
    Row("GET", "/v1/models", "/v1/models", app=200, other=200, admin=200,
        note="each sees what it may call"),
    # the Models API: administrative keys only (the schemas are public documentation)
    Row("GET", "/api/v1/model-templates", "/api/v1/model-templates",
        app=403, other=403, admin=200),
    Row("GET", "/api/v1/model-templates/{ref:path}", "/api/v1/model-templates/llama-cpp-chat",
        app=403, other=403, admin=200),
    Row("POST", "/api/v1/model-templates", "/api/v1/model-templates",
        app=403, other=403, admin=201, json=TEMPLATE),
    Row("DELETE", "/api/v1/model-templates/{ref:path}", "/api/v1/model-templates/perm-template",
        app=403, other=403, admin=204),
    Row("GET", "/api/v1/model-schemas", "/api/v1/model-schemas",
        app=200, other=200, admin=200),
    Row("GET", "/api/v1/models", "/api/v1/models", app=403, other=403, admin=200),
    Row("POST", "/api/v1/models", "/api/v1/models",
        app=403, other=403, admin=201, json=EXTERNAL),
    Row("GET", "/api/v1/deployments", "/api/v1/deployments", app=403, other=403, admin=200),
    Row("POST", "/api/v1/deployments/{ref:path}/deploy", f"/api/v1/deployments/{MINILM}/deploy",
        app=403, other=403, admin=200),
    Row("POST", "/api/v1/models/{ref:path}/validate", "/api/v1/models/mock/echo/validate",
        app=403, other=403, admin=200, json={"prompts": ["x"]}),
    Row("POST", "/api/v1/models/{ref:path}/execute", "/api/v1/models/mock/echo/execute",
        app=403, other=403, admin=200, json={"messages": [{"role": "user", "content": "x"}]}),
    Row("GET", "/api/v1/models/{ref:path}/usage", f"/api/v1/models/{MINILM}/usage",
        app=403, other=403, admin=200),
    Row("GET", "/api/v1/models/{ref:path}", f"/api/v1/models/{MINILM}",
        app=403, other=403, admin=200),
    Row("DELETE", "/api/v1/models/{ref:path}", "/api/v1/models/doomed",
        app=403, other=403, admin=204),
    # endpoint and monitoring reads: every key, scoped to its app (admin: all apps)
    Row("GET", "/api/v1/endpoints", "/api/v1/endpoints", app=200, other=200, admin=200),
    Row("GET", "/api/v1/monitoring/stats", "/api/v1/monitoring/stats",
        app=200, other=200, admin=200),
    Row("GET", "/api/v1/monitoring/stats", "/api/v1/monitoring/stats?endpoint=email",
        app=200, other=403, admin=200, note="another app's endpoint by name"),
    Row("GET", "/api/v1/monitoring/requests", "/api/v1/monitoring/requests",
        app=200, other=200, admin=200),
    Row("GET", "/api/v1/monitoring/requests/{request_id}",
        "/api/v1/monitoring/requests/{email_request}",
        app=200, other=404, admin=200, revoked=403, note="another app's request is not found"),
    Row("GET", "/api/v1/usage/by-day", "/api/v1/usage/by-day", app=200, other=200, admin=200),
    # evaluation reads: an app's key its own app's evaluations (admin: all apps)
    Row("GET", "/api/v1/evaluations", "/api/v1/evaluations", app=200, other=200, admin=200,
        note="each lists its own app's"),
    Row("GET", "/api/v1/evaluations", "/api/v1/evaluations?app=Marketing%20copy",
        app=200, other=403, admin=200, note="another app's evaluations by name"),
    Row("GET", "/api/v1/evaluations/{evaluation_id}", "/api/v1/evaluations/{evaluation}",
        app=200, other=404, admin=200, note="another app's evaluation is not found"),
    Row("GET", "/api/v1/evaluations/{evaluation_id}/report",
        "/api/v1/evaluations/{evaluation}/report",
        app=200, other=404, admin=200, note="another app's evaluation is not found"),
    Row("GET", "/api/v1/evaluations/{evaluation_id}/results",
        "/api/v1/evaluations/{evaluation}/results?format=long",
        app=200, other=404, admin=200, note="another app's evaluation is not found"),
]
# fmt: on


def _walk(routes: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:  # FastAPI's included router: recurse with its prefix
            yield from _walk(included.routes, prefix + route.include_context.prefix)
            continue
        for method in sorted(set(getattr(route, "methods", None) or ()) - {"HEAD"}):
            yield method, prefix + route.path


def test_every_route_has_a_row() -> None:
    routes = set(_walk(create_app().routes))
    rows = {(r.method, r.route) for r in TABLE}
    assert routes - rows == set(), "add a row to TABLE for each new route"
    assert rows - routes == set(), "TABLE names routes the gateway no longer has"


@pytest.fixture
def callers(
    deployed: Deployed, session: Session, monkeypatch: pytest.MonkeyPatch
) -> dict[str, dict[str, str]]:
    monkeypatch.setenv("STUDIO_ADMIN", "1")  # template writes also need admin mode
    reset_settings()
    other_app = create_studio_app(session=session, name="Other app")
    assert other_app.id is not None
    make_variant(session, other_app.id, "note", "Note {{event}}")
    endpoints.deploy(session=session, app=other_app.id, variant="note", name="note")
    other = api_keys.create_key(session=session, app=other_app.id, name="other")
    revoked = api_keys.create_key(session=session, app=deployed.app_id, name="old")
    api_keys.revoke_key(session=session, key_id=revoked.key.id)
    registry.create_model(session=session, data=ModelCreate(**{**EXTERNAL, "name": "doomed"}))
    session.commit()
    return {
        "none": {},
        "revoked": {"Authorization": f"Bearer {revoked.secret}"},
        "other": {"Authorization": f"Bearer {other.secret}"},
        "app": deployed.headers,
        "admin": deployed.admin_headers,
    }


def test_each_caller_gets_the_status_of_the_table(
    deployed: Deployed, session: Session, callers: dict[str, dict[str, str]]
) -> None:
    c = deployed.client
    assert c.post("/v1/endpoints/email/generate", json=EMAIL, headers=deployed.headers).is_success
    deployed.flush()
    email_request = c.get("/api/v1/monitoring/requests", headers=deployed.headers).json()
    ids = {
        "email_request": email_request[0]["request_id"],
        "evaluation": make_evaluation(session, deployed.app_id, deployed.provider, judge=False),
    }
    wrong: list[str] = []
    for row in TABLE:
        for caller in CALLERS:
            url = row.url.format(**ids) if "{" in row.url else row.url
            r = c.request(row.method, url, json=row.json, files=row.files, headers=callers[caller])
            if r.status_code != row.expected(caller):
                wrong.append(
                    f"{row.method} {url} ({row.note or 'as listed'}) by {caller}: "
                    f"{r.status_code}, expected {row.expected(caller)}: {r.text[:160]}"
                )
    assert wrong == []
