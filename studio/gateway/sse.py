"""Streamed answers as server-sent events in OpenAI's chunk format.

:func:`event_stream` turns an :class:`~studio.services.endpoint_streams.AnswerStream`
into the response a ``stream: true`` request gets: ``chat.completion.chunk`` (or
``text_completion``) events as the model sends tokens, a last chunk with the finish
reason, a usage chunk when the client asked for one (``stream_options.include_usage``,
``choices: []``), then ``data: [DONE]``. An error after the first chunk ends the
stream with an ``{"error": {...}}`` event, which the OpenAI SDKs raise. The request's
log context gets the usage, latency and error once the stream ends; however the
response ends (done, failed, or the client went away), the model's call is stopped.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Literal

import anyio
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from studio.core.errors import ProviderError, StudioError
from studio.gateway.deps import RequestContext
from studio.gateway.errors import error_body, status_for
from studio.services.endpoint_streams import AnswerStream

__all__ = ["CLIENT_GONE", "EventStream", "event_stream"]

CLIENT_GONE = "the client went away before the answer was complete"


def _sse(data: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


class EventStream(StreamingResponse):
    """A streaming response that closes its events and the model's call when it ends."""

    def __init__(self, events: AsyncIterator[bytes], answer: AnswerStream) -> None:
        super().__init__(
            events,
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )
        self._events = events
        self._answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                aclose = getattr(self._events, "aclose", None)
                if aclose is not None:
                    await aclose()  # notes a client that went away in the log context
                await self._answer.aclose()


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def event_stream(
    answer: AnswerStream,
    ctx: RequestContext,
    *,
    kind: Literal["chat", "text"],
    model: str,
    created: int,
    include_usage: bool,
) -> EventStream:
    """The ``stream: true`` response of ``answer`` (its first chunk is already in)."""
    chat = kind == "chat"
    base: dict[str, Any] = {
        "id": f"{'chatcmpl' if chat else 'cmpl'}-{ctx.request_id}",
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": created,
        "model": model,
    }
    if include_usage:
        base["usage"] = None  # as OpenAI: null on every chunk but the usage chunk

    def choice(index: int, text: str | None, finish: str | None) -> dict[str, Any]:
        if chat:
            delta = {} if text is None else {"content": text}
            return {"index": index, "delta": delta, "finish_reason": finish}
        return {"index": index, "text": text or "", "finish_reason": finish, "logprobs": None}

    async def events() -> AsyncIterator[bytes]:
        error: str | None = None
        try:
            # The role chunk goes out in one write with the first token (two small
            # writes would wait on each other's TCP acknowledgement).
            head = b""
            if chat:
                first = {"index": 0, "delta": {"role": "assistant", "content": ""}}
                head = _sse({**base, "choices": [{**first, "finish_reason": None}]})
            async for chunk in answer:
                if chunk.text:
                    yield head + _sse({**base, "choices": [choice(chunk.index, chunk.text, None)]})
                    head = b""
            result = answer.result()
            finish = result.finish_reason or "stop"
            yield head + _sse({**base, "choices": [choice(0, None, finish)]})
            if include_usage:
                usage = _usage(result.prompt_tokens, result.response_tokens)
                yield _sse({**base, "choices": [], "usage": usage})
            yield b"data: [DONE]\n\n"
        except StudioError as exc:
            error = str(exc)
            _, error_kind = status_for(exc)
            extra: dict[str, Any] = {"request_id": ctx.request_id}
            if isinstance(exc, ProviderError):
                extra["provider"] = exc.provider
            yield _sse(error_body(exc.message, error_kind, hint=exc.hint, **extra))
        except BaseException:  # cancelled or closed: the client went away
            error = CLIENT_GONE
            raise
        finally:
            ctx.note_result(answer.result())
            if error is not None:
                ctx.error = error[:4000]

    return EventStream(events(), answer)
