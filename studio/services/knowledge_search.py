"""Searching a knowledge base: the nearest chunks to a query, with their scores.

:func:`search` embeds the query with the model whose vectors serve queries and asks a
:class:`~studio.models.vector_index.VectorIndex` over the stored vectors (exact cosine;
HNSW above a size), loaded once per knowledge base and process and loaded again when its
chunks or vectors change (the base's ``updated_at`` and vector count say so, also for
changes made by another process). ``hybrid`` fuses the vector ranking with BM25 over the
same chunks by reciprocal rank; ``documents`` keeps the chunks of those documents only.
:func:`search_briefly` is the same with short sessions, none held while the model embeds
the query (the gateway).

Rules: searching needs access to the knowledge base's app
(:func:`~studio.services.knowledge.get_knowledge_base`); the query's embedding is a model
call (:mod:`studio.models.permissions`).
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlmodel import Session, col, func, select

from studio.core.errors import StudioError
from studio.models import registry
from studio.models.vector_index import (
    VectorIndex,
    bm25_scores,
    build_index,
    from_bytes,
    reciprocal_rank_fusion,
)
from studio.services.knowledge import _document, get_knowledge_base
from studio.store.tables import ChunkVector, KnowledgeBase, KnowledgeChunk, KnowledgeDocument

__all__ = ["ChunkHit", "embed_query", "forget_index", "load_index", "search", "search_briefly"]


@dataclass(frozen=True)
class ChunkHit:
    """One chunk a search found, with its score (cosine similarity, or fused rank)."""

    chunk_id: int
    document_id: int
    document: str
    position: int
    text: str
    score: float


_CACHE_SIZE = 8
_cache: OrderedDict[tuple[int, str], tuple[tuple[Any, ...], VectorIndex]] = OrderedDict()
_cache_lock = threading.Lock()


def forget_index(kb_id: int | None) -> None:
    """Drop the loaded indexes of knowledge base ``kb_id`` (this process)."""
    with _cache_lock:
        for key in [k for k in _cache if k[0] == kb_id]:
            del _cache[key]


def load_index(session: Session, kb: KnowledgeBase, model: str) -> VectorIndex:
    """The index of ``kb``'s vectors by ``model``, from the cache while nothing changed."""
    assert kb.id is not None
    count = session.exec(
        select(func.count()).where(ChunkVector.kb_id == kb.id, ChunkVector.model == model)
    ).one()
    stamp = (kb.updated_at.isoformat() if kb.updated_at else "", int(count))
    key = (kb.id, model)
    with _cache_lock:
        found = _cache.get(key)
        if found is not None and found[0] == stamp:
            _cache.move_to_end(key)
            return found[1]
    rows = session.exec(
        select(ChunkVector.chunk_id, ChunkVector.vector)
        .where(ChunkVector.kb_id == kb.id, ChunkVector.model == model)
        .order_by(col(ChunkVector.chunk_id))
    ).all()
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    matrix = np.vstack([from_bytes(r[1]) for r in rows]) if rows else np.zeros((0, 1), np.float32)
    index = build_index(ids, matrix)
    with _cache_lock:
        _cache[key] = (stamp, index)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return index


def embed_query(session: Session, model: str, text: str) -> list[float]:
    """One text's embedding through the model layer (usage recorded as ``knowledge``)."""
    response = registry.execute(
        session=session, ref=model, payload={"texts": [text]}, source="knowledge"
    )
    data = response.model_dump(mode="json")
    return [float(x) for x in data["embeddings"][0][1]]


def search(
    *,
    session: Session,
    kb_id: int,
    query: str,
    top_k: int = 5,
    documents: Sequence[int | str] | None = None,
    hybrid: bool = False,
    embed: Callable[[Session, str, str], list[float]] = embed_query,
) -> list[ChunkHit]:
    """The ``top_k`` chunks of knowledge base ``kb_id`` nearest to ``query``, best first."""
    kb = get_knowledge_base(session=session, ref=kb_id, action="search")
    if not query.strip():
        raise StudioError("A search needs a query.", hint="Type a question.")
    top_k = max(1, min(int(top_k), 100))
    allowed: set[int] | None = None
    if documents:
        doc_ids = [_document(session, kb_id, d).id for d in documents]
        stmt = select(KnowledgeChunk.id).where(col(KnowledgeChunk.document_id).in_(doc_ids))
        allowed = {int(i) for i in session.exec(stmt).all() if i is not None}
    index = load_index(session, kb, kb.serving_model)
    if len(index.ids) == 0:
        return []
    vector = np.asarray(embed(session, kb.serving_model, query), dtype=np.float32)
    pairs = index.search(vector, top_k * 4 if hybrid else top_k, allowed)
    if hybrid:
        pairs = _hybrid(session, kb_id, query, pairs, allowed, top_k)
    return _hits(session, pairs[:top_k])


def search_briefly(
    *,
    kb_id: int,
    query: str,
    top_k: int = 5,
    documents: Sequence[int | str] | None = None,
    hybrid: bool = False,
) -> list[ChunkHit]:
    """:func:`search` with short sessions of its own, none held while the model embeds the
    query (the gateway's way: a slow model keeps no pooled connection busy)."""
    from studio.store import session_scope

    with session_scope() as session:
        model = get_knowledge_base(session=session, ref=kb_id, action="search").serving_model
    if not query.strip():
        raise StudioError("A search needs a query.", hint="Type a question.")
    vector = asyncio.run(_aembed(model, query))

    def embedded(session: Session, serving: str, text: str) -> list[float]:
        return vector if serving == model else embed_query(session, serving, text)

    with session_scope() as session:
        return search(
            session=session,
            kb_id=kb_id,
            query=query,
            top_k=top_k,
            documents=documents,
            hybrid=hybrid,
            embed=embedded,
        )


async def _aembed(model: str, text: str) -> list[float]:
    response = await registry.aexecute(ref=model, payload={"texts": [text]}, source="knowledge")
    return [float(x) for x in response.model_dump(mode="json")["embeddings"][0][1]]


def _hybrid(
    session: Session,
    kb_id: int,
    query: str,
    vector_pairs: list[tuple[int, float]],
    allowed: set[int] | None,
    top_k: int,
) -> list[tuple[int, float]]:
    stmt = select(KnowledgeChunk.id, KnowledgeChunk.text).where(KnowledgeChunk.kb_id == kb_id)
    rows = [
        (int(i or 0), t) for i, t in session.exec(stmt).all() if allowed is None or i in allowed
    ]
    scores = bm25_scores(query, [t for _i, t in rows])
    lexical = sorted(
        ((rows[n][0], s) for n, s in enumerate(scores) if s > 0), key=lambda p: (-p[1], p[0])
    )
    ranking = [i for i, _s in lexical[: top_k * 4]]
    return reciprocal_rank_fusion([[i for i, _s in vector_pairs], ranking])


def _hits(session: Session, pairs: list[tuple[int, float]]) -> list[ChunkHit]:
    if not pairs:
        return []
    ids = [i for i, _s in pairs]
    stmt = (
        select(KnowledgeChunk, KnowledgeDocument.name)
        .join(KnowledgeDocument, col(KnowledgeDocument.id) == col(KnowledgeChunk.document_id))
        .where(col(KnowledgeChunk.id).in_(ids))
    )
    found = {c.id: (c, name) for c, name in session.exec(stmt).all()}
    hits = []
    for chunk_id, score in pairs:
        if chunk_id in found:  # a chunk deleted since the index was loaded is skipped
            chunk, name = found[chunk_id]
            hits.append(
                ChunkHit(chunk_id, chunk.document_id, name, chunk.position, chunk.text, score)
            )
    return hits
