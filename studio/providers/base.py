"""What every provider is: a small class that says what it can do.

A provider talks to one family of model servers (OpenAI-compatible, Anthropic,
``/rerank`` servers, the built-in offline models). One *connection* is one
configured instance of a provider: a name (the prefix in ``name/model``), a
base URL, a key and options. Class attributes describe the provider; settings
live in the nested pydantic ``Options`` with ``extra="forbid"``.

Providers are registered with :func:`studio.providers.register`; the built-in
provider registers exactly like the others.

A connection bounds its calls in flight only when the user gave it a
``concurrency`` of its own: :func:`connection_limiter` keeps one
:class:`ConnectionLimiter` per connection name for the whole process, shared by
every event loop and thread (the CLI, Streamlit's threads, the gateway). Without
one, the caller's own concurrency (a run's "Parallel calls") is what runs.
:func:`call_clock` measures a model call without the time it spent queued behind
such a limit (or behind a local model's lock).

Chat and completion answers can also arrive in pieces (:class:`StreamChunk`) from
:meth:`Provider.stream_chat` and :meth:`Provider.stream_complete`; a provider that
cannot stream sends its whole answer as one piece.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from abc import ABC
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from studio.core.errors import ConfigError, ProviderRequestError
from studio.core.schemas import (
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
    RerankingRequest,
    RerankingResponse,
    problems_from_pydantic,
)

__all__ = [
    "CallClock",
    "ChunkStream",
    "ConnectionLimiter",
    "ModelInfo",
    "Provider",
    "StreamChunk",
    "call_clock",
    "connection_limiter",
    "estimate_tokens",
    "queued",
]


def estimate_tokens(text: str) -> int:
    """Cheap token estimate (about four characters a token, never zero for text)."""
    return max(1, (len(text) + 3) // 4) if text else 0


# -- measuring a call without its queueing -------------------------------------------


@dataclass
class CallClock:
    """Wall time of one model call minus the time it waited for a slot or a lock."""

    started: float = field(default_factory=time.perf_counter)
    waited_s: float = 0.0
    stopped: float | None = None

    @property
    def elapsed_ms(self) -> float:
        end = self.stopped if self.stopped is not None else time.perf_counter()
        return max(0.0, end - self.started - self.waited_s) * 1000


_CLOCK: contextvars.ContextVar[CallClock | None] = contextvars.ContextVar(
    "studio_call_clock", default=None
)


@contextmanager
def call_clock() -> Iterator[CallClock]:
    """Time the model call made inside the block; queueing it reports is left out."""
    clock = CallClock()
    token = _CLOCK.set(clock)
    try:
        yield clock
    finally:
        clock.stopped = time.perf_counter()
        _CLOCK.reset(token)


def queued(seconds: float) -> None:
    """Tell the current call's clock (if any) that it spent ``seconds`` queued."""
    clock = _CLOCK.get()
    if clock is not None:
        clock.waited_s += seconds


# -- the per-connection limit, process-wide ---------------------------------------------


@dataclass(eq=False)
class _Waiter:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]
    granted: bool = False


def _grant(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class ConnectionLimiter:
    """At most ``limit`` holders at once, across every event loop and thread.

    A counter under a :class:`threading.Lock`; a caller that must wait parks an
    asyncio future on its own loop (no thread is blocked), and a release hands
    its slot straight to the oldest waiter, first come first served. A waiter
    cancelled (or timed out) before its turn leaves the queue; one cancelled
    just after its turn came passes the slot on.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._in_use = 0
        self._waiters: deque[_Waiter] = deque()

    @property
    def in_use(self) -> int:
        return self._in_use

    def set_limit(self, limit: int) -> None:
        with self._lock:
            self.limit = limit
            while self._waiters and self._in_use < self.limit:
                self._in_use += 1
                self._wake_locked()

    async def acquire(self) -> None:
        with self._lock:
            if self._in_use < self.limit and not self._waiters:
                self._in_use += 1
                return
            loop = asyncio.get_running_loop()
            waiter = _Waiter(loop, loop.create_future())
            self._waiters.append(waiter)
        try:
            await waiter.future
        except BaseException:
            with self._lock:
                granted = waiter.granted
                if not granted:
                    self._waiters.remove(waiter)
            if granted:
                self.release()
            raise

    def release(self) -> None:
        with self._lock:
            # Above a lowered limit a freed slot is dropped rather than handed on.
            if self._in_use > self.limit or not self._wake_locked():
                self._in_use -= 1

    def _wake_locked(self) -> bool:
        """Hand one slot to the oldest waiter whose loop still runs; False if none."""
        while self._waiters:
            waiter = self._waiters.popleft()
            try:
                waiter.loop.call_soon_threadsafe(_grant, waiter.future)
            except RuntimeError:  # its loop is closed: nobody is waiting there any more
                continue
            waiter.granted = True
            return True
        return False

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the block; the wait is reported to :func:`call_clock`."""
        start = time.perf_counter()
        await self.acquire()
        queued(time.perf_counter() - start)
        try:
            yield
        finally:
            self.release()


_LIMITERS: dict[str, ConnectionLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def connection_limiter(name: str, limit: int | None) -> ConnectionLimiter | None:
    """The process-wide limiter of connection ``name`` (None when it sets no limit).

    Every provider instance of one connection shares it; a changed limit applies
    to the same limiter, so calls in flight are still counted.
    """
    if limit is None:
        return None
    with _LIMITERS_LOCK:
        limiter = _LIMITERS.get(name)
        if limiter is None:
            limiter = _LIMITERS[name] = ConnectionLimiter(limit)
            return limiter
    if limiter.limit != limit:
        limiter.set_limit(limit)
    return limiter


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """A piece of an answer as the model produces it.

    ``text`` is new text of output ``index`` (the prompt's position in a completion
    request, 0 for chat). The last chunk of a stream carries ``finish_reason`` and the
    usage the provider reported (``None`` when it reported none).
    """

    text: str = ""
    index: int = 0
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    response_tokens: int | None = None


ChunkStream = AsyncGenerator[StreamChunk, None]
"""What the streaming methods return: close it (``contextlib.aclosing``) to stop the call."""


class ModelInfo(BaseModel):
    """One model a connection offers."""

    id: str = Field(description="The provider's own model id, e.g. 'gpt-4o-mini'.")
    model_type: ModelType
    context_window: int | None = None
    description: str = ""
    offline: bool = False


class Provider(ABC):
    kind: ClassVar[str]
    description: ClassVar[str] = ""
    model_types: ClassVar[frozenset[ModelType]] = frozenset()
    needs_key: ClassVar[bool] = False
    key_env_var: ClassVar[str | None] = None
    default_base_url: ClassVar[str | None] = None
    offline: ClassVar[bool] = False

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        timeout_s: float = Field(default=60.0, gt=0, le=3600, description="Per-call timeout.")
        max_retries: int = Field(
            default=5, ge=0, le=20, description="Retries on 429, 5xx, timeouts, drops."
        )
        concurrency: int | None = Field(
            default=None,
            ge=1,
            le=1024,
            description="At most this many calls in flight at once on this connection, "
            "across the whole process; none: no limit of its own (each run's own "
            "concurrency applies).",
        )
        retry_base_delay_s: float = Field(default=0.5, ge=0, le=60)
        retry_max_delay_s: float = Field(default=30.0, ge=0, le=600)

    def __init__(
        self,
        *,
        name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        options: dict[str, Any] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.base_url = (base_url or self.default_base_url or "").rstrip("/") or None
        self._api_key = api_key
        self.transport = transport
        try:
            self.options = self.Options.model_validate(options or {})
        except PydanticValidationError as exc:
            problems = "; ".join(str(p) for p in problems_from_pydantic(exc, self.Options))
            raise ConfigError(f"Connection '{name}' has invalid options: {problems}") from exc
        if self.needs_key and not api_key:
            env = f" or set {self.key_env_var}" if self.key_env_var else ""
            raise ConfigError(
                f"Connection '{name}' ({self.kind}) needs an API key.",
                hint=f"Add one with `studio provider add {name} --api-key-env VAR`{env}.",
            )

    def __repr__(self) -> str:  # never shows the key
        return f"<{type(self).__name__} name={self.name!r} base_url={self.base_url!r}>"

    # -- description ---------------------------------------------------------

    async def list_models(self) -> list[ModelInfo]:
        """Models this connection offers (may call the server)."""
        return []

    def supports_chat(self, model: str) -> bool:
        return ModelType.CHAT_COMPLETION in self.model_types

    def context_window(self, model: str) -> int | None:
        return None

    def count_tokens(self, model: str, messages: list[Message]) -> int:
        """Token count of a conversation; providers with a tokenizer count exactly."""
        return sum(estimate_tokens(m.content) + 4 for m in messages) + 2

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release clients and loaded models."""

    # -- the five model types --------------------------------------------------

    def _unsupported(self, what: ModelType) -> ProviderRequestError:
        return ProviderRequestError(
            f"this provider does not serve {what.value} models",
            provider=self.name,
        )

    async def embed(self, model: str, request: EmbeddingRequest) -> EmbeddingResponse:
        raise self._unsupported(ModelType.EMBEDDING)

    async def rerank(self, model: str, request: RerankingRequest) -> RerankingResponse:
        raise self._unsupported(ModelType.RERANKING)

    async def complete(self, model: str, request: CompletionRequest) -> CompletionResponse:
        raise self._unsupported(ModelType.COMPLETION)

    async def chat(self, model: str, request: ChatCompletionRequest) -> ChatCompletionResponse:
        raise self._unsupported(ModelType.CHAT_COMPLETION)

    async def agent(self, model: str, request: AgentRequest) -> AgentResponse:
        raise self._unsupported(ModelType.AGENT)

    # -- streaming: providers that can send tokens as they come override these ---------

    async def stream_chat(self, model: str, request: ChatCompletionRequest) -> ChunkStream:
        """The answer of :meth:`chat` in pieces; by default one piece, once it is whole."""
        answer = await self.chat(model, request)
        yield StreamChunk(
            text=answer.message.content,
            finish_reason=answer.finish_reason,
            prompt_tokens=answer.prompt_tokens,
            response_tokens=answer.response_tokens,
        )

    async def stream_complete(self, model: str, request: CompletionRequest) -> ChunkStream:
        """The answers of :meth:`complete` in pieces; by default one per prompt, whole."""
        answer = await self.complete(model, request)
        last = len(answer.completions) - 1
        for index, (_, texts) in enumerate(answer.completions):
            final = index == last
            yield StreamChunk(
                text=texts[0] if texts else "",
                index=index,
                finish_reason=answer.finish_reason if final else None,
                prompt_tokens=answer.prompt_tokens if final else None,
                response_tokens=answer.response_tokens if final else None,
            )
