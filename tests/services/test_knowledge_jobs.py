"""Ingestion as a job: progress read from the database while another thread (or process)
works, per-file refusals, Cancel, and a SIGKILL mid-ingestion resumed by Retry with every
chunk embedded exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from studio.core.errors import ConflictError
from studio.core.settings import reset_settings
from studio.services import knowledge_ingest
from studio.services.apps import create_app
from studio.services.jobs import cancel_job, get_job, list_jobs, retry_job, wait_job
from studio.services.knowledge import create_knowledge_base, list_documents
from studio.services.knowledge_jobs import (
    enqueue_embedding,
    enqueue_ingestion,
    ingestion_view,
    latest_ingestion,
)
from studio.services.knowledge_parse import ChunkingOptions
from studio.store import session_scope
from studio.store.tables import ChunkVector, KnowledgeChunk
from tests.services.kill import kill_mid_work
from tests.services.knowledge_files import WordsProvider, add_words_connection
from tests.services.test_jobs_workers import queue_env, workers  # noqa: F401 (fixtures)

CHUNKS = 300


def _topics(n: int = CHUNKS) -> bytes:
    return "\n\n".join(f"Paragraph {i} is about topic number {i}." for i in range(n)).encode()


def _kb(session: Session) -> int:
    model = add_words_connection(session)
    app = create_app(session=session, name="Handbook")
    assert app.id is not None
    kb = create_knowledge_base(
        session=session,
        app_id=app.id,
        name="kb",
        embedding_model=model,
        chunking=ChunkingOptions(method="paragraphs", size=100, overlap=0),
    )
    session.commit()
    assert kb.id is not None
    return kb.id


def _vectors(kb_id: int) -> int:
    with session_scope() as session:
        return int(session.exec(select(func.count()).where(ChunkVector.kb_id == kb_id)).one())


def _wait_for(condition: object, what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"waited in vain for {what}"
        time.sleep(0.02)


@pytest.fixture(autouse=True)
def _words() -> None:
    WordsProvider.asked.clear()
    WordsProvider.delay_s = 0.0


def test_progress_is_read_from_the_database_while_a_thread_embeds(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(knowledge_ingest, "BATCH_SIZE", 8)  # many small batches, slowly
    monkeypatch.setattr(knowledge_ingest, "CONCURRENCY", 2)
    kb_id = _kb(session)
    WordsProvider.delay_s = 0.05

    job = enqueue_ingestion(
        kb_id=kb_id, files=[("topics.md", _topics()), ("broken.pdf", b"not a pdf at all")]
    )

    assert job.kind == "ingestion" and job.active
    _wait_for(lambda: get_job(job_id=job.id).done > 0, "the first vectors")
    mid = get_job(job_id=job.id)
    assert mid.active and 0 < mid.done < mid.total == CHUNKS  # counted from the database
    assert any(j.id == job.id for j in list_jobs())  # the Jobs page lists it
    with pytest.raises(ConflictError, match="already running"):
        enqueue_embedding(kb_id=kb_id)  # one ingestion per knowledge base at a time

    done = wait_job(job_id=job.id, timeout=60)

    assert (done.state, done.done, done.total, done.errors) == ("succeeded", CHUNKS, CHUNKS, 1)
    view = ingestion_view(job_id=job.id)
    outcomes = {f.name: f for f in view.files}
    assert outcomes["topics.md"].outcome == "added" and outcomes["topics.md"].chunks == CHUNKS
    refused = outcomes["broken.pdf"]
    assert refused.outcome == "refused" and refused.error and "'broken.pdf'" in refused.error
    with session_scope() as s:
        assert [d.name for d in list_documents(session=s, kb_id=kb_id)] == ["topics.md"]
    assert _vectors(kb_id) == CHUNKS
    assert latest_ingestion(kb_id=kb_id) == view  # a reloaded page finds the same job


def test_cancel_stops_embedding_and_retry_embeds_only_the_rest_once(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(knowledge_ingest, "BATCH_SIZE", 8)  # many batches: Cancel lands mid-way
    monkeypatch.setattr(knowledge_ingest, "CONCURRENCY", 2)
    kb_id = _kb(session)
    WordsProvider.delay_s = 0.1
    job = enqueue_ingestion(kb_id=kb_id, files=[("topics.md", _topics())])
    _wait_for(lambda: _vectors(kb_id) >= 40, "the first vectors")

    cancel_job(job_id=job.id)
    stopped = wait_job(job_id=job.id, timeout=60)

    assert stopped.state == "cancelled"
    kept = _vectors(kb_id)
    assert 40 <= kept < CHUNKS and stopped.done == kept  # embedded chunks stay
    WordsProvider.delay_s = 0.0

    again = wait_job(job_id=retry_job(job_id=job.id).id, timeout=60)

    assert (again.state, again.done, again.total) == ("succeeded", CHUNKS, CHUNKS)
    with session_scope() as s:
        texts = s.exec(select(KnowledgeChunk.text).where(KnowledgeChunk.kb_id == kb_id)).all()
    assert _vectors(kb_id) == CHUNKS
    assert set(WordsProvider.asked) == set(texts)
    assert max(WordsProvider.asked.values()) == 1  # no chunk embedded twice


# The child starts the ingestion job in its own process (as the studio UI would) and keeps
# the process alive while the job's thread works; the test kills it with SIGKILL.
CHILD = (
    "import sys, time; from studio.core.identity import OPERATOR, set_actor; "
    "set_actor(OPERATOR); "
    "from studio.providers import register; "
    "from tests.services.knowledge_files import WordsProvider; register(WordsProvider); "
    "WordsProvider.delay_s = 0.05; "
    "from studio.services.knowledge_jobs import enqueue_ingestion; "
    "enqueue_ingestion(kb_id=int(sys.argv[1]), files=[('topics.md', open(sys.argv[2], 'rb')"
    ".read())]); time.sleep(600)"
)


def test_sigkill_mid_ingestion_then_retry_embeds_each_chunk_once(
    session: Session, studio_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUDIO_WORKER_STALLED", "1")  # a silent job counts as stopped soon
    reset_settings()
    kb_id = _kb(session)
    source = tmp_path / "topics.md"
    source.write_bytes(_topics())
    assert os.environ["STUDIO_HOME"] == str(studio_env)  # the child uses the same database
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(kb_id), str(source)],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    kill_mid_work(child, lambda: _vectors(kb_id) >= 40, what="ingestion", timeout_s=60)
    with session_scope() as s:
        before = set(s.exec(select(ChunkVector.chunk_id)).all())
        chunks = dict(s.exec(select(KnowledgeChunk.id, KnowledgeChunk.text)).all())
    assert 40 <= len(before) < CHUNKS, "the kill must land mid-ingestion"
    view = latest_ingestion(kb_id=kb_id)
    assert view is not None
    _wait_for(lambda: get_job(job_id=view.job.id).state == "failed", "the job to look stopped")
    assert "Press Retry" in (get_job(job_id=view.job.id).error or "")

    resumed = wait_job(job_id=retry_job(job_id=view.job.id).id, timeout=60)

    assert (resumed.state, resumed.done, resumed.total) == ("succeeded", CHUNKS, CHUNKS)
    assert _vectors(kb_id) == CHUNKS  # one vector per chunk
    missing = set(chunks) - before
    assert dict(WordsProvider.asked) == {chunks[i]: 1 for i in missing}


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="studio workers share jobs through PostgreSQL",
)
def test_a_studio_worker_ingests_the_handbook_from_the_queue(
    session: Session,
    workers: Callable[[int], list[subprocess.Popen[bytes]]],  # noqa: F811 (the fixture)
) -> None:
    workers(1)
    app = create_app(session=session, name="Handbook on workers")
    assert app.id is not None
    kb = create_knowledge_base(session=session, app_id=app.id, name="kb")  # built-in MiniLM
    session.commit()
    assert kb.id is not None
    handbook = Path(__file__).resolve().parents[2] / "data" / "handbook"
    files = [(p.name, p.read_bytes()) for p in sorted(handbook.iterdir())]

    job = enqueue_ingestion(kb_id=kb.id, files=files)

    assert job.executor == "queue"  # not this process: a worker reads and embeds
    done = wait_job(job_id=job.id, timeout=180)
    assert (done.state, done.errors) == ("succeeded", 0), done.error
    assert done.done == done.total > 0 and _vectors(kb.id) == done.total
    view = ingestion_view(job_id=job.id)
    assert {f.outcome for f in view.files} == {"added"} and len(view.files) == len(files)
