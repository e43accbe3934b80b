"""The Models API (templates → models → deployments → execute → usage), the
endpoint and monitoring read API, and the health checks.

Request bodies go through the same validation as the CLI
(:func:`studio.core.schemas.parse_document` and the registry's own checks).

Who may call what is decided by :mod:`studio.services.access` (its docstring has the
table): Models API reads need the ``models`` or ``manage`` scope, writes and templates
``manage``, execute ``models``; the endpoint and monitoring reads are limited to the
apps the caller may read (an administrator's key or token sees every app).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from studio.core.schemas import model_schemas, parse_document
from studio.gateway.deps import ApiKeyDep, SessionDep, context
from studio.models import registry
from studio.models.specs import ModelCreate, TemplateCreate
from studio.models.usage import UsageStatistics, usage_statistics
from studio.services import endpoints, monitoring
from studio.services.access import (
    managing,
    readable_app_ids,
    require_caller,
    require_manage,
    require_models,
    require_models_read,
    require_readable_app,
    visible_endpoint_ids,
)
from studio.store import session_scope
from studio.store.tables import utcnow

__all__ = ["health", "router"]

router = APIRouter(prefix="/api/v1")
health = APIRouter(tags=["health"])
JsonBody = Body(..., description="A JSON object, as in the CLI's JSON files.")


def _row(obj: Any) -> dict[str, Any]:
    return obj.model_dump(mode="json")


# -- health -------------------------------------------------------------------------------


@health.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@health.get("/readyz", summary="The database answers and the request log is running")
def readyz(request: Request) -> JSONResponse:
    try:
        with session_scope() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:  # a readiness probe reports, never raises
        return JSONResponse(
            {"status": "unavailable", "reason": f"database: {type(exc).__name__}"}, 503
        )
    logger = getattr(request.app.state, "request_logger", None)
    stats = logger.stats().as_dict() if logger else {}
    return JSONResponse(
        {
            "status": "ready",
            "log_pending": stats.get("pending", 0),
            # requests served but not logged: queue full / refused by the database / given up
            "log_refused": stats.get("refused", 0),
            "log_quarantined": stats.get("quarantined", 0),
            "log_dropped": stats.get("dropped", 0),
        }
    )


# -- model templates ----------------------------------------------------------------------


@router.get("/model-templates", tags=["models"])
def list_templates(key: ApiKeyDep, session: SessionDep) -> list[dict[str, Any]]:
    require_manage(key)
    return [_row(t) for t in registry.list_templates(session=session)]


@router.get("/model-templates/{ref:path}", tags=["models"])
def get_template(ref: str, key: ApiKeyDep, session: SessionDep) -> dict[str, Any]:
    require_manage(key)
    return _row(registry.get_template(session=session, ref=ref))


@router.post("/model-templates", status_code=201, tags=["models"])
def create_template(key: ApiKeyDep, session: SessionDep, payload: Any = JsonBody) -> dict[str, Any]:
    """Create a template (the ``manage`` scope, or an administrator's key or token)."""
    with managing(key):
        data = parse_document(TemplateCreate, payload, "model template")
        return _row(registry.create_template(session=session, data=data))


@router.delete("/model-templates/{ref:path}", status_code=204, tags=["models"])
def delete_template(ref: str, key: ApiKeyDep, session: SessionDep) -> None:
    with managing(key):
        registry.delete_template(session=session, ref=ref)


@router.get("/model-schemas", tags=["models"])
def schemas(key: ApiKeyDep) -> dict[str, Any]:
    """JSON Schemas of the request and response of each model type."""
    require_caller(key)
    return model_schemas()


# -- models and deployments -------------------------------------------------------------------


@router.get("/models", tags=["models"])
def list_models(key: ApiKeyDep, session: SessionDep) -> list[dict[str, Any]]:
    require_models_read(key)
    return [_row(m) for m in registry.model_overview(session=session)]


@router.post("/models", status_code=201, tags=["models"])
def create_model(key: ApiKeyDep, session: SessionDep, payload: Any = JsonBody) -> dict[str, Any]:
    """Create a model from a template or an external connection, and deploy it."""
    with managing(key):
        data = parse_document(ModelCreate, payload, "model")
        model = registry.create_model(session=session, data=data)
        return _model(session, model.id)


def _model(session: Any, ref: str) -> dict[str, Any]:
    resolved = registry.resolve_model(session=session, ref=ref)
    data = _row(resolved.model)
    dep = resolved.deployment
    data["deployment"] = _row(dep) if dep else None
    return data


@router.get("/deployments", tags=["models"])
def list_deployments(key: ApiKeyDep, session: SessionDep) -> list[dict[str, Any]]:
    require_models_read(key)
    return [_row(d) for d in registry.list_deployments(session=session)]


@router.post("/deployments/{ref:path}/deploy", tags=["models"])
def deploy_model(ref: str, key: ApiKeyDep, session: SessionDep) -> dict[str, Any]:
    """Start or restart a deployment: READY, or FAILED with the reason."""
    with managing(key):
        return _row(registry.deploy_model(session=session, ref=ref))


@router.post("/models/{ref:path}/validate", tags=["models"])
def validate_request(
    ref: str, key: ApiKeyDep, session: SessionDep, payload: Any = JsonBody
) -> dict[str, Any]:
    """Check a request against the model type's schema without calling the model."""
    require_models_read(key)
    request = registry.validate_model_request(session=session, ref=ref, payload=payload)
    return {"valid": True, "request": _row(request)}


@router.post("/models/{ref:path}/execute", tags=["models"])
async def execute(
    ref: str, key: ApiKeyDep, request: Request, payload: Any = JsonBody
) -> dict[str, Any]:
    """Validate the request, call the model, record usage (as `studio model execute`)."""
    require_models(key)
    ctx = context(request)
    ctx.model = ref
    # No SessionDep: aexecute reads and writes with short sessions in worker threads and
    # holds none while the model answers.
    response = await registry.aexecute(ref=ref, payload=payload, source="gateway")
    data = response.model_dump(mode="json")
    ctx.prompt_tokens = data.get("prompt_tokens") or data.get("tokens_used")
    ctx.response_tokens = data.get("response_tokens")
    return data


@router.get("/models/{ref:path}/usage", tags=["models"])
def model_usage(
    ref: str,
    key: ApiKeyDep,
    session: SessionDep,
    by: Literal["deployment", "name"] = "deployment",
) -> UsageStatistics:
    """Requests, tokens, errors, cost and latency by day."""
    require_models_read(key)
    resolved = registry.resolve_model(session=session, ref=ref)
    if by == "name":
        return usage_statistics(session=session, model_name=resolved.model.name)
    dep = resolved.deployment
    return usage_statistics(session=session, deployment_id=dep.id if dep else "-")


@router.get("/models/{ref:path}", tags=["models"])
def get_model(ref: str, key: ApiKeyDep, session: SessionDep) -> dict[str, Any]:
    require_models_read(key)
    return _model(session, ref)


@router.delete("/models/{ref:path}", status_code=204, tags=["models"])
def delete_model(ref: str, key: ApiKeyDep, session: SessionDep) -> None:
    with managing(key):
        registry.delete_model(session=session, ref=ref)


# -- endpoints and monitoring -------------------------------------------------------------------


@router.get("/endpoints", tags=["monitoring"])
def list_endpoints(key: ApiKeyDep, session: SessionDep) -> list[endpoints.EndpointPublic]:
    readable = readable_app_ids(key)
    if readable is not None and len(readable) == 1:
        return endpoints.list_endpoints(session=session, app=next(iter(readable)))
    rows = endpoints.list_endpoints(session=session) if readable is None or readable else []
    return [r for r in rows if readable is None or r.app_id in readable]


def _endpoint_id(session: Any, key: ApiKeyDep, name: str | None) -> int | None:
    if not name:
        return None
    found = endpoints.get_endpoint(session=session, name=name)
    require_readable_app(key, found.app_id)
    return found.id


@router.get("/monitoring/stats", tags=["monitoring"])
def stats(
    key: ApiKeyDep,
    session: SessionDep,
    endpoint: str | None = None,
    minutes: int = Query(60, ge=1, le=60 * 24 * 90),
    bucket_minutes: int | None = Query(None, ge=1, le=60 * 24 * 90),
) -> monitoring.MonitoringStats:
    """Requests per minute, error rate, tokens, cost and latency percentiles."""
    now = utcnow()
    return monitoring.request_stats(
        session=session,
        since=now - timedelta(minutes=minutes),
        until=now,
        endpoint_id=_endpoint_id(session, key, endpoint),
        bucket_minutes=bucket_minutes,
        endpoint_ids=visible_endpoint_ids(session=session, key=key),
    )


@router.get("/monitoring/requests", tags=["monitoring"])
def recent_requests(
    key: ApiKeyDep,
    session: SessionDep,
    endpoint: str | None = None,
    status: str = Query("all", description="all, ok, error, or an HTTP status"),
    since: datetime | None = None,
    until: datetime | None = None,
    q: str | None = Query(None, description="Text in the request id, error or bodies"),
    limit: int = Query(100, ge=1, le=1000),
) -> list[monitoring.RequestSummary]:
    chosen: Any = (
        int(status) if status.isascii() and status.isdigit() and len(status) < 4 else status
    )
    if chosen not in ("all", "ok", "error") and not isinstance(chosen, int):
        from studio.core.errors import FieldProblem, RequestValidationError

        raise RequestValidationError([FieldProblem("status", "all, ok, error or a number")])
    return monitoring.list_requests(
        session=session,
        endpoint_id=_endpoint_id(session, key, endpoint),
        status=chosen,
        since=since,
        until=until,
        text=q,
        limit=limit,
        endpoint_ids=visible_endpoint_ids(session=session, key=key),
    )


@router.get("/monitoring/requests/{request_id}", tags=["monitoring"])
def request_detail(
    request_id: str, key: ApiKeyDep, session: SessionDep
) -> monitoring.RequestDetail:
    return monitoring.get_request(
        session=session,
        request_id=request_id,
        endpoint_ids=visible_endpoint_ids(session=session, key=key),
    )


@router.get("/usage/by-day", tags=["monitoring"])
def usage_by_day(
    key: ApiKeyDep,
    session: SessionDep,
    endpoint: str | None = None,
    days: int = Query(30, ge=1, le=366),
) -> list[monitoring.UsageDay]:
    """Gateway usage per day, endpoint and model."""
    now = utcnow()
    return monitoring.usage_by_day(
        session=session,
        since=now - timedelta(days=days),
        until=now,
        endpoint_id=_endpoint_id(session, key, endpoint),
        endpoint_ids=visible_endpoint_ids(session=session, key=key),
    )
