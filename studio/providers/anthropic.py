"""Anthropic's Messages API (``POST /v1/messages``).

System messages (and agent instructions) go in the top-level ``system`` field;
``max_tokens`` is required, so a default comes from the options. Stop reasons
are reported in the vocabulary the other providers use (``stop``, ``length``,
``tool_calls``). ``tool`` messages are sent as user messages naming the tool,
since the wire schema carries no tool-use ids.
"""

from __future__ import annotations

import json
from contextlib import aclosing
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, Field
from pydantic import ValidationError as PydanticValidationError

from studio.core.errors import ProviderRequestError, ProviderUnavailableError
from studio.core.schemas import (
    ActionContext,
    AgentAction,
    AgentRequest,
    AgentResponse,
    ChatCompletionRequest,
    ChatCompletionResponse,
    Message,
    ModelType,
    Sampling,
    ToolRequest,
    problems_from_pydantic,
)
from studio.providers.base import ChunkStream, ModelInfo, StreamChunk
from studio.providers.http import WHOLE_ANSWER, HTTPProvider

__all__ = ["PROVIDER", "AnthropicProvider"]

_Body = TypeVar("_Body", bound=BaseModel)

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}


class _Usage(BaseModel):
    input_tokens: int | None = None
    output_tokens: int | None = None


class _Block(BaseModel):
    type: str
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: dict[str, Any] | None = None


class _MessageBody(BaseModel):
    content: list[_Block]
    stop_reason: str | None = None
    usage: _Usage | None = None


class _ModelItem(BaseModel):
    id: str
    display_name: str | None = None


class _ModelsBody(BaseModel):
    data: list[_ModelItem]


def _last_k(request: AgentRequest) -> list[Message]:
    """Apply the memory strategy: system messages stay, plus the last k others."""
    if request.memory_strategy is None:
        return list(request.messages)
    k = request.memory_strategy.params.get("k", 10)
    others = [i for i, m in enumerate(request.messages) if m.role != "system"]
    keep = set(others[-k:])
    return [m for i, m in enumerate(request.messages) if m.role == "system" or i in keep]


class AnthropicProvider(HTTPProvider):
    """Claude models through Anthropic's Messages API."""

    kind = "anthropic"
    description = "Anthropic's Claude models (Messages API)."
    model_types = frozenset({ModelType.CHAT_COMPLETION, ModelType.AGENT})
    needs_key = True
    key_env_var = "ANTHROPIC_API_KEY"
    default_base_url = "https://api.anthropic.com"

    class Options(HTTPProvider.Options):
        default_max_tokens: int = Field(
            default=1024,
            ge=1,
            le=1_000_000,
            description="max_tokens sent when a request sets none (Anthropic requires one).",
        )
        anthropic_version: str = Field(
            default="2023-06-01",
            min_length=1,
            max_length=40,
            description="Value of the anthropic-version header.",
        )

    options: Options

    def auth_headers(self) -> dict[str, str]:
        headers = {"anthropic-version": self.options.anthropic_version}
        if self._api_key:
            headers["x-api-key"] = self._api_key
        return headers

    def error_message(self, response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and error.get("message"):
            message = str(error["message"])
        else:
            message = super().error_message(response)
        return message.replace(self._api_key, "***") if self._api_key else message

    # -- helpers -------------------------------------------------------------------

    def _read(self, model: type[_Body], body: Any, path: str) -> _Body:
        try:
            return model.model_validate(body)
        except PydanticValidationError as exc:
            problems = "; ".join(str(p) for p in problems_from_pydantic(exc, model))
            raise self._shape_error(path, problems, body) from exc

    def _json(self, path: str, text: str) -> Any:
        try:
            return json.loads(text)
        except ValueError:
            raise self._shape_error(path, "the answer is not JSON", text[:200]) from None

    def _shape_error(self, path: str, problem: str, body: Any) -> ProviderUnavailableError:
        return ProviderUnavailableError(
            f"answered {path} in an unexpected shape ({problem})",
            provider=self.name,
            provider_message=json.dumps(body, default=str)[:200],
        )

    def _payload(
        self, model: str, messages: list[Message], request: Sampling, instructions: str | None
    ) -> dict[str, Any]:
        system = [instructions] if instructions else []
        turns: list[dict[str, str]] = []
        for m in messages:
            if m.role == "system":
                system.append(m.content)
                continue
            role, content = m.role, m.content
            if role == "tool":
                tool = f"tool '{m.name}'" if m.name else "a tool"
                role, content = "user", f"Result from {tool}:\n{content}"
            if turns and turns[-1]["role"] == role:  # the API wants alternating turns
                turns[-1]["content"] += "\n\n" + content
            else:
                turns.append({"role": role, "content": content})
        if not turns:
            raise ProviderRequestError(
                "Anthropic needs at least one user or assistant message besides the system prompt",
                provider=self.name,
            )
        payload: dict[str, Any] = {
            "model": model,
            "messages": turns,
            "max_tokens": request.max_tokens or self.options.default_max_tokens,
            "temperature": request.temperature,
        }
        if system:
            payload["system"] = "\n\n".join(system)
        if request.stop_sequences:
            payload["stop_sequences"] = list(request.stop_sequences)
        if request.top_p is not None:
            payload["top_p"] = request.top_p
        return payload

    async def _send(self, payload: dict[str, Any]) -> _MessageBody:
        raw = await self.request_json("POST", "/v1/messages", json_body=payload)
        return self._read(_MessageBody, raw, "/v1/messages")

    # -- the model types -------------------------------------------------------------

    async def chat(self, model: str, request: ChatCompletionRequest) -> ChatCompletionResponse:
        body = await self._send(self._payload(model, request.messages, request, None))
        usage = body.usage or _Usage()
        text = "".join(b.text or "" for b in body.content if b.type == "text")
        return ChatCompletionResponse(
            message=Message(role="assistant", content=text),
            finish_reason=_FINISH_REASONS.get(body.stop_reason or "", body.stop_reason),
            prompt_tokens=usage.input_tokens,
            response_tokens=usage.output_tokens,
        )

    async def stream_chat(self, model: str, request: ChatCompletionRequest) -> ChunkStream:
        """Messages API events: ``message_start`` (input usage), ``content_block_delta``
        (text), ``message_delta`` (stop reason, output usage), ``message_stop``."""
        payload = {**self._payload(model, request.messages, request, None), "stream": True}
        usage = _Usage()
        stop_reason: str | None = None
        stopped = False
        path = "/v1/messages"
        async with aclosing(self.stream_events("POST", path, json_body=payload)) as events:
            async for event in events:
                if event.event == WHOLE_ANSWER:  # the server ignored stream: the answer whole
                    whole = self._read(_MessageBody, self._json(path, event.data), path)
                    text = "".join(b.text or "" for b in whole.content if b.type == "text")
                    if text:
                        yield StreamChunk(text=text)
                    stop_reason, stopped = whole.stop_reason, True
                    usage = whole.usage or _Usage()
                    break
                try:
                    data = json.loads(event.data)
                except ValueError:
                    raise self._shape_error(path, "an event is not JSON", event.data) from None
                if not isinstance(data, dict):
                    raise self._shape_error(path, "an event is not a JSON object", data)
                kind = data.get("type") or event.event
                if kind == "message_start":
                    message = data.get("message") or {}
                    if isinstance(message.get("usage"), dict):
                        usage = self._read(_Usage, message["usage"], path)
                elif kind == "content_block_delta":
                    delta = data.get("delta") or {}
                    if delta.get("type") == "text_delta" and delta.get("text"):
                        yield StreamChunk(text=str(delta["text"]))
                elif kind == "message_delta":
                    stop_reason = (data.get("delta") or {}).get("stop_reason") or stop_reason
                    more = data.get("usage")
                    if isinstance(more, dict):
                        # Output tokens so far (cumulative); input tokens may be restated.
                        usage = _Usage(
                            input_tokens=more.get("input_tokens") or usage.input_tokens,
                            output_tokens=more.get("output_tokens", usage.output_tokens),
                        )
                elif kind == "message_stop":
                    stopped = True
                    break
                elif kind == "error":
                    error = data.get("error") or {}
                    said = error.get("message") if isinstance(error, dict) else error
                    kind_said = error.get("type") if isinstance(error, dict) else None
                    raise ProviderUnavailableError(
                        "stopped in the middle of the answer"
                        + (f" ({kind_said})" if kind_said else ""),
                        provider=self.name,
                        provider_message=str(said)[:300],
                        hint="Try again; Anthropic reports overloaded_error when it is busy.",
                    )
        if not stopped and stop_reason is None:
            raise ProviderUnavailableError(
                "ended the stream before the answer was complete",
                provider=self.name,
                hint="The server or a proxy closed the connection; try again.",
            )
        yield StreamChunk(
            finish_reason=_FINISH_REASONS.get(stop_reason or "", stop_reason),
            prompt_tokens=usage.input_tokens,
            response_tokens=usage.output_tokens,
        )

    async def agent(self, model: str, request: AgentRequest) -> AgentResponse:
        payload = self._payload(model, _last_k(request), request, request.instructions)
        if request.tools:
            payload["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.arguments}
                for t in request.tools
            ]
            # The response carries one tool request, so ask for at most one.
            payload["tool_choice"] = {"type": "auto", "disable_parallel_tool_use": True}
        body = await self._send(payload)
        usage = body.usage or _Usage()
        tokens = {"prompt_tokens": usage.input_tokens, "response_tokens": usage.output_tokens}
        text = "".join(b.text or "" for b in body.content if b.type == "text")
        tool_use = next((b for b in body.content if b.type == "tool_use"), None)
        if tool_use is None:
            return AgentResponse(
                action=AgentAction.CONTENT, context=ActionContext(content=text), **tokens
            )
        if not tool_use.name:
            raise self._shape_error(
                "/v1/messages", "a tool_use block has no name", tool_use.model_dump()
            )
        return AgentResponse(
            action=AgentAction.TOOL_REQUEST,
            context=ActionContext(
                content=text or None,
                tool_request=ToolRequest(
                    name=tool_use.name, arguments=tool_use.input or {}, id=tool_use.id
                ),
            ),
            **tokens,
        )

    async def list_models(self) -> list[ModelInfo]:
        raw = await self.request_json("GET", "/v1/models?limit=1000")
        body = self._read(_ModelsBody, raw, "/v1/models")
        return [
            ModelInfo(
                id=item.id,
                model_type=ModelType.CHAT_COMPLETION,
                description=item.display_name or "",
            )
            for item in body.data
        ]


PROVIDER = AnthropicProvider
