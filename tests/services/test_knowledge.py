"""Knowledge bases: hash versioning, replacing and deleting documents, bad files that
touch nothing, search against a brute-force computation, a changed embedding model, and
who may read a knowledge base."""

from __future__ import annotations

import numpy as np
import pytest
from sqlmodel import Session, func, select

from studio.core.errors import ConflictError, NotFoundError, PermissionDeniedError
from studio.core.identity import acting_as
from studio.services import knowledge as kb_service
from studio.services import knowledge_search
from studio.services.apps import create_app
from studio.services.knowledge_ingest import embed_pending, pending_count, set_embedding_model
from studio.services.knowledge_parse import ChunkingOptions, DocumentError
from studio.services.members import add_member
from studio.services.users import actor_for_user, create_user
from studio.store import session_scope
from studio.store.tables import ChunkVector, KnowledgeChunk
from tests.services.knowledge_files import WordsProvider, add_words_connection, words_vector

PLANS = b"Starter costs 12 euros.\n\nGrowth costs 29 euros and adds phone support.\n"
REFUNDS = b"Yearly plans are refunded within 30 days.\n\nMonthly plans are not refunded.\n"
DATA = b"Customer data is stored in Frankfurt.\n\nBackups are kept for 35 days.\n"
SMALL = ChunkingOptions(method="paragraphs", size=200, overlap=0)


@pytest.fixture
def words(session: Session) -> str:
    WordsProvider.asked.clear()
    WordsProvider.delay_s = 0.0
    return add_words_connection(session)


def _kb(session: Session, model: str, app: str = "Help") -> int:
    found = create_app(session=session, name=app)
    assert found.id is not None
    kb = kb_service.create_knowledge_base(
        session=session, app_id=found.id, name="handbook", embedding_model=model, chunking=SMALL
    )
    session.commit()
    assert kb.id is not None
    return kb.id


def _ingest(kb_id: int, *files: tuple[str, bytes]) -> list[object]:
    return list(kb_service.ingest_files(kb_id=kb_id, files=list(files)))


def _texts(kb_id: int) -> list[str]:
    with session_scope() as s:
        stmt = select(KnowledgeChunk.text).where(KnowledgeChunk.kb_id == kb_id)
        return sorted(s.exec(stmt).all())


def _vectors(kb_id: int) -> int:
    with session_scope() as s:
        return int(s.exec(select(func.count()).where(ChunkVector.kb_id == kb_id)).one())


def test_the_same_file_again_is_a_no_op_and_a_changed_one_replaces_its_chunks(
    session: Session, words: str
) -> None:
    kb_id = _kb(session, words)
    (first,) = _ingest(kb_id, ("plans.md", PLANS))
    assert isinstance(first, kb_service.DocumentResult) and first.outcome == "added"
    assert WordsProvider.asked["Starter costs 12 euros."] == 1
    with session_scope() as s:
        before = s.exec(select(KnowledgeChunk.id).where(KnowledgeChunk.kb_id == kb_id)).all()

    (again,) = _ingest(kb_id, ("plans.md", PLANS))
    assert isinstance(again, kb_service.DocumentResult) and again.outcome == "unchanged"
    with session_scope() as s:
        after = s.exec(select(KnowledgeChunk.id).where(KnowledgeChunk.kb_id == kb_id)).all()
    assert sorted(after) == sorted(before)
    assert WordsProvider.asked["Starter costs 12 euros."] == 1  # not embedded again

    changed = PLANS.replace(b"12 euros", b"15 euros")
    (replaced,) = _ingest(kb_id, ("plans.md", changed))
    assert isinstance(replaced, kb_service.DocumentResult)
    assert (replaced.outcome, replaced.document.version) == ("replaced", 2)
    assert _texts(kb_id) == [
        "Growth costs 29 euros and adds phone support.",
        "Starter costs 15 euros.",
    ]
    assert _vectors(kb_id) == 2  # the old chunks' vectors went with them


def test_a_bad_file_is_refused_and_nothing_else_is_touched(session: Session, words: str) -> None:
    kb_id = _kb(session, words)
    _ingest(kb_id, ("plans.md", PLANS), ("data.md", DATA))
    results = _ingest(
        kb_id, ("refunds.md", REFUNDS), ("data.md", b"\x00\x01binary"), ("empty.txt", b"")
    )
    assert isinstance(results[0], kb_service.DocumentResult)
    assert "'data.md' looks like a binary file" in str(results[1])
    assert isinstance(results[1], DocumentError) and isinstance(results[2], DocumentError)
    assert "'empty.txt' is empty" in str(results[2])
    assert "Customer data is stored in Frankfurt." in _texts(kb_id)  # the old data.md stays
    with session_scope() as s:
        names = [d.name for d in kb_service.list_documents(session=s, kb_id=kb_id)]
    assert names == ["data.md", "plans.md", "refunds.md"]
    assert _vectors(kb_id) == 6


def test_deleting_a_document_deletes_its_chunks_and_vectors(session: Session, words: str) -> None:
    kb_id = _kb(session, words)
    _ingest(kb_id, ("plans.md", PLANS), ("data.md", DATA))
    with session_scope() as s:
        hits = knowledge_search.search(
            session=s, kb_id=kb_id, query="where is data stored?", top_k=1
        )
        assert hits[0].document == "data.md"
    with session_scope() as s:
        kb_service.delete_document(session=s, kb_id=kb_id, document="data.md")
    assert _texts(kb_id) == [
        "Growth costs 29 euros and adds phone support.",
        "Starter costs 12 euros.",
    ]
    assert _vectors(kb_id) == 2
    with session_scope() as s:  # the loaded index was dropped: no deleted chunk comes back
        hits = knowledge_search.search(
            session=s, kb_id=kb_id, query="where is data stored?", top_k=5
        )
    assert {h.document for h in hits} == {"plans.md"}


def test_search_ranks_like_a_brute_force_cosine_and_filters_by_document(
    session: Session, words: str
) -> None:
    kb_id = _kb(session, words)
    _ingest(kb_id, ("plans.md", PLANS), ("refunds.md", REFUNDS), ("data.md", DATA))
    query = "are monthly plans refunded"
    with session_scope() as s:
        hits = knowledge_search.search(session=s, kb_id=kb_id, query=query, top_k=6)
        chunks = s.exec(select(KnowledgeChunk).where(KnowledgeChunk.kb_id == kb_id)).all()
    q = np.array(words_vector(query))

    def cosine(text: str) -> float:
        v = np.array(words_vector(text))
        return float(np.dot(q, v) / np.linalg.norm(q) / np.linalg.norm(v))

    expected = sorted(((cosine(c.text), c.text) for c in chunks), key=lambda p: -p[0])
    assert [h.text for h in hits][:2] == [t for _s, t in expected][:2]
    assert [round(h.score, 5) for h in hits] == [round(s, 5) for s, _t in expected]
    assert hits[0].text == "Monthly plans are not refunded." and hits[0].document == "refunds.md"

    with session_scope() as s:
        only = knowledge_search.search(
            session=s, kb_id=kb_id, query=query, top_k=3, documents=["plans.md"]
        )
        hybrid = knowledge_search.search(session=s, kb_id=kb_id, query=query, top_k=2, hybrid=True)
    assert {h.document for h in only} == {"plans.md"} and len(only) == 2
    assert hybrid[0].text == "Monthly plans are not refunded." and len(hybrid) == 2


def test_a_new_embedding_model_re_embeds_and_the_old_vectors_serve_until_then(
    session: Session, words: str
) -> None:
    kb_id = _kb(session, words)
    _ingest(kb_id, ("plans.md", PLANS), ("data.md", DATA))
    other = add_words_connection(session, name="words2")
    with session_scope() as s:
        set_embedding_model(session=s, kb_id=kb_id, model=other)
    with session_scope() as s:
        progress = pending_count(session=s, kb_id=kb_id)
        assert (progress.embedded, progress.total, progress.serving_model) == (0, 4, words)
        hits = knowledge_search.search(session=s, kb_id=kb_id, query="backups kept", top_k=1)
    assert hits[0].text == "Backups are kept for 35 days."  # served by the old vectors

    done = embed_pending(kb_id=kb_id)
    assert (done.embedded, done.total, done.serving_model) == (4, 4, other)
    with session_scope() as s:
        models = set(s.exec(select(ChunkVector.model).where(ChunkVector.kb_id == kb_id)).all())
        hits = knowledge_search.search(session=s, kb_id=kb_id, query="backups kept", top_k=1)
    assert models == {other}
    assert hits[0].text == "Backups are kept for 35 days."


def test_a_chat_model_is_refused_as_embedding_model(session: Session) -> None:
    app = create_app(session=session, name="Help")
    assert app.id is not None
    with pytest.raises(ConflictError, match="needs an EMBEDDING model"):
        kb_service.create_knowledge_base(
            session=session,
            app_id=app.id,
            name="kb",
            embedding_model="builtin/smollm2-135m-instruct",
        )


def test_another_apps_member_cannot_read_a_knowledge_base(session: Session, words: str) -> None:
    kb_id = _kb(session, words, app="Mine")
    create_app(session=session, name="Theirs")
    mia = create_user(session=session, name="mia", password="correct horse battery")
    rex = create_user(
        session=session, name="rex", password="correct horse battery", role="reviewer"
    )
    add_member(session=session, app="Theirs", user="mia")
    session.commit()
    _ingest(kb_id, ("plans.md", PLANS))
    with acting_as(actor_for_user(mia)), session_scope() as s:
        assert kb_service.list_knowledge_bases(session=s) == []
        with pytest.raises(NotFoundError, match="belongs to an app you are not a member of"):
            knowledge_search.search(session=s, kb_id=kb_id, query="growth", top_k=1)
        with pytest.raises(NotFoundError):
            kb_service.delete_document(session=s, kb_id=kb_id, document="plans.md")
    with (
        acting_as(actor_for_user(rex)),
        session_scope() as s,
        pytest.raises(PermissionDeniedError, match="Reviewers cannot"),
    ):
        kb_service.list_knowledge_bases(session=s)
    add_member(session=session, app="Mine", user="mia")
    session.commit()
    with acting_as(actor_for_user(mia)), session_scope() as s:
        hits = knowledge_search.search(session=s, kb_id=kb_id, query="growth phone", top_k=1)
        assert hits[0].document == "plans.md"


def test_an_empty_knowledge_base_answers_no_chunks_and_a_deleted_one_is_gone(
    session: Session, words: str
) -> None:
    kb_id = _kb(session, words)
    with session_scope() as s:
        assert knowledge_search.search(session=s, kb_id=kb_id, query="anything") == []
    _ingest(kb_id, ("plans.md", PLANS))
    with session_scope() as s:
        kb_service.delete_knowledge_base(session=s, kb_id=kb_id)
    with session_scope() as s, pytest.raises(NotFoundError, match=f"No knowledge base '{kb_id}'"):
        knowledge_search.search(session=s, kb_id=kb_id, query="growth")
    assert _texts(kb_id) == [] and _vectors(kb_id) == 0
