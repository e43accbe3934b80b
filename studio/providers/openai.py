"""OpenAI-compatible servers: OpenAI, vLLM, llama.cpp server, Ollama, LM Studio, Together.

Paths are relative to the base URL (``/chat/completions``, ``/completions``,
``/embeddings``, ``/models``). A key is optional: local servers need none, and
``Authorization: Bearer`` is sent only when one is set.

The wire schema has no tool-call ids on messages, so ``tool`` messages are sent
as user messages that name the tool; this works on every compatible server.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Literal, TypeVar

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
    CompletionRequest,
    CompletionResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    Message,
    ModelType,
    Sampling,
    Tool,
    ToolRequest,
    problems_from_pydantic,
)
from studio.providers.base import ModelInfo
from studio.providers.http import HTTPProvider

__all__ = ["PROVIDER", "OpenAIProvider"]

log = logging.getLogger(__name__)

_Body = TypeVar("_Body", bound=BaseModel)


# -- what the server answers (only the fields we read) ---------------------------


class _Usage(BaseModel):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None


class _Function(BaseModel):
    name: str
    arguments: str | dict[str, Any] | None = None  # a JSON string; some servers send an object


class _ToolCall(BaseModel):
    id: str | None = None
    function: _Function


class _ChatMessage(BaseModel):
    content: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _ChatChoice(BaseModel):
    index: int | None = None
    message: _ChatMessage
    finish_reason: str | None = None


class _ChatBody(BaseModel):
    choices: list[_ChatChoice] = Field(min_length=1)
    usage: _Usage | None = None


class _TextChoice(BaseModel):
    index: int | None = None
    text: str
    finish_reason: str | None = None


class _CompletionBody(BaseModel):
    choices: list[_TextChoice]
    usage: _Usage | None = None


class _EmbeddingItem(BaseModel):
    index: int | None = None
    embedding: list[float]


class _EmbeddingBody(BaseModel):
    data: list[_EmbeddingItem]
    usage: _Usage | None = None


class _ModelItem(BaseModel):
    id: str


class _ModelsBody(BaseModel):
    data: list[_ModelItem]


# -- request helpers ---------------------------------------------------------------


def _wire_message(message: Message) -> dict[str, str]:
    if message.role == "tool":
        tool = f"tool '{message.name}'" if message.name else "a tool"
        return {"role": "user", "content": f"Result from {tool}:\n{message.content}"}
    return {"role": message.role, "content": message.content}


def _wire_tool(tool: Tool) -> dict[str, Any]:
    function = {"name": tool.name, "description": tool.description, "parameters": tool.arguments}
    return {"type": "function", "function": function}


def _last_k(request: AgentRequest) -> list[Message]:
    """Apply the memory strategy: system messages stay, plus the last k others."""
    if request.memory_strategy is None:
        return list(request.messages)
    k = request.memory_strategy.params.get("k", 10)
    others = [i for i, m in enumerate(request.messages) if m.role != "system"]
    keep = set(others[-k:])
    return [m for i, m in enumerate(request.messages) if m.role == "system" or i in keep]


def _total(counts: list[int | None]) -> int | None:
    known = [c for c in counts if c is not None]
    return sum(known) if known else None


def _overall_finish(reasons: list[str | None]) -> str | None:
    """One finish reason for a batch: 'length' if any output was cut off."""
    if "length" in reasons:
        return "length"
    return reasons[0] if reasons else None


class OpenAIProvider(HTTPProvider):
    """Any server speaking the OpenAI REST API."""

    kind = "openai"
    description = "OpenAI and any OpenAI-compatible server (vLLM, llama.cpp, Ollama, LM Studio)."
    model_types = frozenset(
        {ModelType.CHAT_COMPLETION, ModelType.COMPLETION, ModelType.EMBEDDING, ModelType.AGENT}
    )
    needs_key = False
    key_env_var = "OPENAI_API_KEY"
    default_base_url = "https://api.openai.com/v1"

    class Options(HTTPProvider.Options):
        completion_mode: Literal["auto", "completions", "chat"] = Field(
            default="auto",
            description=(
                "How COMPLETION requests are served: 'completions' uses /completions, 'chat' "
                "sends each prompt as a chat message, 'auto' tries /completions and falls back "
                "to chat when the server answers 404."
            ),
        )
        completion_max_tokens: int = Field(
            default=256,
            ge=1,
            le=1_000_000,
            description="max_tokens sent to /completions when a request sets none "
            "(many servers otherwise stop after 16 tokens).",
        )
        max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = Field(
            default="max_tokens",
            description="Name of the chat length limit; OpenAI's reasoning models "
            "want 'max_completion_tokens'.",
        )

    options: Options

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._chat_only: set[str] = set()  # models whose /completions answered 404

    def error_message(self, response: httpx.Response) -> str:
        message = super().error_message(response)
        return message.replace(self._api_key, "***") if self._api_key else message

    # -- helpers -------------------------------------------------------------------

    def _read(self, model: type[_Body], body: Any, path: str) -> _Body:
        try:
            return model.model_validate(body)
        except PydanticValidationError as exc:
            problems = "; ".join(str(p) for p in problems_from_pydantic(exc, model))
            raise self._shape_error(path, problems, body) from exc

    def _shape_error(self, path: str, problem: str, body: Any) -> ProviderUnavailableError:
        return ProviderUnavailableError(
            f"answered {path} in an unexpected shape ({problem})",
            provider=self.name,
            provider_message=json.dumps(body, default=str)[:200],
            hint="Is the base URL an OpenAI-compatible API (it usually ends in /v1)?",
        )

    def _sampling(self, request: Sampling, *, length_param: str) -> dict[str, Any]:
        body: dict[str, Any] = {"temperature": request.temperature}
        if request.max_tokens is not None:
            body[length_param] = request.max_tokens
        if request.stop_sequences:
            body["stop"] = list(request.stop_sequences)
        if request.top_p is not None:
            body["top_p"] = request.top_p
        return body

    async def _chat_call(
        self, model: str, messages: list[dict[str, str]], request: Sampling, **extra: Any
    ) -> _ChatBody:
        payload = {
            "model": model,
            "messages": messages,
            **self._sampling(request, length_param=self.options.max_tokens_param),
            **extra,
        }
        body = await self.request_json("POST", "/chat/completions", json_body=payload)
        return self._read(_ChatBody, body, "/chat/completions")

    @staticmethod
    def _first_choice(body: _ChatBody) -> _ChatChoice:
        return min(body.choices, key=lambda c: c.index or 0)

    # -- the model types -------------------------------------------------------------

    async def chat(self, model: str, request: ChatCompletionRequest) -> ChatCompletionResponse:
        body = await self._chat_call(model, [_wire_message(m) for m in request.messages], request)
        choice = self._first_choice(body)
        usage = body.usage or _Usage()
        return ChatCompletionResponse(
            message=Message(role="assistant", content=choice.message.content or ""),
            finish_reason=choice.finish_reason,
            prompt_tokens=usage.prompt_tokens,
            response_tokens=usage.completion_tokens,
        )

    async def complete(self, model: str, request: CompletionRequest) -> CompletionResponse:
        mode = self.options.completion_mode
        if mode == "chat" or (mode == "auto" and model in self._chat_only):
            return await self._complete_via_chat(model, request)
        try:
            return await self._complete_via_completions(model, request)
        except ProviderRequestError as exc:
            if mode != "auto" or exc.status_code != 404:
                raise
            log.info("%s: /completions answered 404 for %s; using chat instead", self.name, model)
            self._chat_only.add(model)
            return await self._complete_via_chat(model, request)

    async def _complete_via_completions(
        self, model: str, request: CompletionRequest
    ) -> CompletionResponse:
        sampling = self._sampling(request, length_param="max_tokens")
        sampling.setdefault("max_tokens", self.options.completion_max_tokens)
        # One prompt goes as a string: some servers (Ollama) accept no list.
        prompts = request.prompts
        payload = {
            "model": model,
            "prompt": prompts[0] if len(prompts) == 1 else prompts,
            **sampling,
        }
        raw = await self.request_json("POST", "/completions", json_body=payload)
        body = self._read(_CompletionBody, raw, "/completions")
        texts: dict[int, list[str]] = {}
        reasons: dict[int, str | None] = {}
        for position, choice in enumerate(body.choices):
            index = position if choice.index is None else choice.index
            texts.setdefault(index, []).append(choice.text)
            reasons.setdefault(index, choice.finish_reason)
        if sorted(texts) != list(range(len(request.prompts))):
            raise self._shape_error(
                "/completions",
                f"choice indexes {sorted(texts)} do not match {len(request.prompts)} prompt(s)",
                raw,
            )
        usage = body.usage or _Usage()
        return CompletionResponse(
            completions=[(prompt, texts[i]) for i, prompt in enumerate(request.prompts)],
            finish_reason=_overall_finish([reasons[i] for i in sorted(reasons)]),
            prompt_tokens=usage.prompt_tokens,
            response_tokens=usage.completion_tokens,
        )

    async def _complete_via_chat(
        self, model: str, request: CompletionRequest
    ) -> CompletionResponse:
        sampling = request.model_dump(exclude={"prompts"})
        tasks = [
            asyncio.ensure_future(
                self.chat(
                    model,
                    ChatCompletionRequest(
                        messages=[Message(role="user", content=prompt)], **sampling
                    ),
                )
            )
            for prompt in request.prompts
        ]
        try:
            answers = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            raise
        return CompletionResponse(
            completions=[
                (prompt, [a.message.content])
                for prompt, a in zip(request.prompts, answers, strict=True)
            ],
            finish_reason=_overall_finish([a.finish_reason for a in answers]),
            prompt_tokens=_total([a.prompt_tokens for a in answers]),
            response_tokens=_total([a.response_tokens for a in answers]),
        )

    async def embed(self, model: str, request: EmbeddingRequest) -> EmbeddingResponse:
        payload = {"model": model, "input": list(request.texts)}
        raw = await self.request_json("POST", "/embeddings", json_body=payload)
        body = self._read(_EmbeddingBody, raw, "/embeddings")
        vectors: dict[int, list[float]] = {}
        for position, item in enumerate(body.data):
            vectors[position if item.index is None else item.index] = item.embedding
        if sorted(vectors) != list(range(len(request.texts))):
            raise self._shape_error(
                "/embeddings",
                f"{len(body.data)} embedding(s) with indexes {sorted(vectors)} "
                f"for {len(request.texts)} text(s)",
                raw,
            )
        usage = body.usage or _Usage()
        tokens = usage.prompt_tokens if usage.prompt_tokens is not None else usage.total_tokens
        return EmbeddingResponse(
            embeddings=[(text, vectors[i]) for i, text in enumerate(request.texts)],
            tokens_used=tokens,
        )

    async def agent(self, model: str, request: AgentRequest) -> AgentResponse:
        messages = [_wire_message(m) for m in _last_k(request)]
        if request.instructions:
            messages.insert(0, {"role": "system", "content": request.instructions})
        extra: dict[str, Any] = {}
        if request.tools:
            extra["tools"] = [_wire_tool(t) for t in request.tools]
        body = await self._chat_call(model, messages, request, **extra)
        choice = self._first_choice(body)
        usage = body.usage or _Usage()
        tokens = {"prompt_tokens": usage.prompt_tokens, "response_tokens": usage.completion_tokens}
        if choice.message.tool_calls:
            call = choice.message.tool_calls[0]
            return AgentResponse(
                action=AgentAction.TOOL_REQUEST,
                context=ActionContext(
                    content=choice.message.content or None,
                    tool_request=ToolRequest(
                        name=call.function.name,
                        arguments=self._tool_arguments(call.function),
                        id=call.id,
                    ),
                ),
                **tokens,
            )
        return AgentResponse(
            action=AgentAction.CONTENT,
            context=ActionContext(content=choice.message.content or ""),
            **tokens,
        )

    def _tool_arguments(self, function: _Function) -> dict[str, Any]:
        raw = function.arguments
        if raw is None or raw == "":
            return {}
        if isinstance(raw, dict):
            return raw
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise ProviderUnavailableError(
                f"the model asked for tool '{function.name}' with arguments that are not "
                "a JSON object",
                provider=self.name,
                provider_message=raw[:200],
                hint="Try again, or use a model with better tool-calling support.",
            )
        return parsed

    async def list_models(self) -> list[ModelInfo]:
        raw = await self.request_json("GET", "/models")
        body = self._read(_ModelsBody, raw, "/models")
        return [
            ModelInfo(
                id=item.id,
                model_type=(
                    ModelType.EMBEDDING if "embed" in item.id.lower() else ModelType.CHAT_COMPLETION
                ),
            )
            for item in sorted(body.data, key=lambda m: m.id)
        ]


PROVIDER = OpenAIProvider
