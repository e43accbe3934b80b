"""From a rendered prompt to a model request, and from a response to its text.

Runs (one row at a time) and the gateway (one request at a time) both turn a
rendered template into the request body of the model's type, and read the
answer's text back out of the response. This module is that one place.

* a rendered **completion template** (a string) becomes ``{"prompts": [...]}``
  for a COMPLETION model and ``{"prompt": ..., "chat_history": []}`` for a chat
  model;
* rendered **chat messages** become ``{"messages": [...]}`` for a chat model,
  or one prompt (the messages' contents joined by blank lines) for a
  COMPLETION model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from studio.core.schemas import Message, ModelType

__all__ = ["build_payload", "output_text", "response_tokens"]


def build_payload(
    model_type: ModelType | str,
    rendered: str | Sequence[Message],
    parameters: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The request body that sends ``rendered`` to a model of ``model_type``."""
    mtype = ModelType(model_type)
    params = dict(parameters or {})
    if isinstance(rendered, str):
        if mtype is ModelType.COMPLETION:
            return {"prompts": [rendered], **params}
        return {"prompt": rendered, "chat_history": [], **params}
    if mtype is ModelType.COMPLETION:
        text = "\n\n".join(m.content for m in rendered)
        return {"prompts": [text], **params}
    return {"messages": [m.model_dump(exclude_none=True) for m in rendered], **params}


def output_text(response: Mapping[str, Any]) -> str:
    """The answer's text: a chat message's content, or the first completion."""
    if "message" in response:
        message = response["message"] or {}
        return str(message.get("content") or "")
    if "completions" in response:
        completions = response["completions"]
        return str(completions[0][1][0]) if completions and completions[0][1] else ""
    if "context" in response:  # an agent's final content
        context = response["context"] or {}
        if context.get("content") is not None:
            return str(context["content"])
    return json.dumps(response)


def response_tokens(response: Mapping[str, Any]) -> tuple[int, int]:
    """``(prompt_tokens, response_tokens)`` of a response; embeddings count as prompt tokens."""
    if "tokens_used" in response:
        return int(response.get("tokens_used") or 0), 0
    return int(response.get("prompt_tokens") or 0), int(response.get("response_tokens") or 0)
