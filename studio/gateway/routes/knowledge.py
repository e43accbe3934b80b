"""Chunk ranking and knowledge base queries over HTTP.

``POST /api/v1/chunks/rank`` is the platform's ``chunks.rank(query, relevant_chunks,
rank_strategy, top_k)``: the chunks best first with their scores (a reranking model by id
or name, ``embedding`` similarity, or ``bm25``). ``POST /api/v1/knowledge-bases/{id}/query``
answers the nearest chunks of a knowledge base with their scores and documents. The same
services as ``studio chunks rank`` and ``studio kb query``. Who may call them is decided
in :mod:`studio.services.access`: ranking is a raw model call (the ``models`` scope, or
an administrator's or member's token); a query needs the knowledge base's app (another
app's knowledge base is not found). Neither holds a database session while a model answers.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import APIRouter
from pydantic import BaseModel, Field

from studio.gateway.deps import ApiKeyDep
from studio.services.access import readable_knowledge_base, require_caller, require_models
from studio.services.chunk_rank import MAX_CHUNKS, arank_chunks
from studio.services.knowledge_search import search_briefly
from studio.store import session_scope

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["knowledge"])


class RankRequest(BaseModel):
    query: str = Field(min_length=1, description="The question the chunks are ranked for.")
    relevant_chunks: list[str] = Field(max_length=MAX_CHUNKS, description="Chunks to rank.")
    rank_strategy: str | dict[str, Any] | None = Field(
        default=None,
        description='A reranking model\'s id or name, {"method": "model", "params": '
        '{"model_id": ...}}, "embedding" (cosine similarity; default) or "bm25".',
    )
    top_k: int | None = Field(default=None, ge=1, description="Answer only the best k.")


class RankedChunkPublic(BaseModel):
    text: str
    index: int = Field(description="The chunk's position in the request.")
    score: float = Field(description="Higher is more relevant (the strategy's own scale).")


class RankResponse(BaseModel):
    relevant_chunks: list[RankedChunkPublic]


class QueryRequest(BaseModel):
    query: str = Field(min_length=1)
    top_k: int = Field(default=5, ge=1, le=100)
    documents: list[str] | None = Field(
        default=None, description="Only chunks of these documents (names or ids)."
    )
    hybrid: bool = Field(default=False, description="Fuse with BM25 by reciprocal rank.")


class ChunkHitPublic(BaseModel):
    chunk_id: int
    document_id: int
    document: str
    position: int = Field(description="The chunk's place in its document (from 0).")
    text: str
    score: float = Field(description="Cosine similarity (hybrid: the fused rank score).")


class QueryResponse(BaseModel):
    knowledge_base_id: int
    chunks: list[ChunkHitPublic]


@router.post("/chunks/rank")
async def rank(body: RankRequest, key: ApiKeyDep) -> RankResponse:
    """Rank ``relevant_chunks`` for ``query``; the first ``top_k`` in ranked order."""
    require_models(key)
    ranked = await arank_chunks(
        query=body.query,
        relevant_chunks=body.relevant_chunks,
        rank_strategy=body.rank_strategy,
        top_k=body.top_k,
    )
    return RankResponse(
        relevant_chunks=[
            RankedChunkPublic(text=r.chunk, index=r.index, score=r.score) for r in ranked
        ]
    )


def _query(kb_id: int, body: QueryRequest, key: Any) -> QueryResponse:
    require_caller(key)
    with session_scope() as session:
        readable_knowledge_base(session=session, key=key, kb_id=kb_id)
    hits = search_briefly(
        kb_id=kb_id, query=body.query, top_k=body.top_k, documents=body.documents,
        hybrid=body.hybrid,
    )  # fmt: skip
    return QueryResponse(knowledge_base_id=kb_id, chunks=[ChunkHitPublic(**vars(h)) for h in hits])


@router.post("/knowledge-bases/{kb_id}/query")
async def query(kb_id: int, body: QueryRequest, key: ApiKeyDep) -> QueryResponse:
    """The ``top_k`` chunks of knowledge base ``kb_id`` nearest to ``query``."""
    return await anyio.to_thread.run_sync(_query, kb_id, body, key)
