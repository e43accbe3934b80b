"""Chat completion semantics from the platform docs.

A request is a new ``prompt`` plus earlier ``chat_history``. A model without
chat support completes the prompt alone, disregarding the history. Token use
is estimated cheaply first; when the estimate passes 80 % of the context
window, the provider counts exactly and the oldest history messages (system
messages are kept) are dropped until prompt plus reserved output fit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from studio.core.errors import FieldProblem, RequestValidationError
from studio.core.schemas import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatPromptRequest,
    CompletionRequest,
    Message,
)
from studio.providers.base import ChunkStream, Provider, estimate_tokens

__all__ = [
    "TRIM_THRESHOLD",
    "ChatPlan",
    "chat_with_history",
    "plan_chat",
    "stream_chat_with_history",
    "trim_history",
]

TRIM_THRESHOLD = 0.8
DEFAULT_OUTPUT_RESERVE = 256


def _estimate(messages: list[Message]) -> int:
    return sum(estimate_tokens(m.content) + 4 for m in messages) + 2


def trim_history(
    messages: list[Message],
    *,
    context_window: int | None,
    reserve: int,
    count_exact: Callable[[list[Message]], int],
) -> tuple[list[Message], int]:
    """Drop the oldest non-system messages until the conversation fits.

    Returns the kept messages and how many were dropped. The last message (the
    new prompt) is never dropped; if it alone cannot fit, a clear error says so.
    """
    if not context_window or _estimate(messages) < TRIM_THRESHOLD * context_window:
        return messages, 0
    budget = context_window - reserve
    kept = list(messages)
    dropped = 0
    while count_exact(kept) > budget:
        droppable = [i for i, m in enumerate(kept[:-1]) if m.role != "system"]
        if not droppable:
            raise RequestValidationError(
                [
                    FieldProblem(
                        "prompt",
                        f"too long for the model's context window of {context_window} tokens "
                        f"(with {reserve} tokens reserved for the answer); shorten it or "
                        "lower max_tokens",
                    )
                ],
                what="chat request",
            )
        del kept[droppable[0]]
        dropped += 1
    return kept, dropped


@dataclass(frozen=True)
class ChatPlan:
    """What a chat request becomes on one provider: the messages it sends (or, for a
    model without chat support, the prompt it completes) and the history left out."""

    messages: list[Message]
    prompt: str
    sampling: dict[str, Any]
    via_completion: bool
    trimmed: int

    def chat_request(self) -> ChatCompletionRequest:
        return ChatCompletionRequest(messages=self.messages, **self.sampling)

    def completion_request(self) -> CompletionRequest:
        return CompletionRequest(prompts=[self.prompt], **self.sampling)


def plan_chat(
    provider: Provider, model: str, request: ChatPromptRequest | ChatCompletionRequest
) -> ChatPlan:
    """Fall back to completion or trim the history, as documented above."""
    sampling = request.model_dump(include={"temperature", "stop_sequences", "max_tokens", "top_p"})
    if isinstance(request, ChatPromptRequest):
        messages = [*request.chat_history, Message(role="user", content=request.prompt)]
        prompt = request.prompt
    else:
        messages = list(request.messages)
        users = [m.content for m in messages if m.role == "user"]
        prompt = users[-1] if users else messages[-1].content
    if not provider.supports_chat(model):
        return ChatPlan(messages, prompt, sampling, True, len(messages) - 1)
    window = provider.context_window(model)
    reserve = request.max_tokens or min(DEFAULT_OUTPUT_RESERVE, (window or 1024) // 4)
    kept, dropped = trim_history(
        messages,
        context_window=window,
        reserve=reserve,
        count_exact=lambda msgs: provider.count_tokens(model, msgs),
    )
    return ChatPlan(kept, prompt, sampling, False, dropped)


async def chat_with_history(
    provider: Provider,
    model: str,
    request: ChatPromptRequest | ChatCompletionRequest,
) -> ChatCompletionResponse:
    """Run either chat form on ``provider``, falling back and trimming as documented."""
    plan = plan_chat(provider, model, request)
    if plan.via_completion:
        done = await provider.complete(model, plan.completion_request())
        text = done.completions[0][1][0] if done.completions and done.completions[0][1] else ""
        return ChatCompletionResponse(
            message=Message(role="assistant", content=text),
            finish_reason=done.finish_reason,
            prompt_tokens=done.prompt_tokens,
            response_tokens=done.response_tokens,
            trimmed_messages=plan.trimmed,
        )
    response = await provider.chat(model, plan.chat_request())
    response.trimmed_messages = plan.trimmed
    return response


def stream_chat_with_history(provider: Provider, model: str, plan: ChatPlan) -> ChunkStream:
    """The answer to ``plan`` (see :func:`plan_chat`) in pieces as the provider sends them."""
    if plan.via_completion:
        return provider.stream_complete(model, plan.completion_request())
    return provider.stream_chat(model, plan.chat_request())
