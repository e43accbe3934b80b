"""The provider registry: provider kinds by name.

``register(cls)`` adds a provider class; the built-in offline provider is
registered here exactly like the external ones.
"""

from __future__ import annotations

import threading

from studio.core.errors import ConfigError
from studio.providers.base import ModelInfo, Provider, estimate_tokens

__all__ = [
    "ModelInfo",
    "Provider",
    "estimate_tokens",
    "provider_class",
    "provider_kinds",
    "register",
]

_KINDS: dict[str, type[Provider]] = {}


def register(cls: type[Provider]) -> type[Provider]:
    """Register a provider class under its ``kind`` (usable as a decorator)."""
    _KINDS[cls.kind] = cls
    return cls


def provider_kinds() -> dict[str, type[Provider]]:
    _load_defaults()
    return dict(_KINDS)


def provider_class(kind: str) -> type[Provider]:
    _load_defaults()
    try:
        return _KINDS[kind]
    except KeyError:
        known = ", ".join(sorted(_KINDS))
        raise ConfigError(f"Unknown provider kind '{kind}'. Known kinds: {known}.") from None


_loaded = False
_loading = threading.Lock()


def _load_defaults() -> None:
    # Threads (the gateway's and the evaluations' worker threads) may ask at once: the
    # flag is set only after every built-in is registered, under a lock, so no caller
    # ever sees a half-filled table ("Unknown provider kind 'openai'. Known kinds: .").
    global _loaded
    if _loaded:
        return
    with _loading:
        if _loaded:
            return
        from studio.providers import anthropic, builtin, openai, rerank
        from studio.providers.local_embeddings import SentenceTransformersProvider
        from studio.providers.local_llama import LlamaCppProvider

        for module in (openai, anthropic, rerank, builtin):
            register(module.PROVIDER)
        register(LlamaCppProvider)
        register(SentenceTransformersProvider)
        _loaded = True
