"""sentence-transformers for embeddings, and reranking by the cosine of embeddings.
Weights load once per process through :func:`~studio.providers.local.load_model`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from studio.core.errors import (
    ConfigError,
)
from studio.core.schemas import (
    EmbeddingRequest,
    EmbeddingResponse,
    Message,
    ModelType,
    RerankingRequest,
    RerankingResponse,
)
from studio.providers.local import LoadedModel, LocalProvider, load_model, require

__all__ = ["SentenceTransformersProvider"]


# -- sentence-transformers ------------------------------------------------------------


def _load_sentence_transformer(path: Path, device: str) -> tuple[Any, dict[str, Any]]:
    # Never reach for the Hugging Face Hub: the model is a local directory.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    st = require("sentence_transformers", "sentence-transformers")
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar in CLI output
    try:
        model = st.SentenceTransformer(str(path), device=device, local_files_only=True)
    except Exception as exc:  # torch, transformers and OS errors alike
        raise ConfigError(
            f"Could not load the sentence-transformers model in '{path}': {exc}",
            hint="Point model_path at a directory saved by sentence-transformers.",
        ) from exc
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    return model, {}


def _token_count(model: Any, texts: list[str]) -> int:
    """Tokens the model reads (after truncation), special tokens included."""
    preprocess = getattr(model, "preprocess", None) or model.tokenize  # newer name of tokenize
    return int(preprocess(texts)["attention_mask"].sum())


class SentenceTransformersProvider(LocalProvider):
    kind = "sentence-transformers"
    description = (
        "A local sentence-transformers model run in-process; offline, no key. "
        "Reranking is by embedding similarity (cosine between query and chunk "
        "embeddings) until a packaged cross-encoder exists."
    )
    model_types: ClassVar[frozenset[ModelType]] = frozenset(
        {ModelType.EMBEDDING, ModelType.RERANKING}
    )

    class Options(LocalProvider.Options):
        model_path: str = Field(
            default="", description="Directory of a sentence-transformers model."
        )
        device: str = Field(
            default="cpu", pattern=r"^(cpu|mps|cuda(:\d+)?)$", description="Torch device."
        )
        batch_size: int = Field(default=64, ge=1, le=4096, description="Texts per forward pass.")

    options: SentenceTransformersProvider.Options

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not self.options.model_path:
            raise ConfigError(
                f"Connection '{self.name}' (sentence-transformers) has no model_path.",
                hint="Set the option model_path to a local model directory.",
            )
        self.model_dir = Path(self.options.model_path).expanduser().resolve()
        if not self.model_dir.is_dir():
            raise ConfigError(f"Model directory '{self.model_dir}' does not exist.")

    def _key(self) -> tuple[str, str, str]:
        return ("sentence-transformers", str(self.model_dir), self.options.device)

    def _load(self) -> LoadedModel:
        device = self.options.device
        return load_model(self._key(), lambda: _load_sentence_transformer(self.model_dir, device))

    def _label(self) -> tuple[str, str, int | None]:
        return self.model_dir.name, f"{self.model_dir.name} via sentence-transformers", None

    def supports_chat(self, model: str) -> bool:
        return False

    def context_window(self, model: str) -> int | None:
        return int(self._load().model.max_seq_length)

    def count_tokens(self, model: str, messages: list[Message]) -> int:
        return _token_count(self._load().model, [m.content for m in messages])

    def _encode(self, entry: LoadedModel, texts: list[str], *, normalize: bool) -> Any:
        return entry.model.encode(
            texts,
            batch_size=self.options.batch_size,
            normalize_embeddings=normalize,
            show_progress_bar=False,
        )

    async def embed(self, model: str, request: EmbeddingRequest) -> EmbeddingResponse:
        texts = request.texts

        def run(entry: LoadedModel) -> EmbeddingResponse:
            vectors = self._encode(entry, texts, normalize=False)
            pairs = [(t, v.tolist()) for t, v in zip(texts, vectors, strict=True)]
            return EmbeddingResponse(embeddings=pairs, tokens_used=_token_count(entry.model, texts))

        return await self._run(run)

    async def rerank(self, model: str, request: RerankingRequest) -> RerankingResponse:
        texts = [request.query, *request.chunks]

        def run(entry: LoadedModel) -> RerankingResponse:
            vectors = self._encode(entry, texts, normalize=True)
            scores = (vectors[1:] @ vectors[0]).tolist()  # cosine of unit vectors
            return RerankingResponse(
                chunk_scores=scores, tokens_used=_token_count(entry.model, texts)
            )

        return await self._run(run)
