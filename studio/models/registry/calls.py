"""Execute: validate a request against the model type's schema, call the provider, and
record usage (tokens, latency, cost, errors).

:class:`PreparedModel` is a model resolved once and called many times (batch
runs, deployed endpoints); it holds no database session.

Chat and completion answers can also be streamed: :func:`astream_prepared` opens the
stream of a prepared model (the gateway's request log records its usage), and
:class:`ModelStream` is one streamed call for the pages and the CLI, whose usage is
written once the stream ends, with a short session of its own: no session is held
while tokens arrive.

Rules (:mod:`studio.models.permissions`): :func:`execute`, :func:`aexecute` and
:func:`validate_model_request` need an administrator, a member or an API key (whose
scopes the gateway checked); prepared calls check nothing (the caller did).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncGenerator, Iterator
from contextlib import aclosing
from typing import Any

import anyio
from pydantic import BaseModel
from sqlmodel import Session

from studio.core.errors import (
    ModelNotReadyError,
    StudioError,
)
from studio.core.prompting import response_tokens as tokens_of
from studio.core.schemas import (
    ModelType,
    validate_request,
)
from studio.models.dispatch import StreamAnswer, dispatch, dispatch_stream
from studio.models.permissions import require_model_reader
from studio.models.registry.models import READY, _lookup, _provider_for
from studio.models.usage import cost_for, record_call
from studio.providers import Provider
from studio.providers.base import ChunkStream, StreamChunk
from studio.store import session_scope

__all__ = [
    "ModelStream",
    "PreparedModel",
    "acall_prepared",
    "aexecute",
    "astream_prepared",
    "execute",
    "prepare_model",
    "record_usage",
    "validate_model_request",
]


def validate_model_request(*, session: Session, ref: str, payload: Any) -> BaseModel:
    """Check ``payload`` against the schema of the model's type, without calling it."""
    require_model_reader("validate model requests")
    resolved = _lookup(session, ref, payload)
    return validate_request(resolved.model.model_type, payload)


class PreparedModel(BaseModel):
    """A model resolved once and called many times (batch runs).

    It holds no database session, so calls in flight keep no connection busy;
    usage is written afterwards with :func:`record_usage`.
    """

    model_config = {"arbitrary_types_allowed": True}

    name: str
    provider_model: str | None
    deployment_id: str | None
    model_type: ModelType
    provider: Provider
    upstream: str

    @property
    def price_names(self) -> list[str]:
        """Names to look up in the price table, in order."""
        return [self.name, self.provider_model or ""]


def prepare_model(*, session: Session, ref: str, payload: Any = None) -> PreparedModel:
    """Resolve ``ref`` and check it is ready to call.

    ``payload`` tells the model type of a ``connection/model`` name (a chat
    model when it is not given).
    """
    if payload is None:
        payload = {"messages": []}
    resolved = _lookup(session, ref, payload)
    model, dep = resolved.model, resolved.deployment
    if dep is not None and dep.status != READY:
        reason = f": {dep.status_reason}" if dep.status_reason else ""
        raise ModelNotReadyError(
            f"Model '{model.name}' is not ready (deployment status {dep.status}{reason}).",
            hint=f"Retry the deployment with `studio model deploy {model.name}`.",
        )
    provider, upstream = _provider_for(session, model)
    return PreparedModel(
        name=model.name,
        provider_model=model.provider_model,
        deployment_id=dep.id if dep else None,
        model_type=ModelType(model.model_type),
        provider=provider,
        upstream=upstream,
    )


async def acall_prepared(prepared: PreparedModel, payload: Any) -> BaseModel:
    """Validate ``payload`` against the model's type and call it (usage is not recorded)."""
    request = validate_request(prepared.model_type, payload)
    return await dispatch(prepared.provider, prepared.upstream, prepared.model_type, request)


def astream_prepared(prepared: PreparedModel, payload: Any) -> tuple[ChunkStream, StreamAnswer]:
    """Validate ``payload`` and open the model's stream (usage is not recorded).

    The chunks are added to the returned :class:`StreamAnswer` as they pass; a
    request the model cannot stream (not chat or completion) is refused here.
    """
    request = validate_request(prepared.model_type, payload)
    chunks, answer = dispatch_stream(prepared.provider, prepared.upstream, request)

    async def counted() -> ChunkStream:
        async with aclosing(chunks) as stream:
            async for chunk in stream:
                answer.add(chunk)
                yield chunk

    return counted(), answer


def record_usage(
    *,
    session: Session,
    prepared: PreparedModel,
    latency_ms: float,
    response: BaseModel | None = None,
    error: str | None = None,
    source: str = "api",
) -> float:
    """Log one call of ``prepared`` (a response, or the error it ended with); returns its cost."""
    prompt_tokens, response_tokens = (
        tokens_of(response.model_dump()) if response is not None else (0, 0)
    )
    cost = 0.0
    if response is not None:
        cost = cost_for(
            session=session,
            names=prepared.price_names,
            prompt_tokens=prompt_tokens,
            response_tokens=response_tokens,
        )
    record_call(
        session=session,
        deployment_id=prepared.deployment_id,
        model_name=prepared.name,
        model_type=prepared.model_type,
        latency_ms=latency_ms,
        prompt_tokens=prompt_tokens,
        response_tokens=response_tokens,
        cost=cost,
        error=error,
        source=source,
    )
    return cost


def _prepare_briefly(ref: str, payload: Any) -> PreparedModel:
    """:func:`prepare_model` with a short session of its own (blocking: run in a thread)."""
    with session_scope() as session:
        return prepare_model(session=session, ref=ref, payload=payload)


def _record_briefly(prepared: PreparedModel, latency_ms: float, **fields: Any) -> None:
    """:func:`record_usage` with a short session of its own (blocking: run in a thread)."""
    with session_scope() as session:
        record_usage(session=session, prepared=prepared, latency_ms=latency_ms, **fields)


async def aexecute(
    *, session: Session | None = None, ref: str, payload: Any, source: str = "api"
) -> BaseModel:
    """Validate ``payload`` for the model ``ref`` names, call it, record usage.

    Without ``session`` (the gateway) no session is held while the model answers: the
    model is resolved in a worker thread with a short session, called with none, and its
    usage is written in a worker thread with another short session, so a slow model
    never keeps a pooled connection busy nor the event loop waiting on the database.
    """
    require_model_reader("call models")
    if session is None:
        prepared = await anyio.to_thread.run_sync(_prepare_briefly, ref, payload)
    else:
        prepared = prepare_model(session=session, ref=ref, payload=payload)
    request = validate_request(prepared.model_type, payload)

    async def record(latency_ms: float, **fields: Any) -> None:
        if session is None:
            call = functools.partial(_record_briefly, prepared, latency_ms, source=source, **fields)
            await anyio.to_thread.run_sync(call)
        else:
            record_usage(
                session=session, prepared=prepared, latency_ms=latency_ms, source=source, **fields
            )
            session.commit()

    started = time.perf_counter()
    try:
        response = await dispatch(
            prepared.provider, prepared.upstream, prepared.model_type, request
        )
    except StudioError as exc:
        await record((time.perf_counter() - started) * 1000, error=str(exc))
        raise
    await record((time.perf_counter() - started) * 1000, response=response)
    return response


STOPPED = "stopped before the answer was complete"


class ModelStream:
    """One streamed call of model ``ref``, for synchronous code (the pages, the CLI).

    Iterate it once: chunks come as the model sends them (the call runs on an event
    loop of its own, one step per chunk). Afterwards :attr:`response` is the whole
    answer, :attr:`latency_ms` the call's time, and the usage row is written (with
    the error, if one ended the stream early). Errors are raised from the iteration.
    """

    def __init__(self, *, ref: str, payload: Any, source: str = "api") -> None:
        self.ref, self.payload, self.source = ref, payload, source
        self.response: BaseModel | None = None
        self.latency_ms: float | None = None
        self.error: str | None = None

    def texts(self) -> Iterator[str]:
        """Only the text of the chunks (what ``st.write_stream`` shows)."""
        return (chunk.text for chunk in self if chunk.text)

    def __iter__(self) -> Iterator[StreamChunk]:
        loop = asyncio.new_event_loop()
        chunks = self.achunks()

        async def step() -> StreamChunk:
            return await anext(chunks)

        try:
            while True:
                try:
                    chunk = loop.run_until_complete(step())
                except StopAsyncIteration:
                    return
                yield chunk
        finally:  # also when the reader stops early: the call stops and usage is written
            loop.run_until_complete(chunks.aclose())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def achunks(self) -> AsyncGenerator[StreamChunk, None]:
        """The chunks on the caller's event loop (what :meth:`__iter__` steps through)."""
        prepared = await anyio.to_thread.run_sync(_prepare_briefly, self.ref, self.payload)
        stream, answer = astream_prepared(prepared, self.payload)
        started = time.perf_counter()
        try:
            async with aclosing(stream) as pieces:
                async for chunk in pieces:
                    yield chunk
        except StudioError as exc:
            self.error = str(exc)
            raise
        except (GeneratorExit, asyncio.CancelledError):
            self.error = STOPPED
            raise
        finally:
            self.latency_ms = (time.perf_counter() - started) * 1000
            self.response = answer.response()
            record = functools.partial(
                _record_briefly,
                prepared,
                self.latency_ms,
                source=self.source,
                response=self.response,
                error=self.error,
            )
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(record)


def execute(*, session: Session, ref: str, payload: Any, source: str = "api") -> BaseModel:
    """Synchronous :func:`aexecute`, for the CLI and the Streamlit pages."""
    return asyncio.run(aexecute(session=session, ref=ref, payload=payload, source=source))
