"""The gateway's app factory: routes, error handlers, the request log's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from studio.gateway.deps import RequestLogMiddleware
from studio.gateway.errors import install_error_handlers
from studio.gateway.request_log import RequestLogger
from studio.gateway.routes.api import health
from studio.gateway.routes.api import router as api_router
from studio.gateway.routes.endpoints import router as endpoint_router
from studio.gateway.routes.openai import router as openai_router
from studio.store import get_engine

__all__ = ["create_app"]

DESCRIPTION = """
Deployed endpoints, an OpenAI-compatible API and the Models API of Prompt Studio.

Every route except `/healthz` and `/readyz` needs an API key
(`Authorization: Bearer <key>` or `x-api-key: <key>`); create one with
`studio key create --app APP`. Errors are JSON: `{"error": {"message", "type", ...}}`.
Every response carries `x-request-id` and `x-studio-overhead-ms`.
"""


def create_app(*, logger: RequestLogger | None = None) -> FastAPI:
    """A new gateway app. Its request log starts and drains with the app's lifespan."""
    request_logger = logger or RequestLogger()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        get_engine()  # migrate before the first request, not during it
        request_logger.start()
        try:
            yield
        finally:
            request_logger.stop()

    app = FastAPI(
        title="Prompt Studio gateway",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.request_logger = request_logger
    install_error_handlers(app)
    app.include_router(health)
    app.include_router(endpoint_router)
    app.include_router(openai_router)
    app.include_router(api_router)
    app.add_middleware(RequestLogMiddleware, logger=request_logger)
    return app
