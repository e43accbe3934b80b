"""Streamed calls of deployed endpoints and model deployments (the gateway's ``stream``).

:func:`open_endpoint_stream` renders an endpoint's pinned template with the function
:func:`~studio.services.endpoint_calls.generate` uses
(:func:`~studio.services.endpoint_calls.endpoint_payload`, after the same retrieval
step), and :func:`open_model_stream`
calls a model deployment as :func:`~studio.services.endpoint_calls.call_model` does;
both read the same cached runtimes and prices, and both wait for the model's first
chunk before they return, so a call that fails before it produced anything raises the
same error a whole call would. The :class:`AnswerStream` they return yields the rest
as the model sends it; :meth:`AnswerStream.result` is the usage so far. Nothing here
writes to the database or holds a session while the model answers.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from studio.core.schemas import Message, ModelType
from studio.models import registry
from studio.models.dispatch import StreamAnswer
from studio.models.usage import Price
from studio.providers.base import ChunkStream, StreamChunk
from studio.services import endpoint_calls
from studio.services.endpoint_calls import EndpointRuntime, GenerateResult

__all__ = ["AnswerStream", "open_endpoint_stream", "open_model_stream"]


@dataclass
class AnswerStream:
    """A model's answer arriving in pieces; iterate it once, then close it."""

    prepared: registry.PreparedModel
    price: Price
    answer: StreamAnswer
    chunks: ChunkStream
    first: StreamChunk | None
    started: float
    model_started: float
    runtime: EndpointRuntime | None = None
    finished: float | None = None
    retrieval: dict[str, Any] | None = None  # the chunks the endpoint's retrieval step used

    async def __aiter__(self) -> AsyncIterator[StreamChunk]:
        try:
            if self.first is not None:
                yield self.first
                async for chunk in self.chunks:
                    yield chunk
        finally:
            self.finished = time.perf_counter()

    async def aclose(self) -> None:
        """Stop the model's call (a client that went away); safe to call twice."""
        await self.chunks.aclose()
        if self.finished is None:
            self.finished = time.perf_counter()

    @property
    def model_type(self) -> ModelType:
        return self.prepared.model_type

    def result(self) -> GenerateResult:
        """What the answer came to so far: text, tokens, cost and latency."""
        end = self.finished if self.finished is not None else time.perf_counter()
        response = self.answer.response()
        prompt_tokens = response.prompt_tokens or 0
        answer_tokens = response.response_tokens or 0
        runtime = self.runtime
        return GenerateResult(
            output=self.answer.text(),
            finish_reason=response.finish_reason,
            model=self.prepared.name,
            endpoint=runtime.name if runtime else None,
            endpoint_id=runtime.endpoint_id if runtime else None,
            app_id=runtime.app_id if runtime else None,
            version=runtime.version if runtime else None,
            prompt_tokens=prompt_tokens,
            response_tokens=answer_tokens,
            cost=self.price.cost(prompt_tokens, answer_tokens),
            latency_ms=(end - self.started) * 1000,
            model_latency_ms=(end - self.model_started) * 1000,
            response=response.model_dump(mode="json"),
            retrieval=self.retrieval,
        )


async def _open(
    prepared: registry.PreparedModel,
    price: Price,
    payload: Any,
    started: float,
    runtime: EndpointRuntime | None = None,
) -> AnswerStream:
    model_started = time.perf_counter()
    chunks, answer = registry.astream_prepared(prepared, payload)
    try:
        first: StreamChunk | None = await anext(chunks)
    except StopAsyncIteration:
        first = None
    except BaseException:
        await chunks.aclose()  # stops the call: nothing was sent, nothing will be
        raise
    return AnswerStream(
        prepared=prepared,
        price=price,
        answer=answer,
        chunks=chunks,
        first=first,
        started=started,
        model_started=model_started,
        runtime=runtime,
    )


async def open_endpoint_stream(
    *,
    name: str,
    inputs: Mapping[str, Any],
    messages: Sequence[Message] = (),
    parameters: Mapping[str, Any] | None = None,
) -> AnswerStream:
    """Render endpoint ``name``'s template with ``inputs`` and start streaming its model."""
    started = time.perf_counter()
    runtime = await endpoint_calls.aload_runtime(name)
    assert runtime is not None
    values, retrieved = await endpoint_calls.with_retrieval(runtime, inputs)
    payload = endpoint_calls.endpoint_payload(runtime, values, messages, parameters)
    answer = await _open(runtime.prepared, runtime.price, payload, started, runtime)
    answer.retrieval = retrieved
    return answer


async def open_model_stream(*, ref: str, payload: Mapping[str, Any]) -> AnswerStream:
    """Start streaming model deployment ``ref``'s answer to ``payload``."""
    started = time.perf_counter()
    # The same cached lookup as endpoint_calls.call_model.
    prepared, price = await endpoint_calls.prepared_model(ref, dict(payload))
    return await _open(prepared, price, dict(payload), started)
