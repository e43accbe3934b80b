"""Send a validated request to the provider method its type calls for."""

from __future__ import annotations

from pydantic import BaseModel

from studio.core.schemas import (
    AgentRequest,
    ChatCompletionRequest,
    ChatPromptRequest,
    CompletionRequest,
    EmbeddingRequest,
    ModelType,
    RerankingRequest,
)
from studio.models.chat import chat_with_history
from studio.providers import Provider

__all__ = ["dispatch"]


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
