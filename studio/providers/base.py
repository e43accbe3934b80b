"""What every provider is: a small class that says what it can do.

A provider talks to one family of model servers (OpenAI-compatible, Anthropic,
``/rerank`` servers, the built-in offline models). One *connection* is one
configured instance of a provider: a name (the prefix in ``name/model``), a
base URL, a key and options. Class attributes describe the provider; settings
live in the nested pydantic ``Options`` with ``extra="forbid"``.

Providers are registered with :func:`studio.providers.register`; the built-in
provider registers exactly like the others.
"""

from __future__ import annotations

from abc import ABC
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
from studio.core.settings import DEFAULT_CONCURRENCY

__all__ = ["ModelInfo", "Provider", "estimate_tokens"]


def estimate_tokens(text: str) -> int:
    """Cheap token estimate (about four characters a token, never zero for text)."""
    return max(1, (len(text) + 3) // 4) if text else 0


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
        concurrency: int = Field(
            default=DEFAULT_CONCURRENCY,
            ge=1,
            le=1024,
            description="Calls in flight at once on this connection.",
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
