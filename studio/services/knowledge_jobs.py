"""Ingestion as a job: reading uploaded files into a knowledge base and embedding its
chunks, off the page that asked for it.

:func:`enqueue_ingestion` stores the uploaded files on a job (kind ``ingestion``, its
subject the knowledge base) and hands it to the jobs' executor
(:mod:`studio.services.jobs`: a thread of this process, or ``studio worker`` processes
on PostgreSQL). Its one part (:func:`ingest_part`) reads each file in a transaction of
its own (a refused file is recorded with its sentence, the others go in), drops the
file's bytes from the job once read, then embeds every chunk still without a vector
(:func:`~studio.services.knowledge_ingest.aembed_pending`). :func:`enqueue_embedding`
is the same without files: after the embedding model changed, or to finish an
interrupted embedding.

Progress is read from the database (chunks with a vector by the base's embedding model,
of its chunks), so it survives a page reload and shows on the Jobs page; Cancel stops
new batches within a second; a retried job (after a crash) reads only the files not yet
read and embeds only the chunks still without a vector, none twice.

Rules: starting needs access to the knowledge base's app and the admin or member role
(:func:`~studio.services.knowledge.get_knowledge_base`); reading a job needs access to
its app (:func:`studio.services.jobs.get_job`).
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import anyio.to_thread
from pydantic import BaseModel
from sqlmodel import Session, col, func, select

from studio.core.errors import ConflictError, StudioError
from studio.services import jobs
from studio.services.job_parts import PartHandedBack, lock_job, settle
from studio.services.knowledge import add_document, get_knowledge_base
from studio.services.members import require_member_role
from studio.store import session_scope
from studio.store.tables import ChunkVector, Job, JobPart, KnowledgeBase, KnowledgeChunk

__all__ = [
    "MAX_UPLOAD_BYTES",
    "FileOutcome",
    "IngestionView",
    "embedding_counts",
    "enqueue_embedding",
    "enqueue_ingestion",
    "ingest_part",
    "ingestion_view",
    "latest_ingestion",
]

MAX_UPLOAD_BYTES = 50 * 1024 * 1024  # one upload's files together


class FileOutcome(BaseModel):
    """What became of one uploaded file: ``waiting`` (not read yet), ``added``,
    ``replaced``, ``unchanged`` or ``refused`` (with the sentence why)."""

    name: str
    outcome: str
    chunks: int = 0
    error: str | None = None
    hint: str | None = None


class IngestionView(BaseModel):
    """An ingestion job with its files: what a page shows while it works."""

    job: jobs.JobView
    kb_id: int
    files: list[FileOutcome]

    @property
    def reading(self) -> bool:
        """Still reading files (before the embedding starts)."""
        return self.job.active and any(f.outcome == "waiting" for f in self.files)

    @property
    def files_read(self) -> int:
        return sum(1 for f in self.files if f.outcome != "waiting")

    @property
    def refused(self) -> list[FileOutcome]:
        return [f for f in self.files if f.outcome == "refused"]


def embedding_counts(session: Session, kb_id: int) -> tuple[int, int] | None:
    """(chunks embedded by the base's embedding model, its chunks); None when the knowledge
    base is gone. No check: callers checked the job's app."""
    kb = session.get(KnowledgeBase, kb_id)
    if kb is None:
        return None
    total = session.exec(select(func.count()).where(KnowledgeChunk.kb_id == kb_id)).one()
    done = session.exec(
        select(func.count()).where(
            ChunkVector.kb_id == kb_id, ChunkVector.model == kb.embedding_model
        )
    ).one()
    return int(done), int(total)


def refused_count(params: dict[str, Any]) -> int:
    return sum(1 for r in params.get("results", []) if r.get("outcome") == "refused")


def _enqueue(kb_id: int, actor: str, files: list[dict[str, Any]]) -> jobs.JobView:
    with session_scope() as session:
        kb = get_knowledge_base(session=session, ref=kb_id, action="upload documents to")
        require_member_role("upload documents to knowledge bases")
        jobs._check_free(session, "ingestion", kb_id, f"Knowledge base '{kb.name}'")
        counts = embedding_counts(session, kb_id) or (0, 0)
        job = Job(
            kind="ingestion",
            subject_id=kb_id,
            app_id=kb.app_id,
            actor=actor,
            executor=jobs._executor(),
            total=counts[1],
            parts=1,
            params={"files": files, "results": []},
        )
        session.add(job)
        session.flush()
        assert job.id is not None
        session.add(JobPart(job_id=job.id, index=0, start=0, stop=0, lane=0, concurrency=1))
        job_id = job.id
    jobs._dispatch(job_id)
    return jobs.get_job(job_id=job_id)


def enqueue_ingestion(
    *,
    kb_id: int,
    files: Sequence[tuple[str, bytes]],
    text_column: str | None = None,
    text_columns: Mapping[str, str] | None = None,
    actor: str = "ui",
) -> jobs.JobView:
    """Read ``files`` (name, bytes) into knowledge base ``kb_id`` and embed them, as a job.
    ``text_column`` is the CSV column (JSON Lines field) holding the text; ``text_columns``
    names one per file (by file name) where they differ."""
    if not files:
        raise ConflictError("Choose at least one file to upload.", hint="Pick files first.")
    size = sum(len(data) for _name, data in files)
    if size > MAX_UPLOAD_BYTES:
        raise ConflictError(
            f"These files hold {size / 1e6:.1f} MB; one upload may hold at most "
            f"{MAX_UPLOAD_BYTES / 1e6:.0f} MB.",
            hint="Upload them in smaller groups.",
        )
    staged = [
        {
            "name": name,
            "data": base64.b64encode(data).decode("ascii"),
            "text_column": (text_columns or {}).get(name) or text_column or None,
        }
        for name, data in files
    ]
    return _enqueue(kb_id, actor, staged)


def enqueue_embedding(*, kb_id: int, actor: str = "ui") -> jobs.JobView:
    """Embed the chunks of ``kb_id`` still without a vector by its embedding model, as a
    job (after the model changed; the old vectors serve queries until it is done)."""
    return _enqueue(kb_id, actor, [])


def _view(session: Session, job: Job) -> IngestionView:
    view = jobs._checked_view(session, job)
    params = job.params or {}
    files = [FileOutcome(**r) for r in params.get("results", [])]
    files += [FileOutcome(name=f["name"], outcome="waiting") for f in params.get("files", [])]
    return IngestionView(job=view, kb_id=job.subject_id or 0, files=files)


def latest_ingestion(*, kb_id: int) -> IngestionView | None:
    """The latest ingestion job of a knowledge base (started by any process), or None."""
    with session_scope() as session:
        job = session.exec(
            select(Job)
            .where(Job.kind == "ingestion", Job.subject_id == kb_id)
            .order_by(col(Job.id).desc())
            .limit(1)
        ).first()
        return _view(session, job) if job is not None else None


def ingestion_view(*, job_id: int) -> IngestionView:
    jobs.get_job(job_id=job_id)  # not found, or not the caller's: the sentence says so
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return _view(session, job)


def _next_file(job_id: int) -> dict[str, Any] | None:
    with session_scope() as session:
        job = session.get(Job, job_id)
        files = (job.params or {}).get("files", []) if job is not None else []
        return dict(files[0]) if files else None


def _read_file(job_id: int, kb_id: int, staged: dict[str, Any]) -> None:
    """Add one staged file; record what became of it and drop its bytes from the job."""
    name = str(staged["name"])
    try:
        with session_scope() as session:
            result = add_document(
                session=session,
                kb_id=kb_id,
                filename=name,
                data=base64.b64decode(staged["data"]),
                text_column=staged.get("text_column"),
            )
        record: dict[str, Any] = {
            "name": name,
            "outcome": result.outcome,
            "chunks": result.chunks,
        }
    except StudioError as exc:
        if not _kb_alive(kb_id):
            raise
        record = {"name": name, "outcome": "refused", "error": exc.message, "hint": exc.hint}
    with session_scope() as session:
        job = lock_job(session, job_id)
        if job is None:
            return
        params = dict(job.params or {})
        params["files"] = list(params.get("files", []))[1:]
        params["results"] = [*params.get("results", []), record]
        job.params = params
        job.errors = refused_count(params)
        session.add(job)


def _kb_alive(kb_id: int) -> bool:
    with session_scope() as session:
        return session.get(KnowledgeBase, kb_id) is not None


def _end(job_id: int, index: int, state: str) -> None:
    """Keep the job's last figures (a finished job shows them, even once its knowledge
    base is gone), then end the part."""
    from studio.services.job_parts import _end as end_part

    with session_scope() as session:
        job = lock_job(session, job_id)
        counts = embedding_counts(session, job.subject_id or 0) if job is not None else None
        if job is not None and counts is not None:
            job.done, job.total = counts
            session.add(job)
    end_part(job_id, index, state)


async def ingest_part(
    *,
    job_id: int,
    index: int,
    kb_id: int,
    cancel: threading.Event,
    stopping: asyncio.Event | None,
) -> str:
    """The ingestion job's part: read the files left, embed the chunks left (see the
    module docstring); a worker stopping hands it back to the queue."""
    from studio.services import knowledge_ingest

    def handed_back() -> bool:
        return stopping is not None and stopping.is_set()

    while not cancel.is_set():
        staged = await anyio.to_thread.run_sync(_next_file, job_id)
        if staged is None:
            break
        await anyio.to_thread.run_sync(_read_file, job_id, kb_id, staged)
    if not cancel.is_set():
        await knowledge_ingest.aembed_pending(
            kb_id=kb_id,
            batch_size=knowledge_ingest.BATCH_SIZE,
            concurrency=knowledge_ingest.CONCURRENCY,
            cancel=cancel,
        )
    if handed_back():
        await asyncio.to_thread(_end, job_id, index, "queued")
        raise PartHandedBack(f"part {index} of job {job_id} goes back to the queue")
    state = "cancelled" if cancel.is_set() else "done"
    await asyncio.to_thread(_end, job_id, index, state)
    await asyncio.to_thread(settle, job_id)
    return state
