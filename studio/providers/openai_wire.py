"""What OpenAI-compatible servers answer (only the fields the provider reads), and the
helpers that shape requests for them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from studio.core.schemas import AgentRequest, Message, Tool

__all__ = [
    "ChatBody",
    "ChatChoice",
    "CompletionBody",
    "EmbeddingBody",
    "Function",
    "ModelsBody",
    "Usage",
    "last_k",
    "overall_finish",
    "total",
    "wire_message",
    "wire_tool",
]


# -- what the server answers (only the fields we read) ---------------------------


class Usage(BaseModel):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None


class Function(BaseModel):
    name: str
    arguments: str | dict[str, Any] | None = None  # a JSON string; some servers send an object


class ToolCall(BaseModel):
    id: str | None = None
    function: Function


class ChatMessage(BaseModel):
    content: str | None = None
    tool_calls: list[ToolCall] | None = None


class ChatChoice(BaseModel):
    index: int | None = None
    message: ChatMessage
    finish_reason: str | None = None


class ChatBody(BaseModel):
    choices: list[ChatChoice] = Field(min_length=1)
    usage: Usage | None = None


class TextChoice(BaseModel):
    index: int | None = None
    text: str
    finish_reason: str | None = None


class CompletionBody(BaseModel):
    choices: list[TextChoice]
    usage: Usage | None = None


class EmbeddingItem(BaseModel):
    index: int | None = None
    embedding: list[float]


class EmbeddingBody(BaseModel):
    data: list[EmbeddingItem]
    usage: Usage | None = None


class ModelItem(BaseModel):
    id: str


class ModelsBody(BaseModel):
    data: list[ModelItem]


# -- request helpers ---------------------------------------------------------------


def wire_message(message: Message) -> dict[str, str]:
    if message.role == "tool":
        tool = f"tool '{message.name}'" if message.name else "a tool"
        return {"role": "user", "content": f"Result from {tool}:\n{message.content}"}
    return {"role": message.role, "content": message.content}


def wire_tool(tool: Tool) -> dict[str, Any]:
    function = {"name": tool.name, "description": tool.description, "parameters": tool.arguments}
    return {"type": "function", "function": function}


def last_k(request: AgentRequest) -> list[Message]:
    """Apply the memory strategy: system messages stay, plus the last k others."""
    if request.memory_strategy is None:
        return list(request.messages)
    k = request.memory_strategy.params.get("k", 10)
    others = [i for i, m in enumerate(request.messages) if m.role != "system"]
    keep = set(others[-k:])
    return [m for i, m in enumerate(request.messages) if m.role == "system" or i in keep]


def total(counts: list[int | None]) -> int | None:
    known = [c for c in counts if c is not None]
    return sum(known) if known else None


def overall_finish(reasons: list[str | None]) -> str | None:
    """One finish reason for a batch: 'length' if any output was cut off."""
    if "length" in reasons:
        return "length"
    return reasons[0] if reasons else None
