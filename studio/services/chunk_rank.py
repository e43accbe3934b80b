"""Chunk ranking in the platform's shape: ``chunks.rank(query, relevant_chunks,
rank_strategy, top_k)`` answers the chunks best first, with their scores.

A strategy is a reranking model (``{"method": "model", "params": {"model_id": ...}}``, or
its id or name as a plain string), embedding similarity (``"embedding"``, or ``{"method":
"embedding", "params": {"model_id": ...}}``: cosine of the query's and each chunk's
embedding; the built-in MiniLM by default) or ``"bm25"`` (``bm25s``, no model). Model calls
go through the model layer, with its retries and usage records (source ``chunk_rank``).
Ties keep the input order.

Rules: ranking with a model is a raw model call (:mod:`studio.models.permissions`: an
administrator, a member, a key with the ``models`` scope); BM25 needs the same callers,
so that the rule does not depend on the strategy chosen.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import numpy as np
from pydantic import BaseModel, Field

from studio.core.errors import ConflictError, StudioError
from studio.core.schemas import ModelType
from studio.models import registry
from studio.models.permissions import require_model_reader
from studio.models.vector_index import bm25_scores
from studio.services.knowledge import DEFAULT_EMBEDDING_MODEL
from studio.store import session_scope

__all__ = ["RankStrategy", "RankedChunk", "arank_chunks", "parse_strategy", "rank_chunks"]

MAX_CHUNKS = 1000


class RankStrategy(BaseModel):
    """How chunks are ranked: ``model`` (a reranking model), ``embedding`` or ``bm25``."""

    method: str = Field(description="model, embedding or bm25")
    model: str | None = Field(default=None, description="model id or name (model, embedding)")


@dataclass(frozen=True)
class RankedChunk:
    """One chunk in ranked order: its text, its position in the request and its score."""

    chunk: str
    index: int
    score: float


def parse_strategy(value: str | dict[str, Any] | RankStrategy | None) -> RankStrategy:
    """A strategy from what a client sends (see the module docstring)."""
    if isinstance(value, RankStrategy):
        return value
    if value is None or (isinstance(value, str) and not value.strip()):
        return RankStrategy(method="embedding", model=DEFAULT_EMBEDDING_MODEL)
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("bm25", "embedding"):
            model = DEFAULT_EMBEDDING_MODEL if text.lower() == "embedding" else None
            return RankStrategy(method=text.lower(), model=model)
        if text.lower().startswith("embedding:"):
            return RankStrategy(method="embedding", model=text.split(":", 1)[1].strip())
        return RankStrategy(method="model", model=text)
    method = str(value.get("method", "model")).lower()
    params = value.get("params") or {}
    model = params.get("model_id") or params.get("model") or value.get("model")
    if method not in ("model", "embedding", "bm25"):
        raise ConflictError(
            f"Unknown rank strategy '{method}'.", hint="Use model, embedding or bm25."
        )
    if method == "model" and not model:
        raise ConflictError(
            "The 'model' rank strategy needs params.model_id: a reranking model's id or name.",
            hint="List reranking models with `studio model list`.",
        )
    if method == "embedding" and not model:
        model = DEFAULT_EMBEDDING_MODEL
    return RankStrategy(method=method, model=str(model) if model else None)


def _model_type(ref: str, payload: dict[str, Any]) -> ModelType:
    with session_scope() as session:
        return registry.model_type(session=session, ref=ref, payload=payload)


async def _call(ref: str, payload: dict[str, Any]) -> dict[str, Any]:
    response = await registry.aexecute(ref=ref, payload=payload, source="chunk_rank")
    return response.model_dump(mode="json")


async def _scores(query: str, chunks: list[str], strategy: RankStrategy) -> list[float]:
    if strategy.method == "bm25":
        return await anyio.to_thread.run_sync(bm25_scores, query, chunks)
    assert strategy.model is not None
    if strategy.method == "model":
        payload: dict[str, Any] = {"query": query, "chunks": chunks}
        kind = await anyio.to_thread.run_sync(_model_type, strategy.model, payload)
        if kind != ModelType.RERANKING:
            raise ConflictError(
                f"'{strategy.model}' is a {kind.value} model, not a RERANKING model.",
                hint="Pick a reranking model, or the 'embedding' or 'bm25' strategy.",
            )
        scores = [float(s) for s in (await _call(strategy.model, payload))["chunk_scores"]]
        if len(scores) != len(chunks):
            raise StudioError(
                f"The reranking model answered {len(scores)} scores for {len(chunks)} chunks.",
                hint="Check the model's server.",
            )
        return scores
    data = await _call(strategy.model, {"texts": [query, *chunks]})
    vectors = np.asarray([v for _t, v in data["embeddings"]], dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1)
    norms[norms == 0] = 1.0
    unit = vectors / norms[:, None]
    return [float(s) for s in unit[1:] @ unit[0]]


async def arank_chunks(
    *,
    query: str,
    relevant_chunks: list[str],
    rank_strategy: str | dict[str, Any] | RankStrategy | None = None,
    top_k: int | None = None,
) -> list[RankedChunk]:
    """``relevant_chunks`` best first by ``rank_strategy``; the first ``top_k`` of them.
    No database session is held while a model answers (short ones in worker threads)."""
    require_model_reader("rank chunks")
    if not query.strip():
        raise ConflictError("Ranking chunks needs a query.", hint="Give the question to rank by.")
    if len(relevant_chunks) > MAX_CHUNKS:
        raise ConflictError(
            f"At most {MAX_CHUNKS} chunks can be ranked at once ({len(relevant_chunks)} given).",
            hint="Narrow the chunks down first, e.g. with a knowledge base query.",
        )
    if top_k is not None and top_k < 1:
        raise ConflictError("top_k must be at least 1.", hint="Ask for 1 or more chunks.")
    if not relevant_chunks:
        return []
    strategy = parse_strategy(rank_strategy)
    scores = await _scores(query, list(relevant_chunks), strategy)
    order = sorted(range(len(relevant_chunks)), key=lambda i: (-scores[i], i))
    ranked = [RankedChunk(relevant_chunks[i], i, scores[i]) for i in order]
    return ranked[:top_k] if top_k is not None else ranked


def rank_chunks(
    *,
    query: str,
    relevant_chunks: list[str],
    rank_strategy: str | dict[str, Any] | RankStrategy | None = None,
    top_k: int | None = None,
) -> list[RankedChunk]:
    """:func:`arank_chunks` for synchronous callers (the CLI, the pages)."""
    return asyncio.run(
        arank_chunks(
            query=query, relevant_chunks=relevant_chunks, rank_strategy=rank_strategy, top_k=top_k
        )
    )
