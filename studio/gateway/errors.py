"""The one place where studio errors become HTTP statuses and JSON error bodies.

Every error body has the OpenAI shape, so SDKs show the message::

    {"error": {"message": "...", "type": "invalid_request", "hint": "...", "request_id": "..."}}
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError as FastAPIValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from studio.core.errors import (
    ConfigError,
    ConflictError,
    InvalidApiKeyError,
    ModelNotReadyError,
    NotFoundError,
    PermissionDeniedError,
    PromptTemplateError,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimitError,
    ProviderRequestError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitedError,
    RequestValidationError,
    RevokedApiKeyError,
    StudioError,
)

__all__ = ["error_body", "install_error_handlers", "status_for"]

log = logging.getLogger(__name__)

# Most specific first: the first class that matches decides.
STATUS: list[tuple[type[StudioError], int, str]] = [
    (InvalidApiKeyError, 401, "authentication_error"),
    (RevokedApiKeyError, 401, "authentication_error"),
    (PermissionDeniedError, 403, "permission_denied"),
    (RateLimitedError, 429, "rate_limit_exceeded"),
    (NotFoundError, 404, "not_found"),
    (ConflictError, 409, "conflict"),
    (RequestValidationError, 422, "invalid_request"),
    (PromptTemplateError, 422, "invalid_request"),
    (ModelNotReadyError, 409, "model_not_ready"),
    (ProviderTimeoutError, 504, "provider_timeout"),
    (ProviderRateLimitError, 502, "provider_rate_limited"),
    (ProviderAuthError, 502, "provider_auth_error"),
    (ProviderRequestError, 502, "provider_refused"),
    (ProviderUnavailableError, 502, "provider_unavailable"),
    (ProviderError, 502, "provider_error"),
    (ConfigError, 400, "configuration_error"),
    (StudioError, 400, "bad_request"),
]


def status_for(exc: BaseException) -> tuple[int, str]:
    """HTTP status and error type for an exception (unknown ones are 500 internal_error)."""
    for cls, status, kind in STATUS:
        if isinstance(exc, cls):
            return status, kind
    return 500, "internal_error"


def error_body(
    message: str,
    kind: str,
    *,
    hint: str | None = None,
    request: Request | None = None,
    **extra: Any,
) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": kind}
    if hint:
        error["hint"] = hint
    rid = getattr(request.state, "request_id", None) if request is not None else None
    if rid:
        error["request_id"] = rid
    error.update({k: v for k, v in extra.items() if v is not None})
    return {"error": error}


def _note(request: Request, message: str) -> None:
    ctx = getattr(request.state, "log", None)
    if ctx is not None:
        ctx.error = message[:4000]


def studio_error_response(request: Request, exc: StudioError) -> JSONResponse:
    status, kind = status_for(exc)
    extra: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if isinstance(exc, RequestValidationError):
        extra["problems"] = [{"field": p.field, "rule": p.rule} for p in exc.problems]
    if isinstance(exc, RateLimitedError):
        headers["Retry-After"] = str(exc.retry_after_s)
    if isinstance(exc, ProviderError):
        extra["provider"] = exc.provider
    _note(request, str(exc))
    body = error_body(exc.message, kind, hint=exc.hint, request=request, **extra)
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StudioError)
    async def _studio(request: Request, exc: StudioError) -> JSONResponse:
        return studio_error_response(request, exc)

    @app.exception_handler(FastAPIValidationError)
    async def _invalid(request: Request, exc: FastAPIValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p != "body"]
            field = ".".join(loc) or "(body)"
            rule = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
            if err.get("type") == "missing":
                rule = "required field is missing"
            elif err.get("type") in ("model_attributes_type", "model_type", "dict_type"):
                rule = "must be a JSON object"
            elif err.get("type") == "json_invalid":
                field, rule = "(body)", "is not valid JSON"
            problems.append({"field": field, "rule": rule})
        message = "Invalid request: " + "; ".join(f"{p['field']}: {p['rule']}" for p in problems)
        _note(request, message)
        body = error_body(message, "invalid_request", request=request, problems=problems)
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"There is no route {request.method} {request.url.path}."
        _note(request, message)
        return JSONResponse(
            error_body(message, kind, request=request),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(DataError)
    async def _unstorable(request: Request, exc: DataError) -> JSONResponse:
        # The database refused a value the request carried (PostgreSQL: a NUL character in
        # text, a number beyond its column): the client's input, not a server fault.
        message = (
            "The request holds a value the database cannot store or look up (for example a "
            "NUL character, or a number that is too large). Remove it and try again."
        )
        _note(request, message)
        body = error_body(message, "invalid_request", request=request)
        return JSONResponse(body, status_code=400)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        message = f"The gateway hit an unexpected error ({type(exc).__name__})."
        _note(request, f"{message} {exc}")
        return JSONResponse(error_body(message, "internal_error", request=request), status_code=500)
