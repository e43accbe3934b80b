"""Send a validated request to the provider method its type calls for, whole or streamed.

:func:`dispatch_stream` opens the stream of a chat or completion request (rendered,
fallen back and trimmed exactly as :func:`dispatch` does); :class:`StreamAnswer` adds
its chunks up into the response the whole call would have given.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel

from studio.core.errors import FieldProblem, RequestValidationError
from studio.core.schemas import (
    AgentRequest,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatPromptRequest,
    CompletionRequest,
    CompletionResponse,
    EmbeddingRequest,
    Message,
    ModelType,
    RerankingRequest,
)
from studio.models.chat import chat_with_history, plan_chat, stream_chat_with_history
from studio.providers import Provider
from studio.providers.base import ChunkStream, StreamChunk

__all__ = ["StreamAnswer", "dispatch", "dispatch_stream"]


async def dispatch(
    provider: Provider, upstream: str, mtype: ModelType, request: BaseModel
) -> BaseModel:
    if isinstance(request, EmbeddingRequest):
        return await provider.embed(upstream, request)
    if isinstance(request, RerankingRequest):
        return await provider.rerank(upstream, request)
    if isinstance(request, AgentRequest):
        return await provider.agent(upstream, request)
    if isinstance(request, ChatPromptRequest | ChatCompletionRequest):
        return await chat_with_history(provider, upstream, request)
    if isinstance(request, CompletionRequest):
        return await provider.complete(upstream, request)
    raise AssertionError(f"no dispatch for {type(request).__name__}")  # pragma: no cover


@dataclass
class StreamAnswer:
    """The chunks of one streamed call, added up as they pass."""

    request: BaseModel
    trimmed_messages: int = 0
    texts: dict[int, list[str]] = field(default_factory=dict)
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    response_tokens: int | None = None

    def add(self, chunk: StreamChunk) -> None:
        if chunk.text:
            self.texts.setdefault(chunk.index, []).append(chunk.text)
        if chunk.finish_reason is not None:
            self.finish_reason = chunk.finish_reason
        if chunk.prompt_tokens is not None:
            self.prompt_tokens = chunk.prompt_tokens
        if chunk.response_tokens is not None:
            self.response_tokens = chunk.response_tokens

    def text(self, index: int = 0) -> str:
        return "".join(self.texts.get(index, []))

    def response(self) -> ChatCompletionResponse | CompletionResponse:
        """What the whole call would have answered (partial if the stream broke off)."""
        if isinstance(self.request, CompletionRequest):
            return CompletionResponse(
                completions=[(p, [self.text(i)]) for i, p in enumerate(self.request.prompts)],
                finish_reason=self.finish_reason,
                prompt_tokens=self.prompt_tokens,
                response_tokens=self.response_tokens,
            )
        return ChatCompletionResponse(
            message=Message(role="assistant", content=self.text()),
            finish_reason=self.finish_reason,
            prompt_tokens=self.prompt_tokens,
            response_tokens=self.response_tokens,
            trimmed_messages=self.trimmed_messages,
        )


def dispatch_stream(
    provider: Provider, upstream: str, request: BaseModel
) -> tuple[ChunkStream, StreamAnswer]:
    """The stream of a chat or completion ``request``, and the answer it adds up to."""
    if isinstance(request, ChatPromptRequest | ChatCompletionRequest):
        plan = plan_chat(provider, upstream, request)
        answer = StreamAnswer(request, trimmed_messages=plan.trimmed)
        return stream_chat_with_history(provider, upstream, plan), answer
    if isinstance(request, CompletionRequest):
        return provider.stream_complete(upstream, request), StreamAnswer(request)
    raise RequestValidationError(
        [FieldProblem("stream", "only chat and completion models can stream their answers")],
        what="request",
    )
