"""The knowledge routes: ``POST /api/v1/chunks/rank`` answers the platform's example (the
Asia chunk first) and honours top_k; ``POST /api/v1/knowledge-bases/{id}/query`` answers
chunks with scores and documents; another app's key and member do not find it."""

from __future__ import annotations

from sqlmodel import Session

from studio.services import api_keys
from studio.services.apps import create_app as create_studio_app
from studio.services.knowledge import add_document, create_knowledge_base
from studio.services.knowledge_ingest import embed_pending
from studio.services.knowledge_parse import ChunkingOptions
from tests.gateway.conftest import Deployed, person_token
from tests.services.knowledge_files import add_words_connection

QUERY = "What's the name of the largest continent?"
CHUNKS = [
    "I like to have milk with cereals for breakfast.",
    "The largest continent is called Asia.",
    "The largest country is called Ibiza.",
    "Asia has the highest population.",
]
HANDBOOK = (
    b"Starter costs 12 euros per agent.\n\nGrowth costs 29 euros and adds phone support.\n\n"
    b"Customer data is stored in Frankfurt.\n"
)


def make_knowledge_base(session: Session, app_id: int) -> int:
    """A knowledge base of app ``app_id`` with one embedded document (bag-of-words model)."""
    model = add_words_connection(session, name="kbwords")
    kb = create_knowledge_base(
        session=session, app_id=app_id, name="handbook", embedding_model=model,
        chunking=ChunkingOptions(method="paragraphs", size=200, overlap=0),
    )  # fmt: skip
    assert kb.id is not None
    add_document(session=session, kb_id=kb.id, filename="plans.md", data=HANDBOOK)
    session.commit()
    embed_pending(kb_id=kb.id)
    return kb.id


def _models_key(session: Session, app_id: int) -> dict[str, str]:
    secret = api_keys.create_key(session=session, app=app_id, name="raw", scopes="models").secret
    session.commit()
    return {"Authorization": f"Bearer {secret}"}


def test_chunk_rank_answers_the_platform_example_with_a_reranking_model(
    deployed: Deployed, session: Session
) -> None:
    headers = _models_key(session, deployed.app_id)
    body = {
        "query": QUERY,
        "relevant_chunks": CHUNKS,
        "rank_strategy": {"method": "model", "params": {"model_id": "mock/rerank"}},
        "top_k": 3,
    }
    r = deployed.client.post("/api/v1/chunks/rank", json=body, headers=headers)
    assert r.status_code == 200, r.text
    ranked = r.json()["relevant_chunks"]
    assert len(ranked) == 3
    assert ranked[0] == {"text": "The largest continent is called Asia.", "index": 1,
                         "score": ranked[0]["score"]}  # fmt: skip
    assert [c["score"] for c in ranked] == sorted((c["score"] for c in ranked), reverse=True)

    bm25 = deployed.client.post(
        "/api/v1/chunks/rank", headers=headers,
        json={"query": QUERY, "relevant_chunks": CHUNKS, "rank_strategy": "bm25", "top_k": 1},
    )  # fmt: skip
    assert [c["text"] for c in bm25.json()["relevant_chunks"]] == [CHUNKS[1]]


def test_chunk_rank_refuses_a_key_without_the_models_scope(deployed: Deployed) -> None:
    body = {"query": QUERY, "relevant_chunks": CHUNKS, "rank_strategy": "bm25"}
    r = deployed.client.post("/api/v1/chunks/rank", json=body, headers=deployed.headers)
    assert r.status_code == 403
    assert "lacks the 'models' scope" in r.json()["error"]["message"]


def test_a_knowledge_base_query_answers_chunks_scores_and_documents(
    deployed: Deployed, session: Session
) -> None:
    kb_id = make_knowledge_base(session, deployed.app_id)
    r = deployed.client.post(
        f"/api/v1/knowledge-bases/{kb_id}/query", headers=deployed.headers,
        json={"query": "where is customer data stored", "top_k": 2},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    chunks = r.json()["chunks"]
    assert len(chunks) == 2
    assert chunks[0]["text"] == "Customer data is stored in Frankfurt."
    assert chunks[0]["document"] == "plans.md" and chunks[0]["score"] > chunks[1]["score"]


def test_another_apps_key_and_member_do_not_find_the_knowledge_base(
    deployed: Deployed, session: Session
) -> None:
    kb_id = make_knowledge_base(session, deployed.app_id)
    other = create_studio_app(session=session, name="Other app")
    assert other.id is not None
    secret = api_keys.create_key(session=session, app=other.id, name="other").secret
    session.commit()
    _uid, token = person_token(session, "mia", "member", (other.id,))
    body = {"query": "growth"}
    for headers in ({"Authorization": f"Bearer {secret}"}, {"Authorization": f"Bearer {token}"}):
        r = deployed.client.post(
            f"/api/v1/knowledge-bases/{kb_id}/query", json=body, headers=headers
        )
        assert r.status_code == 404, r.text
        assert r.json()["error"]["message"] == f"No knowledge base {kb_id}."
