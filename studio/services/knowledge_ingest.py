"""Embedding a knowledge base's chunks, resumably, and changing its embedding model.

:func:`embed_pending` embeds the chunks that have no vector by the base's embedding model
yet, in batches through the model layer (:func:`~studio.models.registry.aexecute`: its
retries, connection limits and usage records), at most ``concurrency`` batches at a time.
Each batch's vectors are written as soon as it answers, in a short transaction of its
own; no session is held while a model answers. A vector's key is (chunk, model), so a
crash or a SIGKILL loses only the batches in flight: running it again embeds exactly the
chunks still without a vector, and none twice.

:func:`set_embedding_model` changes the model new vectors are made with; queries keep
using the old model's vectors (``serving_model``) until :func:`embed_pending` has
embedded every chunk with the new one, which then serves, and the old vectors are deleted.

Rules: both need access to the knowledge base's app and the admin or member role
(:func:`~studio.services.knowledge.get_knowledge_base`); job workers may do both.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass

import anyio.to_thread
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, func, select

from studio.core.identity import acting_as, current_actor
from studio.models import registry
from studio.models.vector_index import to_bytes
from studio.services.knowledge import _require_embedding, get_knowledge_base, touch
from studio.services.members import require_member_role
from studio.store import audit, session_scope
from studio.store.tables import ChunkVector, KnowledgeBase, KnowledgeChunk

__all__ = ["IngestProgress", "embed_pending", "pending_count", "set_embedding_model"]

BATCH_SIZE = 64
CONCURRENCY = 4


@dataclass(frozen=True)
class IngestProgress:
    """Chunks embedded by the base's embedding model, of all its chunks."""

    embedded: int
    total: int
    model: str
    serving_model: str

    @property
    def complete(self) -> bool:
        return self.embedded >= self.total


def _counts(session: Session, kb: KnowledgeBase) -> tuple[int, int]:
    total = session.exec(select(func.count()).where(KnowledgeChunk.kb_id == kb.id)).one()
    done = session.exec(
        select(func.count()).where(
            ChunkVector.kb_id == kb.id,
            ChunkVector.model == kb.embedding_model,
        )
    ).one()
    return int(done), int(total)


def pending_count(*, session: Session, kb_id: int) -> IngestProgress:
    """How far the embedding of knowledge base ``kb_id`` has come."""
    kb = get_knowledge_base(session=session, ref=kb_id)
    done, total = _counts(session, kb)
    return IngestProgress(done, total, kb.embedding_model, kb.serving_model)


def set_embedding_model(*, session: Session, kb_id: int, model: str) -> KnowledgeBase:
    """Make new vectors with ``model``; the old ones serve until the new are complete."""
    kb = get_knowledge_base(session=session, ref=kb_id, action="change")
    require_member_role("change knowledge bases")
    ref = _require_embedding(session, model)
    if ref != kb.embedding_model:
        audit.record(
            session,
            action="update",
            target_kind="knowledge_base",
            target_id=kb.id,
            target_name=kb.name,
            details={"embedding_model": ref, "was": kb.embedding_model},
        )
        kb.embedding_model = ref
        touch(session, kb)
        session.flush()
    return kb


def _pending(kb_id: int) -> tuple[str, list[tuple[int, str]]]:
    with session_scope() as session:
        kb = get_knowledge_base(session=session, ref=kb_id, action="embed")
        require_member_role("embed knowledge bases")
        done = select(ChunkVector.chunk_id).where(
            ChunkVector.kb_id == kb_id, ChunkVector.model == kb.embedding_model
        )
        stmt = (
            select(KnowledgeChunk.id, KnowledgeChunk.text)
            .where(KnowledgeChunk.kb_id == kb_id, col(KnowledgeChunk.id).not_in(done))
            .order_by(col(KnowledgeChunk.id))
        )
        return kb.embedding_model, [(int(i or 0), t) for i, t in session.exec(stmt).all()]


def _write(kb_id: int, model: str, batch: list[tuple[int, str]], vectors: list[list[float]]) -> int:
    """Store one batch's vectors; chunks deleted meanwhile, or embedded by another
    process, are skipped. Returns how many were stored."""
    ids = [i for i, _t in batch]
    with session_scope() as session:
        alive = set(
            session.exec(select(KnowledgeChunk.id).where(col(KnowledgeChunk.id).in_(ids))).all()
        )
        have = set(
            session.exec(
                select(ChunkVector.chunk_id).where(
                    col(ChunkVector.chunk_id).in_(ids), ChunkVector.model == model
                )
            ).all()
        )
        rows = [
            ChunkVector(chunk_id=i, model=model, kb_id=kb_id, dim=len(v), vector=to_bytes(v))
            for (i, _t), v in zip(batch, vectors, strict=True)
            if i in alive and i not in have
        ]
        session.add_all(rows)
        try:
            session.flush()
        except IntegrityError:  # another process stored some of them first: theirs stand
            session.rollback()
            return 0
        return len(rows)


def _finish(kb_id: int) -> IngestProgress:
    """When every chunk has a vector by the embedding model, it serves queries and the
    other models' vectors are deleted."""
    with session_scope() as session:
        kb = get_knowledge_base(session=session, ref=kb_id, action="embed")
        done, total = _counts(session, kb)
        if done >= total and kb.serving_model != kb.embedding_model:
            session.exec(
                delete(ChunkVector).where(
                    col(ChunkVector.kb_id) == kb_id, col(ChunkVector.model) != kb.embedding_model
                )
            )
            kb.serving_model = kb.embedding_model
        touch(session, kb)
        return IngestProgress(done, total, kb.embedding_model, kb.serving_model)


async def aembed_pending(
    *,
    kb_id: int,
    batch_size: int = BATCH_SIZE,
    concurrency: int = CONCURRENCY,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> IngestProgress:
    """:func:`embed_pending` on the caller's event loop; once ``cancel`` is set no new
    batch is sent (the batches in flight are still stored)."""
    model, pending = await anyio.to_thread.run_sync(_pending, kb_id)
    with session_scope() as session:
        kb = get_knowledge_base(session=session, ref=kb_id)
        already, total = _counts(session, kb)
    done = already
    if progress is not None:
        progress(done, total)
    gate = asyncio.Semaphore(max(1, concurrency))
    actor = current_actor()

    async def one(batch: list[tuple[int, str]]) -> None:
        nonlocal done
        async with gate:
            if cancel is not None and cancel.is_set():
                return
            with acting_as(actor):
                response = await registry.aexecute(
                    ref=model, payload={"texts": [t for _i, t in batch]}, source="knowledge"
                )
            data = response.model_dump(mode="json")
            vectors = [list(v) for _t, v in data["embeddings"]]
            await anyio.to_thread.run_sync(_write, kb_id, model, batch, vectors)
        done += len(batch)
        if progress is not None:
            progress(min(done, total), total)

    size = max(1, batch_size)
    batches = [pending[i : i + size] for i in range(0, len(pending), size)]
    tasks = [asyncio.create_task(one(b)) for b in batches]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
    return await anyio.to_thread.run_sync(_finish, kb_id)


def embed_pending(
    *,
    kb_id: int,
    batch_size: int = BATCH_SIZE,
    concurrency: int = CONCURRENCY,
    progress: Callable[[int, int], None] | None = None,
) -> IngestProgress:
    """Embed every chunk of ``kb_id`` without a vector by its embedding model (see the
    module docstring); ``progress(done, total)`` after each batch."""
    return asyncio.run(
        aembed_pending(
            kb_id=kb_id, batch_size=batch_size, concurrency=concurrency, progress=progress
        )
    )
