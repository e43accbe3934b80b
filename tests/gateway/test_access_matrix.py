"""Who may do what on the gateway: every route, every kind of caller, ONE table.

Every route of the FastAPI app must have at least one row (a new route without a row
fails :func:`test_every_route_has_a_row`). Each row sends one concrete request with
each caller and expects the status in that caller's column; every cell is written out:

========  =================================================================
none      no key at all
revoked   a revoked ``invoke`` key of app A ("Marketing copy", endpoint ``email``)
invoke    an ``invoke`` key of app A (the default scope)
models    a ``models`` key of app A
manage    a ``manage`` key of app A
other     an ``invoke`` key of app B ("Other app", endpoint ``note``)
admin     an administrative key (``studio key create --admin``)
t_admin   a personal token of an administrator
t_member  a personal token of a member of app A
t_review  a personal token of a reviewer
========  =================================================================

Rows that create something use a name of the caller's own (``{caller}`` in the URL or
body), so each allowed caller creates and deletes its own model and template.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlmodel import Session

from studio.gateway import create_app
from studio.services import api_keys, endpoints
from studio.services.apps import create_app as create_studio_app
from tests.gateway.conftest import Deployed, make_variant, person_token
from tests.gateway.test_evaluations_api import make_evaluation
from tests.gateway.test_knowledge_api import make_knowledge_base

CALLERS = (
    "none",
    "revoked",
    "invoke",
    "models",
    "manage",
    "other",
    "admin",
    "t_admin",
    "t_member",
    "t_review",
)
EMAIL = {"inputs": {"event": "a fair", "who": "families"}}
RAW_CHAT = {"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]}
MINILM = "builtin/all-minilm-l6-v2"


def _slug(caller: str) -> str:
    return caller.replace("_", "-")


def template(caller: str) -> dict[str, Any]:
    return {
        "name": f"perm-template-{_slug(caller)}",
        "model_type": "CHAT_COMPLETION",
        "runtime": "openai-compatible",
        "runtime_config": {"base_url": "http://127.0.0.1:9/v1"},
    }


def external(caller: str) -> dict[str, Any]:
    return {
        "name": f"perm-model-{_slug(caller)}",
        "connection": "mock",
        "provider_model": "echo",
        "model_type": "CHAT_COMPLETION",
    }


Body = dict[str, Any] | Callable[[str], dict[str, Any]] | None


@dataclass(frozen=True)
class Row:
    method: str
    route: str  # the route's path as FastAPI lists it
    url: str  # the concrete URL sent ({caller}, {email_request}, {evaluation} filled in)
    codes: str  # one status per caller, in the order of CALLERS
    json: Body = field(default=None, hash=False)
    files: dict[str, Any] | None = field(default=None, hash=False)
    note: str = ""

    def expected(self, caller: str) -> int:
        statuses = self.codes.split()
        assert len(statuses) == len(CALLERS), f"{self.route}: {len(statuses)} statuses"
        return int(statuses[CALLERS.index(caller)])

    def body(self, caller: str) -> dict[str, Any] | None:
        return self.json(caller) if callable(self.json) else self.json


def public(method: str, route: str) -> Row:
    return Row(method, route, route, " ".join(["200"] * len(CALLERS)))


# What each kind of action expects, caller by caller (see studio/services/access.py):
#              none rev inv mod man oth adm tad tme trv
INVOKE_A = "401 401 200 403 403 403 200 200 200 403"  # an endpoint of app A
RAW = "401 401 403 200 403 403 200 200 200 403"  # a raw model
READ_MODELS = "401 401 403 200 200 403 200 200 200 403"  # Models API reads
MANAGE = "401 401 403 403 200 403 200 200 403 403"  # Models API writes, templates
MANAGE_NEW = "401 401 403 403 201 403 201 201 403 403"
MANAGE_GONE = "401 401 403 403 204 403 204 204 403 403"
ANY_CALLER = "401 401 200 200 200 200 200 200 200 403"  # documentation; lists of own apps
READ_A = "401 401 200 200 200 403 200 200 200 403"  # naming app A's endpoint or app
ONE_OF_A = "401 401 200 200 200 404 200 200 200 403"  # one thing of app A, by id

# fmt: off
TABLE: list[Row] = [
    public("GET", "/openapi.json"),
    public("GET", "/docs"),
    public("GET", "/docs/oauth2-redirect"),
    public("GET", "/redoc"),
    public("GET", "/healthz"),
    public("GET", "/readyz"),
    # deployed endpoints: the invoke scope of the endpoint's app
    Row("POST", "/v1/endpoints/{name}/generate", "/v1/endpoints/email/generate",
        INVOKE_A, json=EMAIL),
    Row("POST", "/v1/endpoints/{name}/generate-batch", "/v1/endpoints/email/generate-batch",
        INVOKE_A, files={"file": ("rows.csv", b"event,who\nfair,kids\n", "text/csv")}),
    # OpenAI-compatible: an endpoint with invoke; a raw model with the models scope
    Row("POST", "/v1/chat/completions", "/v1/chat/completions",
        INVOKE_A, json={"model": "email", **EMAIL, "messages": []}, note="endpoint"),
    Row("POST", "/v1/chat/completions", "/v1/chat/completions",
        RAW, json=RAW_CHAT, note="raw model"),
    Row("POST", "/v1/completions", "/v1/completions",
        INVOKE_A, json={"model": "email", **EMAIL}, note="endpoint"),
    Row("POST", "/v1/completions", "/v1/completions",
        RAW, json={"model": "mock/echo", "prompt": "x"}, note="raw model"),
    Row("POST", "/v1/embeddings", "/v1/embeddings",
        RAW, json={"model": MINILM, "input": "hello"}),
    Row("GET", "/v1/models", "/v1/models", ANY_CALLER, note="each sees what it may call"),
    # the Models API: templates and writes need manage; reads models or manage
    Row("GET", "/api/v1/model-templates", "/api/v1/model-templates", MANAGE),
    Row("GET", "/api/v1/model-templates/{ref:path}", "/api/v1/model-templates/llama-cpp-chat",
        MANAGE),
    Row("POST", "/api/v1/model-templates", "/api/v1/model-templates", MANAGE_NEW, json=template),
    Row("DELETE", "/api/v1/model-templates/{ref:path}",
        "/api/v1/model-templates/perm-template-{caller}", MANAGE_GONE),
    Row("GET", "/api/v1/model-schemas", "/api/v1/model-schemas", ANY_CALLER),
    Row("GET", "/api/v1/models", "/api/v1/models", READ_MODELS),
    Row("POST", "/api/v1/models", "/api/v1/models", MANAGE_NEW, json=external),
    Row("GET", "/api/v1/deployments", "/api/v1/deployments", READ_MODELS),
    Row("POST", "/api/v1/deployments/{ref:path}/deploy", f"/api/v1/deployments/{MINILM}/deploy",
        MANAGE),
    Row("POST", "/api/v1/models/{ref:path}/validate", "/api/v1/models/mock/echo/validate",
        READ_MODELS, json={"prompts": ["x"]}),
    Row("POST", "/api/v1/models/{ref:path}/execute", "/api/v1/models/mock/echo/execute",
        RAW, json={"messages": [{"role": "user", "content": "x"}]}),
    Row("GET", "/api/v1/models/{ref:path}/usage", f"/api/v1/models/{MINILM}/usage",
        READ_MODELS),
    Row("GET", "/api/v1/models/{ref:path}", f"/api/v1/models/{MINILM}", READ_MODELS),
    Row("DELETE", "/api/v1/models/{ref:path}", "/api/v1/models/perm-model-{caller}",
        MANAGE_GONE),
    # endpoint and monitoring reads: the caller's own apps (administrators: all)
    Row("GET", "/api/v1/endpoints", "/api/v1/endpoints", ANY_CALLER),
    Row("GET", "/api/v1/monitoring/stats", "/api/v1/monitoring/stats", ANY_CALLER),
    Row("GET", "/api/v1/monitoring/stats", "/api/v1/monitoring/stats?endpoint=email",
        READ_A, note="app A's endpoint by name"),
    Row("GET", "/api/v1/monitoring/requests", "/api/v1/monitoring/requests", ANY_CALLER),
    Row("GET", "/api/v1/monitoring/requests/{request_id}",
        "/api/v1/monitoring/requests/{email_request}", ONE_OF_A,
        note="another app's request is not found"),
    Row("GET", "/api/v1/usage/by-day", "/api/v1/usage/by-day", ANY_CALLER),
    # evaluation reads: the caller's own apps' evaluations (administrators: all)
    Row("GET", "/api/v1/evaluations", "/api/v1/evaluations", ANY_CALLER,
        note="each lists its own apps'"),
    Row("GET", "/api/v1/evaluations", "/api/v1/evaluations?app=Marketing%20copy",
        READ_A, note="app A's evaluations by name"),
    Row("GET", "/api/v1/evaluations/{evaluation_id}", "/api/v1/evaluations/{evaluation}",
        ONE_OF_A, note="another app's evaluation is not found"),
    Row("GET", "/api/v1/evaluations/{evaluation_id}/report",
        "/api/v1/evaluations/{evaluation}/report", ONE_OF_A),
    Row("GET", "/api/v1/evaluations/{evaluation_id}/results",
        "/api/v1/evaluations/{evaluation}/results?format=long", ONE_OF_A),
    # knowledge: ranking chunks is a raw model call; a query needs the knowledge base's app
    Row("POST", "/api/v1/chunks/rank", "/api/v1/chunks/rank", RAW,
        json={"query": "largest continent", "relevant_chunks": ["Asia is.", "Milk."],
              "rank_strategy": "bm25"}),
    Row("POST", "/api/v1/knowledge-bases/{kb_id}/query", "/api/v1/knowledge-bases/{kb}/query",
        ONE_OF_A, json={"query": "growth"}, note="another app's knowledge base is not found"),
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
    assert len(routes) > 30  # the walk found the routers' routes
    rows = {(r.method, r.route) for r in TABLE}
    assert routes - rows == set(), "add a row to TABLE for each new route"
    assert rows - routes == set(), "TABLE names routes the gateway no longer has"
    for row in TABLE:  # every cell is filled
        assert all(row.expected(c) for c in CALLERS)


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def callers(deployed: Deployed, session: Session) -> dict[str, dict[str, str]]:
    app_a = deployed.app_id
    other_app = create_studio_app(session=session, name="Other app")
    assert other_app.id is not None
    make_variant(session, other_app.id, "note", "Note {{event}}")
    endpoints.deploy(session=session, app=other_app.id, variant="note", name="note")

    def key(app: int, scopes: str, name: str) -> str:
        return api_keys.create_key(session=session, app=app, name=name, scopes=scopes).secret

    revoked = api_keys.create_key(session=session, app=app_a, name="old")
    api_keys.revoke_key(session=session, key_id=revoked.key.id)
    headers = {
        "none": {},
        "revoked": _bearer(revoked.secret),
        "invoke": _bearer(key(app_a, "invoke", "site")),
        "models": _bearer(key(app_a, "models", "raw")),
        "manage": _bearer(key(app_a, "manage", "ops")),
        "other": _bearer(key(other_app.id, "invoke", "other")),
        "admin": deployed.admin_headers,
    }
    session.commit()
    headers["t_admin"] = _bearer(person_token(session, "ada", "admin")[1])
    headers["t_member"] = _bearer(person_token(session, "mia", "member", (app_a,))[1])
    headers["t_review"] = _bearer(person_token(session, "rex", "reviewer")[1])
    assert set(headers) == set(CALLERS)
    return headers


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
        "kb": make_knowledge_base(session, deployed.app_id),
    }
    wrong: list[str] = []
    sent = 0
    for row in TABLE:
        for caller in CALLERS:
            url = row.url.format(caller=_slug(caller), **ids)
            r = c.request(
                row.method, url, json=row.body(caller), files=row.files, headers=callers[caller]
            )
            sent += 1
            if r.status_code != row.expected(caller):
                wrong.append(
                    f"{row.method} {url} ({row.note or 'as listed'}) by {caller}: "
                    f"{r.status_code}, expected {row.expected(caller)}: {r.text[:200]}"
                )
            elif r.status_code in (401, 403):  # every refusal says why in a sentence
                message = r.json()["error"]["message"]
                assert message.endswith(".") and "Traceback" not in message, message
    assert wrong == []
    assert sent == len(TABLE) * len(CALLERS)


def test_v1_models_lists_only_what_the_caller_may_call(
    deployed: Deployed, callers: dict[str, dict[str, str]]
) -> None:
    def listed(caller: str) -> set[str]:
        r = deployed.client.get("/v1/models", headers=callers[caller])
        assert r.status_code == 200, r.text
        return {m["id"] for m in r.json()["data"]}

    assert listed("invoke") == {"email"}  # its endpoint, no raw model
    assert listed("other") == {"note"}
    assert listed("manage") == set()  # may manage models, call none
    raw = listed("models")
    assert "email" not in raw and MINILM in raw
    assert listed("t_member") == {"email"} | raw  # app A's endpoint and raw models
    assert listed("admin") == listed("t_admin") == {"email", "note"} | raw


def test_refusals_name_the_missing_scope_or_role(
    deployed: Deployed, callers: dict[str, dict[str, str]]
) -> None:
    c = deployed.client

    def message(caller: str, method: str, url: str, body: Any = None) -> str:
        r = c.request(method, url, json=body, headers=callers[caller])
        assert r.status_code in (401, 403), r.text
        return str(r.json()["error"]["message"])

    generate = "/v1/endpoints/email/generate"
    assert "'invoke' scope" in message("models", "POST", generate, EMAIL)
    assert "another app" in message("other", "POST", generate, EMAIL)
    assert "'models' scope" in message("invoke", "POST", "/v1/chat/completions", RAW_CHAT)
    assert "'manage' scope" in message("models", "POST", "/api/v1/models", external("x"))
    assert "Only administrators" in message("t_member", "DELETE", f"/api/v1/models/{MINILM}")
    assert "Reviewers" in message("t_review", "GET", "/v1/models")
    assert "revoked" in message("revoked", "GET", "/v1/models")
    assert "no API key" in message("none", "GET", "/v1/models")
