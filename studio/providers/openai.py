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
from contextlib import aclosing, suppress
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel, Field
from pydantic import ValidationError as PydanticValidationError

from studio.core.errors import ProviderRequestError, ProviderUnavailableError, StudioError
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
    ToolRequest,
    problems_from_pydantic,
)
from studio.providers.base import ChunkStream, ModelInfo, StreamChunk
from studio.providers.http import WHOLE_ANSWER, HTTPProvider
from studio.providers.openai_wire import (
    ChatBody,
    ChatChoice,
    CompletionBody,
    EmbeddingBody,
    Function,
    ModelsBody,
    Usage,
    last_k,
    overall_finish,
    total,
    wire_message,
    wire_tool,
)

__all__ = ["PROVIDER", "OpenAIProvider"]

log = logging.getLogger(__name__)
DRAIN_AFTER_DONE_S = 0.5  # how long a finished stream waits for its body to end

_Body = TypeVar("_Body", bound=BaseModel)


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
        stream_usage: bool = Field(
            default=True,
            description="Ask for token usage in the last chunk of a stream "
            "(stream_options.include_usage); turn off for a server that refuses the field.",
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
    ) -> ChatBody:
        payload = {
            "model": model,
            "messages": messages,
            **self._sampling(request, length_param=self.options.max_tokens_param),
            **extra,
        }
        body = await self.request_json("POST", "/chat/completions", json_body=payload)
        return self._read(ChatBody, body, "/chat/completions")

    @staticmethod
    def _first_choice(body: ChatBody) -> ChatChoice:
        return min(body.choices, key=lambda c: c.index or 0)

    # -- the model types -------------------------------------------------------------

    async def chat(self, model: str, request: ChatCompletionRequest) -> ChatCompletionResponse:
        body = await self._chat_call(model, [wire_message(m) for m in request.messages], request)
        choice = self._first_choice(body)
        usage = body.usage or Usage()
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
        body = self._read(CompletionBody, raw, "/completions")
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
        usage = body.usage or Usage()
        return CompletionResponse(
            completions=[(prompt, texts[i]) for i, prompt in enumerate(request.prompts)],
            finish_reason=overall_finish([reasons[i] for i in sorted(reasons)]),
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
            finish_reason=overall_finish([a.finish_reason for a in answers]),
            prompt_tokens=total([a.prompt_tokens for a in answers]),
            response_tokens=total([a.response_tokens for a in answers]),
        )

    # -- streaming ----------------------------------------------------------------------

    async def stream_chat(self, model: str, request: ChatCompletionRequest) -> ChunkStream:
        payload = {
            "model": model,
            "messages": [wire_message(m) for m in request.messages],
            **self._sampling(request, length_param=self.options.max_tokens_param),
        }
        async with aclosing(self._stream("/chat/completions", payload)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def stream_complete(self, model: str, request: CompletionRequest) -> ChunkStream:
        mode = self.options.completion_mode
        if mode == "chat" or (mode == "auto" and model in self._chat_only):
            async with aclosing(self._stream_complete_via_chat(model, request)) as chunks:
                async for chunk in chunks:
                    yield chunk
            return
        sampling = self._sampling(request, length_param="max_tokens")
        sampling.setdefault("max_tokens", self.options.completion_max_tokens)
        prompts = request.prompts
        payload = {"model": model, "prompt": prompts[0] if len(prompts) == 1 else prompts}
        started = False
        try:
            async with aclosing(self._stream("/completions", {**payload, **sampling})) as chunks:
                async for chunk in chunks:
                    started = True
                    yield chunk
        except ProviderRequestError as exc:
            if started or mode != "auto" or exc.status_code != 404:
                raise
            log.info("%s: /completions answered 404 for %s; using chat instead", self.name, model)
            self._chat_only.add(model)
            async with aclosing(self._stream_complete_via_chat(model, request)) as chunks:
                async for chunk in chunks:
                    yield chunk

    async def _stream_complete_via_chat(
        self, model: str, request: CompletionRequest
    ) -> ChunkStream:
        if len(request.prompts) != 1:  # several prompts answer in parallel, each whole
            async with aclosing(super().stream_complete(model, request)) as chunks:
                async for chunk in chunks:
                    yield chunk
            return
        sampling = request.model_dump(exclude={"prompts"})
        chat = ChatCompletionRequest(
            messages=[Message(role="user", content=request.prompts[0])], **sampling
        )
        async with aclosing(self.stream_chat(model, chat)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def _stream(self, path: str, payload: dict[str, Any]) -> ChunkStream:
        """POST ``payload`` with ``stream: true``; text pieces, then one closing chunk."""
        body: dict[str, Any] = {**payload, "stream": True}
        if self.options.stream_usage:
            body["stream_options"] = {"include_usage": True}
        reasons: dict[int, str | None] = {}
        usage = Usage()
        done = False
        async with aclosing(self.stream_events("POST", path, json_body=body)) as events:
            async for event in events:
                if event.event == WHOLE_ANSWER:  # the server ignored stream: the answer whole
                    for chunk in self._whole(path, event.data):
                        yield chunk
                    return
                if event.data.strip() == "[DONE]":
                    done = True
                    # The body's end follows [DONE] at once: reading it (briefly) lets the
                    # keep-alive pool reuse the connection instead of closing a half-read one.
                    with suppress(TimeoutError, StudioError):
                        async with asyncio.timeout(DRAIN_AFTER_DONE_S):
                            async for _rest in events:
                                pass
                    break
                try:
                    data = json.loads(event.data)
                except ValueError:
                    raise self._shape_error(path, "an event is not JSON", event.data) from None
                if not isinstance(data, dict):
                    raise self._shape_error(path, "an event is not a JSON object", data)
                if data.get("error"):
                    error = data["error"]
                    said = error.get("message") if isinstance(error, dict) else error
                    raise ProviderUnavailableError(
                        "stopped in the middle of the answer",
                        provider=self.name,
                        provider_message=str(said)[:300],
                    )
                if isinstance(data.get("usage"), dict):
                    usage = self._read(Usage, data["usage"], path)
                for position, choice in enumerate(data.get("choices") or []):
                    if not isinstance(choice, dict):
                        raise self._shape_error(path, "a choice is not an object", data)
                    index = choice.get("index")
                    index = position if not isinstance(index, int) else index
                    delta = choice.get("delta")
                    text = (delta or {}).get("content") if isinstance(delta, dict) else None
                    if text is None:
                        text = choice.get("text")
                    if choice.get("finish_reason") is not None or index not in reasons:
                        reasons[index] = choice.get("finish_reason")
                    if text:
                        yield StreamChunk(text=str(text), index=index)
        if not done and not any(reasons.values()):
            raise ProviderUnavailableError(
                "ended the stream before the answer was complete",
                provider=self.name,
                hint="The server or a proxy closed the connection; try again.",
            )
        yield StreamChunk(
            finish_reason=overall_finish([reasons[i] for i in sorted(reasons)]),
            prompt_tokens=usage.prompt_tokens,
            response_tokens=usage.completion_tokens,
        )

    def _whole(self, path: str, text: str) -> list[StreamChunk]:
        """A whole (non-streamed) answer as chunks: its text, then the closing one."""
        try:
            raw = json.loads(text)
        except ValueError:
            raise self._shape_error(path, "the answer is not JSON", text[:200]) from None
        if path == "/chat/completions":
            chat = self._read(ChatBody, raw, path)
            choice = self._first_choice(chat)
            pieces = [StreamChunk(text=choice.message.content or "")]
            reasons, usage = [choice.finish_reason], chat.usage
        else:
            done = self._read(CompletionBody, raw, path)
            pieces = [
                StreamChunk(text=c.text, index=i if c.index is None else c.index)
                for i, c in enumerate(done.choices)
            ]
            reasons, usage = [c.finish_reason for c in done.choices], done.usage
        usage = usage or Usage()
        closing = StreamChunk(
            finish_reason=overall_finish(reasons),
            prompt_tokens=usage.prompt_tokens,
            response_tokens=usage.completion_tokens,
        )
        return [*(p for p in pieces if p.text), closing]

    async def embed(self, model: str, request: EmbeddingRequest) -> EmbeddingResponse:
        payload = {"model": model, "input": list(request.texts)}
        raw = await self.request_json("POST", "/embeddings", json_body=payload)
        body = self._read(EmbeddingBody, raw, "/embeddings")
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
        usage = body.usage or Usage()
        tokens = usage.prompt_tokens if usage.prompt_tokens is not None else usage.total_tokens
        return EmbeddingResponse(
            embeddings=[(text, vectors[i]) for i, text in enumerate(request.texts)],
            tokens_used=tokens,
        )

    async def agent(self, model: str, request: AgentRequest) -> AgentResponse:
        messages = [wire_message(m) for m in last_k(request)]
        if request.instructions:
            messages.insert(0, {"role": "system", "content": request.instructions})
        extra: dict[str, Any] = {}
        if request.tools:
            extra["tools"] = [wire_tool(t) for t in request.tools]
        body = await self._chat_call(model, messages, request, **extra)
        choice = self._first_choice(body)
        usage = body.usage or Usage()
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

    def _tool_arguments(self, function: Function) -> dict[str, Any]:
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
        body = self._read(ModelsBody, raw, "/models")
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
