"""In-process model runtimes: what llama.cpp and sentence-transformers share.

Loaded weights are process-wide: :func:`load_model` keeps one object per
(runtime, path, load options), loads it lazily and once even when the Streamlit
threads, the CLI and the gateway ask together, and every provider instance
shares it. A loaded model serves one call at a time (llama.cpp objects are not
thread-safe): calls queue for its turn in asyncio (a process-wide
:class:`~studio.providers.base.ConnectionLimiter` of one, fair across event loops
and threads), so a waiting call parks no thread, and only the call holding the
model runs, on the model's own one-thread executor (never the default executor).
The timeout covers the wait and the call: a call that times out while queued
leaves the queue and never runs; one that times out while generating gets
:class:`~studio.core.errors.ProviderTimeoutError` at once, while the model finishes that
generation before its next call starts.

A stream (:meth:`LocalProvider._stream`) takes the turn the same way and runs the
runtime's own token iterator on the model's thread, handing each piece to the event
loop as it comes; the timeout covers the wait for the turn and each gap between
pieces, and a caller that stops reading (closed, cancelled, timed out) stops the
generation at the next token, which ends the turn.

The runtimes themselves are :mod:`studio.providers.local_llama` (GGUF files,
chat, completion, agents) and :mod:`studio.providers.local_embeddings`
(embeddings and cosine reranking).
"""

from __future__ import annotations

import asyncio
import atexit
import importlib
import threading
import time
from collections.abc import AsyncGenerator, Callable, Hashable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import Field

from studio.core.errors import (
    ConfigError,
    ProviderRequestError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from studio.providers.base import ConnectionLimiter, ModelInfo, Provider, queued

__all__ = [
    "LoadedModel",
    "LocalProvider",
    "clear_loaded_models",
    "load_model",
    "loaded",
    "loaded_models",
    "require",
]

T = TypeVar("T")
Key = tuple[Hashable, ...]


# -- the process-wide cache of loaded models ------------------------------------------


@dataclass
class LoadedModel:
    """One loaded model. Take a ``turn`` (then hold ``lock``) while calling into ``model``,
    on its ``executor``."""

    key: Key
    model: Any
    load_seconds: float
    extra: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    turn: ConnectionLimiter = field(default_factory=lambda: ConnectionLimiter(1))
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
    )


_MODELS: dict[Key, LoadedModel] = {}
_KEY_LOCKS: dict[Key, threading.Lock] = {}
_CACHE_LOCK = threading.Lock()


def load_model(key: Key, loader: Callable[[], tuple[Any, dict[str, Any]]]) -> LoadedModel:
    """The model for ``key``; ``loader`` (returning model and extras) runs once only."""
    with _CACHE_LOCK:
        if (entry := _MODELS.get(key)) is not None:
            return entry
        key_lock = _KEY_LOCKS.setdefault(key, threading.Lock())
    with key_lock:  # one loader per key; different models load in parallel
        with _CACHE_LOCK:
            entry = _MODELS.get(key)
        if entry is None:
            start = time.perf_counter()
            model, extra = loader()
            entry = LoadedModel(key, model, time.perf_counter() - start, extra)
            with _CACHE_LOCK:
                _MODELS[key] = entry
        return entry


def loaded(key: Key) -> LoadedModel | None:
    """The model for ``key`` if it is loaded already (never waits for a load)."""
    with _CACHE_LOCK:
        return _MODELS.get(key)


def loaded_models() -> list[LoadedModel]:
    with _CACHE_LOCK:
        return list(_MODELS.values())


def clear_loaded_models() -> None:
    """Forget every loaded model (benchmarks, tests); calls in flight keep theirs."""
    with _CACHE_LOCK:
        gone = list(_MODELS.values())
        _MODELS.clear()
        _KEY_LOCKS.clear()
    for entry in gone:  # its thread ends once a call in flight returns
        entry.executor.shutdown(wait=False)


@atexit.register
def _close_llama_models() -> None:
    """Free llama.cpp models while the modules their finalizers need still exist."""
    for entry in loaded_models():
        if entry.key[0] == "llama-cpp":
            entry.model.close()


def require(module: str, package: str) -> Any:
    """Import ``module`` or say which package to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            f"Local models need the Python package '{package}', which is not installed.",
            hint=f"Install it with `pip install {package}`.",
        ) from exc


class LocalProvider(Provider):
    """Runs blocking calls on a shared loaded model in a worker thread."""

    offline = True

    class Options(Provider.Options):
        timeout_s: float = Field(default=600.0, gt=0, le=86_400, description="Per-call timeout.")

    def _key(self) -> Key:
        """The process-wide cache key of this connection's model."""
        raise NotImplementedError

    def _load(self) -> LoadedModel:
        raise NotImplementedError

    def _label(self) -> tuple[str, str, int | None]:
        """(model id, description, context window) for :meth:`list_models`."""
        raise NotImplementedError

    async def list_models(self) -> list[ModelInfo]:
        label, text, window = self._label()
        return [
            ModelInfo(id=label, model_type=t, context_window=window, description=text, offline=True)
            for t in sorted(self.model_types)
        ]

    async def _run(self, call: Callable[[LoadedModel], T]) -> T:
        timeout = self.options.timeout_s
        try:
            async with asyncio.timeout(timeout):
                return await self._take_turn(call)
        except TimeoutError as exc:
            msg = f"no answer within {timeout:g}s"
            raise ProviderTimeoutError(msg, provider=self.name) from exc

    async def _stream(
        self, produce: Callable[[LoadedModel], Iterator[T]]
    ) -> AsyncGenerator[T, None]:
        """Run ``produce`` on the model's own thread in its turn; yield its items as they come."""
        timeout = self.options.timeout_s
        entry = loaded(self._key())
        if entry is None:
            entry = await asyncio.to_thread(self._load)
        loop = asyncio.get_running_loop()
        items: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()

        def put(kind: str, value: Any) -> None:
            try:
                loop.call_soon_threadsafe(items.put_nowait, (kind, value))
            except RuntimeError:  # the caller's loop is gone: nobody reads any more
                stop.set()

        def run() -> None:
            with entry.lock:
                produced = produce(entry)
                try:
                    for item in produced:
                        if stop.is_set():
                            break
                        put("item", item)
                except (ValueError, KeyError) as exc:
                    put("error", ProviderRequestError(str(exc), provider=self.name))
                    return
                except RuntimeError as exc:
                    put("error", ProviderUnavailableError(str(exc), provider=self.name))
                    return
                except BaseException as exc:
                    put("error", exc)
                    return
                finally:
                    close = getattr(produced, "close", None)
                    if close is not None:
                        close()  # stops the runtime's own generator on this thread
                put("end", None)

        start = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                await entry.turn.acquire()  # a timeout here leaves the queue
        except TimeoutError as exc:
            msg = f"no answer within {timeout:g}s"
            raise ProviderTimeoutError(msg, provider=self.name) from exc
        queued(time.perf_counter() - start)
        try:
            job = entry.executor.submit(run)
        except BaseException:
            entry.turn.release()
            raise
        job.add_done_callback(lambda _: entry.turn.release())
        try:
            while True:
                try:
                    async with asyncio.timeout(timeout):
                        kind, value = await items.get()
                except TimeoutError as exc:
                    msg = f"no new token within {timeout:g}s"
                    raise ProviderTimeoutError(msg, provider=self.name) from exc
                if kind == "end":
                    return
                if kind == "error":
                    raise value
                yield value
        finally:
            stop.set()  # the model stops at its next token if the caller went away

    async def _take_turn(self, call: Callable[[LoadedModel], T]) -> T:
        """Wait (in asyncio) for the model's turn, then run ``call`` on its own thread."""
        entry = loaded(self._key())
        if entry is None:  # only the first calls wait for the weights, in a worker thread
            entry = await asyncio.to_thread(self._load)

        def locked() -> T:
            with entry.lock:
                try:
                    return call(entry)
                except (ValueError, KeyError) as exc:  # too long a prompt, unknown chat format
                    raise ProviderRequestError(str(exc), provider=self.name) from exc
                except RuntimeError as exc:
                    raise ProviderUnavailableError(str(exc), provider=self.name) from exc

        start = time.perf_counter()
        await entry.turn.acquire()  # a timeout here leaves the queue: the call never runs
        queued(time.perf_counter() - start)
        try:
            job: Future[T] = entry.executor.submit(locked)
        except BaseException:
            entry.turn.release()
            raise
        # The turn ends when the model is done, even if the caller stopped waiting.
        job.add_done_callback(lambda _: entry.turn.release())
        return await asyncio.wrap_future(job)
