"""Deployed endpoints: one request, or a CSV of them.

``POST /v1/endpoints/{name}/generate`` is the gateway's hot path: it reads the raw body
and validates it with one pydantic call (FastAPI's own body handling cost about 7% of a
request's CPU), with the same 422 answers FastAPI gives. ``stream: true`` sends the
answer as server-sent events as the model writes it, in OpenAI's ``text_completion``
chunk format (:mod:`studio.gateway.sse`), ending with a usage chunk and ``[DONE]``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError as BodyValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from studio.core.errors import ProviderError, StudioError
from studio.core.export import to_csv
from studio.core.settings import DEFAULT_CONCURRENCY
from studio.gateway.deps import ApiKeyDep, RequestContext, context
from studio.gateway.request_log import ModelCallNote
from studio.gateway.sse import event_stream
from studio.services import endpoint_calls, endpoint_streams
from studio.services.access import require_invoke
from studio.services.datasets import parse_table

__all__ = ["router"]

router = APIRouter(tags=["endpoints"])

BATCH_CONCURRENCY = DEFAULT_CONCURRENCY
BATCH_MAX_BYTES = 10 * 1024 * 1024


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: dict[str, Any] = Field(
        default_factory=dict, description="Values of the template's variables."
    )
    stream: bool = Field(
        default=False,
        description="Send the answer as server-sent events as the model writes it "
        "(OpenAI `text_completion` chunks, then a usage chunk and `data: [DONE]`).",
    )


GENERATE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": GenerateRequest.model_json_schema()}},
    }
}


async def _generate_body(request: Request) -> GenerateRequest:
    """The request's body as a :class:`GenerateRequest`, or FastAPI's own 422."""
    raw = await request.body()
    if not raw:
        missing = {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}
        raise BodyValidationError([missing])
    try:
        return GenerateRequest.model_validate_json(raw)
    except ValidationError as exc:
        raise BodyValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


class Usage(BaseModel):
    prompt_tokens: int
    response_tokens: int
    total_tokens: int
    cost: float


class GenerateResponse(BaseModel):
    request_id: str
    endpoint: str
    version: int | None
    model: str
    output: str
    finish_reason: str | None
    usage: Usage
    latency_ms: float
    model_latency_ms: float


async def _prepare(
    name: str, key: ApiKeyDep, ctx: RequestContext
) -> endpoint_calls.EndpointRuntime:
    runtime = await endpoint_calls.aload_runtime(name)
    assert runtime is not None
    ctx.endpoint_id, ctx.app_id = runtime.endpoint_id, runtime.app_id
    ctx.model, ctx.model_type = runtime.prepared.name, runtime.prepared.model_type.value
    ctx.deployment_id, ctx.record_usage = runtime.prepared.deployment_id, True
    require_invoke(key, runtime.app_id)
    return runtime


@router.post(
    "/v1/endpoints/{name}/generate",
    summary="Call a deployed endpoint",
    response_model=GenerateResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
    openapi_extra=GENERATE_BODY,
)
async def generate(name: str, key: ApiKeyDep, request: Request) -> Response:
    """Render the endpoint's template with ``inputs`` and return the model's answer
    (as it is written, with ``stream: true``)."""
    ctx = context(request)
    body = await _generate_body(request)
    await _prepare(name, key, ctx)
    if body.stream:
        answer = await endpoint_streams.open_endpoint_stream(name=name, inputs=body.inputs)
        ctx.model = answer.prepared.name
        return event_stream(
            answer,
            ctx,
            kind="text",
            model=name,
            created=int(time.time()),
            include_usage=True,
        )
    result = await endpoint_calls.generate(name=name, inputs=body.inputs)
    ctx.note_result(result)
    whole = GenerateResponse(
        request_id=ctx.request_id,
        endpoint=result.endpoint or name,
        version=result.version,
        model=result.model,
        output=result.output,
        finish_reason=result.finish_reason,
        usage=Usage(**result.usage),
        latency_ms=round(result.latency_ms, 3),
        model_latency_ms=round(result.model_latency_ms, 3),
    )
    # Serialised here in one call: FastAPI would validate the model it was just built
    # from again before dumping it (``response_model`` still documents the answer).
    return Response(whole.model_dump_json(), media_type="application/json")


@router.post(
    "/v1/endpoints/{name}/generate-batch",
    summary="Call an endpoint once per CSV row",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def generate_batch(
    name: str,
    file: Annotated[UploadFile, File(description="CSV whose columns are the inputs")],
    key: ApiKeyDep,
    request: Request,
) -> Response:
    """Answer every row of the uploaded CSV; returns the CSV with ``output`` and ``error``."""
    ctx = context(request)
    await _prepare(name, key, ctx)
    data = await file.read(BATCH_MAX_BYTES + 1)
    table = parse_table(data, filename=file.filename or "upload.csv", max_bytes=BATCH_MAX_BYTES)
    limit = asyncio.Semaphore(BATCH_CONCURRENCY)
    totals = {"prompt": 0, "response": 0, "cost": 0.0, "model_ms": 0.0}

    async def one(row: dict[str, str]) -> dict[str, Any]:
        async with limit:
            started = time.perf_counter()
            try:
                result = await endpoint_calls.generate(name=name, inputs=row)
            except StudioError as exc:
                if isinstance(exc, ProviderError):  # the model was called and failed
                    latency_ms = (time.perf_counter() - started) * 1000
                    ctx.calls.append(ModelCallNote(latency_ms=latency_ms, error=str(exc)))
                return {**row, "output": "", "error": str(exc)}
        ctx.calls.append(  # each row's call is a row of the model's usage statistics
            ModelCallNote(
                latency_ms=result.model_latency_ms,
                prompt_tokens=result.prompt_tokens,
                response_tokens=result.response_tokens,
                cost=result.cost,
            )
        )
        totals["prompt"] += result.prompt_tokens
        totals["response"] += result.response_tokens
        totals["cost"] += result.cost
        totals["model_ms"] = max(totals["model_ms"], result.model_latency_ms)
        return {**row, "output": result.output, "error": ""}

    rows = await asyncio.gather(*(one(r) for r in table.rows))
    ctx.prompt_tokens, ctx.response_tokens = int(totals["prompt"]), int(totals["response"])
    ctx.cost, ctx.record_usage = float(totals["cost"]), False
    columns = [c for c in table.columns if c not in ("output", "error")] + ["output", "error"]
    stem = (file.filename or "rows").rsplit(".", 1)[0]
    return Response(
        to_csv(rows, columns),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{stem}-outputs.csv"'},
    )
