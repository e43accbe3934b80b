"""The OpenAI-compatible surface, so the official SDKs work unchanged.

``model`` names a deployed endpoint or a model deployment. For an endpoint the
template's variables come in an extra ``inputs`` field (``extra_body`` in the
SDKs); the request's messages follow the rendered prompt. ``stream: true`` sends
the answer as server-sent events in the OpenAI chunk format as the model produces
its tokens (:mod:`studio.gateway.sse`), with a usage chunk when
``stream_options.include_usage`` asks for one.

Who may name what is decided by :mod:`studio.services.access`: an endpoint needs the
``invoke`` scope of its app (or a token of its app's member, or an administrator); a
model deployment (a raw model, on the studio's provider credit) needs the ``models``
scope (or a member's or administrator's token).
"""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import col, select

from studio.core.errors import FieldProblem, RequestValidationError
from studio.core.schemas import Message, ModelType
from studio.gateway.deps import ApiKeyDep, RequestContext, SessionDep, context
from studio.gateway.sse import EventStream, event_stream
from studio.services import endpoint_calls, endpoint_streams
from studio.services.access import (
    may_call_models,
    may_invoke,
    require_caller,
    require_invoke,
    require_models,
)
from studio.store.tables import Endpoint, ModelDeployment

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["openai-compatible"])


class _OpenAIRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # SDKs send fields we do not use (n, user...)

    model: str = Field(min_length=1, description="An endpoint name or a model deployment name.")
    inputs: dict[str, Any] = Field(default_factory=dict, description="Endpoint template inputs.")
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None

    @property
    def include_usage(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))

    def parameters(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.temperature is not None:
            params["temperature"] = min(self.temperature, 1.0)  # the studio's scale is [0, 1]
        if self.max_tokens is not None:
            params["max_tokens"] = self.max_tokens
        if self.top_p is not None:
            params["top_p"] = self.top_p
        if self.stop:
            params["stop_sequences"] = [self.stop] if isinstance(self.stop, str) else self.stop
        return params


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = ""

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: keep the text ones
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatCompletionsRequest(_OpenAIRequest):
    messages: list[ChatMessage] = Field(default_factory=list)


class CompletionsRequest(_OpenAIRequest):
    prompt: str | list[str] = ""


class EmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    input: str | list[str]


def _usage(result: endpoint_calls.GenerateResult) -> dict[str, int]:
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.response_tokens,
        "total_tokens": result.prompt_tokens + result.response_tokens,
    }


async def _note_target(ctx: RequestContext, key: ApiKeyDep, name: str) -> bool:
    """Fill the log context for ``name``; True when it is an endpoint.

    Refuses a caller that may not invoke the endpoint, or may not call raw models."""
    runtime = await endpoint_calls.aload_runtime(name, missing_ok=True)
    if runtime is None:
        require_models(key)
    else:
        require_invoke(key, runtime.app_id)
        ctx.endpoint_id, ctx.app_id = runtime.endpoint_id, runtime.app_id
        ctx.model_type = runtime.prepared.model_type.value
        ctx.deployment_id = runtime.prepared.deployment_id
    ctx.record_usage = True
    return runtime is not None


def _messages(items: list[ChatMessage]) -> list[Message]:
    return [Message(role=m.role, content=m.text()) for m in items]


async def _model_chat_payload(
    body: ChatCompletionsRequest, ctx: RequestContext, messages: list[Message]
) -> dict[str, Any]:
    """The request a chat call of a model deployment sends it."""
    if not messages:
        raise RequestValidationError([FieldProblem("messages", "at least 1 message required")])
    mtype = await endpoint_calls.model_type_of(body.model)
    ctx.model_type = mtype.value
    if mtype is ModelType.COMPLETION:
        payload: dict[str, Any] = {"prompts": ["\n\n".join(m.content for m in messages)]}
    else:
        payload = {"messages": [m.model_dump(exclude_none=True) for m in messages]}
    return {**payload, **body.parameters()}


async def _chat(body: ChatCompletionsRequest, ctx: RequestContext, is_endpoint: bool) -> Any:
    messages = _messages(body.messages)
    if is_endpoint:
        return await endpoint_calls.generate(
            name=body.model, inputs=body.inputs, messages=messages, parameters=body.parameters()
        )
    payload = await _model_chat_payload(body, ctx, messages)
    return await endpoint_calls.call_model(ref=body.model, payload=payload)


async def _stream_chat(
    body: ChatCompletionsRequest, ctx: RequestContext, is_endpoint: bool
) -> EventStream:
    """Tokens as the model sends them; an error before the first one is a plain error."""
    messages = _messages(body.messages)
    if is_endpoint:
        answer = await endpoint_streams.open_endpoint_stream(
            name=body.model, inputs=body.inputs, messages=messages, parameters=body.parameters()
        )
    else:
        payload = await _model_chat_payload(body, ctx, messages)
        answer = await endpoint_streams.open_model_stream(ref=body.model, payload=payload)
    ctx.model = answer.prepared.name
    return event_stream(
        answer,
        ctx,
        kind="chat",
        model=body.model,
        created=int(time.time()),
        include_usage=body.include_usage,
    )


@router.post("/chat/completions", summary="OpenAI-compatible chat completion")
async def chat_completions(body: ChatCompletionsRequest, key: ApiKeyDep, request: Request) -> Any:
    ctx = context(request)
    is_endpoint = await _note_target(ctx, key, body.model)
    if body.stream:
        return await _stream_chat(body, ctx, is_endpoint)
    result = await _chat(body, ctx, is_endpoint)
    ctx.note_result(result)
    created, chat_id = int(time.time()), f"chatcmpl-{ctx.request_id}"
    finish = result.finish_reason or "stop"
    return {
        "id": chat_id,
        "object": "chat.completion",
        "created": created,
        "model": body.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.output},
                "finish_reason": finish,
            }
        ],
        "usage": _usage(result),
    }


async def _model_completion_payload(
    body: CompletionsRequest, ctx: RequestContext, prompts: list[str]
) -> dict[str, Any]:
    """The request a text completion of a model deployment sends it."""
    if not any(prompts):
        raise RequestValidationError([FieldProblem("prompt", "must not be empty")])
    mtype = await endpoint_calls.model_type_of(body.model)
    ctx.model_type = mtype.value
    if mtype is ModelType.COMPLETION:
        payload: dict[str, Any] = {"prompts": prompts}
    else:
        payload = {"prompt": "\n\n".join(prompts), "chat_history": []}
    return {**payload, **body.parameters()}


async def _stream_completions(
    body: CompletionsRequest, ctx: RequestContext, is_endpoint: bool, prompts: list[str]
) -> EventStream:
    if is_endpoint:
        extra = [Message(role="user", content=p) for p in prompts if p]
        answer = await endpoint_streams.open_endpoint_stream(
            name=body.model, inputs=body.inputs, messages=extra, parameters=body.parameters()
        )
    else:
        payload = await _model_completion_payload(body, ctx, prompts)
        answer = await endpoint_streams.open_model_stream(ref=body.model, payload=payload)
    ctx.model = answer.prepared.name
    return event_stream(
        answer,
        ctx,
        kind="text",
        model=body.model,
        created=int(time.time()),
        include_usage=body.include_usage,
    )


@router.post("/completions", summary="OpenAI-compatible text completion")
async def completions(body: CompletionsRequest, key: ApiKeyDep, request: Request) -> Any:
    ctx = context(request)
    prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
    is_endpoint = await _note_target(ctx, key, body.model)
    if body.stream:
        return await _stream_completions(body, ctx, is_endpoint, prompts)
    if is_endpoint:
        extra = [Message(role="user", content=p) for p in prompts if p]
        result = await endpoint_calls.generate(
            name=body.model, inputs=body.inputs, messages=extra, parameters=body.parameters()
        )
        outputs = [result.output]
    else:
        payload = await _model_completion_payload(body, ctx, prompts)
        result = await endpoint_calls.call_model(ref=body.model, payload=payload)
        completions_ = result.response.get("completions")
        outputs = (
            [c[1][0] if c[1] else "" for c in completions_] if completions_ else [result.output]
        )
    ctx.note_result(result)
    finish = result.finish_reason or "stop"
    return {
        "id": f"cmpl-{ctx.request_id}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": body.model,
        "choices": [
            {"index": i, "text": text, "finish_reason": finish, "logprobs": None}
            for i, text in enumerate(outputs)
        ],
        "usage": _usage(result),
    }


@router.post("/embeddings", summary="OpenAI-compatible embeddings")
async def embeddings(body: EmbeddingsRequest, key: ApiKeyDep, request: Request) -> Any:
    ctx = context(request)
    texts = [body.input] if isinstance(body.input, str) else body.input
    require_models(key)  # embeddings call a model directly, never an endpoint
    if not texts:
        raise RequestValidationError([FieldProblem("input", "at least 1 text required")])
    mtype = await endpoint_calls.model_type_of(body.model, payload={"texts": texts})
    if mtype is not ModelType.EMBEDDING:
        raise RequestValidationError(
            [FieldProblem("model", f"'{body.model}' is a {mtype.value} model, not EMBEDDING")]
        )
    ctx.model_type, ctx.record_usage = mtype.value, True
    result = await endpoint_calls.call_model(ref=body.model, payload={"texts": texts})
    ctx.note_result(result)
    vectors = result.response.get("embeddings") or []
    return {
        "object": "list",
        "model": body.model,
        "data": [
            {"object": "embedding", "index": i, "embedding": vector}
            for i, (_, vector) in enumerate(vectors)
        ],
        "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens},
    }


@router.get("/models", summary="OpenAI-compatible model list (endpoints and deployments)")
def list_models(key: ApiKeyDep, session: SessionDep) -> Any:
    """The endpoints the caller may invoke and, with the ``models`` scope (or a member's
    or administrator's token), the READY model deployments."""
    require_caller(key)
    data = []
    stmt = select(Endpoint).where(col(Endpoint.active).is_(True)).order_by(col(Endpoint.name))
    for row in session.exec(stmt):
        if may_invoke(key, row.app_id):
            created = int(row.created_at.timestamp())
            data.append(
                {"id": row.name, "object": "model", "created": created, "owned_by": "endpoint"}
            )
    if not may_call_models(key):  # raw models it may not call are not listed
        return {"object": "list", "data": data}
    deployments = session.exec(
        select(ModelDeployment)
        .where(ModelDeployment.status == "READY")
        .order_by(col(ModelDeployment.name))
    )
    for dep in deployments:
        created = int(dep.created_at.timestamp())
        data.append({"id": dep.name, "object": "model", "created": created, "owned_by": "studio"})
    return {"object": "list", "data": data}
