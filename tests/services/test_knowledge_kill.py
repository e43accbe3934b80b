"""Killing an ingestion's process with SIGKILL and resuming it embeds every chunk exactly
once: the chunks embedded before the kill are not asked again, the others once each."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlmodel import Session, func, select

from studio.services.apps import create_app
from studio.services.knowledge import add_document, create_knowledge_base
from studio.services.knowledge_ingest import embed_pending
from studio.services.knowledge_parse import ChunkingOptions
from studio.store import session_scope
from studio.store.tables import ChunkVector, KnowledgeChunk
from tests.services.kill import kill_mid_work
from tests.services.knowledge_files import WordsProvider, add_words_connection

CHUNKS = 600
# The child acts as a job worker would, with the same slow bag-of-words provider.
CHILD = (
    "import sys; from studio.core.identity import WORKER, set_actor; set_actor(WORKER); "
    "from studio.providers import register; "
    "from tests.services.knowledge_files import WordsProvider; register(WordsProvider); "
    "WordsProvider.delay_s = 0.05; "
    "from studio.services.knowledge_ingest import embed_pending; "
    "embed_pending(kb_id=int(sys.argv[1]), batch_size=8, concurrency=2)"
)


def _embedded(kb_id: int) -> set[int]:
    with session_scope() as session:
        stmt = select(ChunkVector.chunk_id).where(ChunkVector.kb_id == kb_id)
        return set(session.exec(stmt).all())


def test_sigkill_mid_ingestion_then_resume_embeds_each_chunk_once(
    session: Session, studio_env: Path
) -> None:
    model = add_words_connection(session)
    app = create_app(session=session, name="Kill me")
    assert app.id is not None
    kb = create_knowledge_base(
        session=session,
        app_id=app.id,
        name="kb",
        embedding_model=model,
        chunking=ChunkingOptions(method="paragraphs", size=100, overlap=0),
    )
    assert kb.id is not None
    kb_id = kb.id
    text = "\n\n".join(f"Paragraph {i} is about topic number {i}." for i in range(CHUNKS))
    add_document(session=session, kb_id=kb_id, filename="topics.md", data=text.encode())
    session.commit()

    assert os.environ["STUDIO_HOME"] == str(studio_env)  # the child uses the same database
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(kb_id)],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    kill_mid_work(child, lambda: len(_embedded(kb_id)) >= 80, what="ingestion", timeout_s=60)

    before = _embedded(kb_id)
    assert 80 <= len(before) < CHUNKS, "the kill must land mid-ingestion"
    WordsProvider.asked.clear()
    WordsProvider.delay_s = 0.0

    progress = embed_pending(kb_id=kb_id)  # resume in this process

    assert (progress.embedded, progress.total) == (CHUNKS, CHUNKS)
    with session_scope() as s:
        chunks = dict(s.exec(select(KnowledgeChunk.id, KnowledgeChunk.text)).all())
        vectors = s.exec(select(func.count()).where(ChunkVector.kb_id == kb_id)).one()
    assert vectors == CHUNKS  # one vector per chunk
    missing = set(chunks) - before
    assert dict(WordsProvider.asked) == {chunks[i]: 1 for i in missing}
