"""The gateway's app factory: routes, error handlers, the request log's lifespan.

FastAPI's own OpenTelemetry instrumentation is on when OpenTelemetry is set up as the
gateway starts (an ``OTEL_*`` environment variable, or providers installed before the
app is made, as ``opentelemetry-instrument`` does) and off otherwise: the check alone
("is a provider configured now?") cost about 4% of a request's CPU.

Once started, the gateway moves everything it has built (modules, the app, the engine)
out of the garbage collector's sight (``gc.freeze``) and collects its youngest objects
every :data:`GC_GEN0_THRESHOLD` allocations instead of 700: in ``bench_gateway.py`` the
collector took ~1 s of a run's CPU (about 5% of a request's, with pauses up to 27 ms
in one client's path) and ~0.08 s after. Both are undone when the app shuts down.
"""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig

from studio.gateway.deps import RequestLogMiddleware
from studio.gateway.errors import install_error_handlers
from studio.gateway.request_log import RequestLogger
from studio.gateway.routes.api import health
from studio.gateway.routes.api import router as api_router
from studio.gateway.routes.endpoints import router as endpoint_router
from studio.gateway.routes.evaluations import router as evaluations_router
from studio.gateway.routes.knowledge import router as knowledge_router
from studio.gateway.routes.openai import router as openai_router
from studio.store import get_engine

__all__ = ["GC_GEN0_THRESHOLD", "create_app"]

GC_GEN0_THRESHOLD = 10_000

DESCRIPTION = """
Deployed endpoints, an OpenAI-compatible API and the Models API of Prompt Studio.

Every route except `/healthz` and `/readyz` needs an API key or a personal access
token (`Authorization: Bearer <key>` or `x-api-key: <key>`); create one with
`studio key create --app APP [--scope invoke,models,manage]` or
`studio token create --user NAME`. Without one, or with a revoked one: 401; without the
scope or role an action needs: 403, saying which. Errors are JSON:
`{"error": {"message", "type", ...}}`.
Every response carries `x-request-id` and `x-studio-overhead-ms`.
"""


def _telemetry() -> TelemetryConfig | None:
    """FastAPI's telemetry settings: its defaults when OpenTelemetry is set up, else off."""
    if any(name.startswith("OTEL_") for name in os.environ):
        return None
    try:
        from opentelemetry import _logs, metrics, trace
    except ImportError:  # FastAPI without OpenTelemetry: nothing to switch off
        return None
    providers = (
        trace.get_tracer_provider(),
        metrics.get_meter_provider(),
        _logs.get_logger_provider(),
    )
    names = [type(p).__name__ for p in providers]
    if any("Proxy" not in name and "NoOp" not in name for name in names):
        return None
    return {"tracing": False, "metrics": False, "logs": False}


def create_app(*, logger: RequestLogger | None = None) -> FastAPI:
    """A new gateway app. Its request log starts and drains with the app's lifespan."""
    request_logger = logger or RequestLogger()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        get_engine()  # migrate before the first request, not during it
        request_logger.start()
        thresholds = gc.get_threshold()
        gc.freeze()
        gc.set_threshold(max(thresholds[0], GC_GEN0_THRESHOLD), *thresholds[1:])
        try:
            yield
        finally:
            gc.set_threshold(*thresholds)
            gc.unfreeze()
            request_logger.stop()

    app = FastAPI(
        title="Prompt Studio gateway",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        telemetry=_telemetry(),
    )
    app.state.request_logger = request_logger
    install_error_handlers(app)
    app.include_router(health)
    app.include_router(endpoint_router)
    app.include_router(openai_router)
    app.include_router(api_router)
    app.include_router(evaluations_router)
    app.include_router(knowledge_router)
    app.add_middleware(RequestLogMiddleware, logger=request_logger)
    return app
