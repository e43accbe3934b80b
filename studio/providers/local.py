"""In-process model runtimes: what llama.cpp and sentence-transformers share.

Loaded weights are process-wide: :func:`load_model` keeps one object per
(runtime, path, load options), loads it lazily and once even when the Streamlit
threads, the CLI and the gateway ask together, and every provider instance
shares it. Each loaded model has its own lock (llama.cpp objects are not
thread-safe); inference runs in a worker thread via ``asyncio.to_thread``. On a
timeout the caller gets :class:`~studio.core.errors.ProviderTimeoutError` at once, while
the worker finishes its generation before the model's lock is free again.

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
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import Field

from studio.core.errors import (
    ConfigError,
    ProviderRequestError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from studio.providers.base import ModelInfo, Provider

__all__ = [
    "LoadedModel",
    "LocalProvider",
    "clear_loaded_models",
    "load_model",
    "loaded_models",
    "require",
]

T = TypeVar("T")
Key = tuple[Hashable, ...]


# -- the process-wide cache of loaded models ------------------------------------------


@dataclass
class LoadedModel:
    """One loaded model. Hold ``lock`` while calling into ``model``."""

    key: Key
    model: Any
    load_seconds: float
    extra: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


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


def loaded_models() -> list[LoadedModel]:
    with _CACHE_LOCK:
        return list(_MODELS.values())


def clear_loaded_models() -> None:
    """Forget every loaded model (benchmarks, tests); calls in flight keep theirs."""
    with _CACHE_LOCK:
        _MODELS.clear()
        _KEY_LOCKS.clear()


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
        entry = await asyncio.to_thread(self._load)

        def locked() -> T:
            with entry.lock:
                try:
                    return call(entry)
                except (ValueError, KeyError) as exc:  # too long a prompt, unknown chat format
                    raise ProviderRequestError(str(exc), provider=self.name) from exc
                except RuntimeError as exc:
                    raise ProviderUnavailableError(str(exc), provider=self.name) from exc

        timeout = self.options.timeout_s
        try:
            return await asyncio.wait_for(asyncio.to_thread(locked), timeout)
        except TimeoutError as exc:
            msg = f"no answer within {timeout:g}s"
            raise ProviderTimeoutError(msg, provider=self.name) from exc
