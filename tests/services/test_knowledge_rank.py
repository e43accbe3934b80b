"""Chunk ranking in the platform's shape: the largest-continent example puts the Asia
chunk first with a reranking model, by embedding similarity and by BM25; top_k is kept."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from studio.core.errors import ConflictError, PermissionDeniedError
from studio.core.identity import Actor, acting_as
from studio.services.chunk_rank import parse_strategy, rank_chunks

QUERY = "What's the name of the largest continent?"
CHUNKS = [
    "I like to have milk with cereals for breakfast.",
    "The largest continent is called Asia.",
    "The largest country is called Ibiza.",
    "Asia has the highest population.",
]


def test_the_platform_example_with_a_reranking_model(
    session: Session, mock_provider: object
) -> None:
    ranked = rank_chunks(
        query=QUERY,
        relevant_chunks=CHUNKS,
        rank_strategy={"method": "model", "params": {"model_id": "mock/rerank"}},
        top_k=3,
    )
    assert ranked[0].chunk == "The largest continent is called Asia."
    assert len(ranked) == 3 and ranked[0].index == 1
    assert [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)


def test_the_platform_example_with_the_built_in_reranker(session: Session) -> None:
    ranked = rank_chunks(
        query=QUERY,
        relevant_chunks=CHUNKS,
        rank_strategy="builtin/all-minilm-l6-v2-rerank",
        top_k=2,
    )
    assert ranked[0].chunk == "The largest continent is called Asia."
    assert len(ranked) == 2


@pytest.mark.parametrize("strategy", ["embedding", "bm25"])
def test_embedding_and_bm25_strategies(session: Session, strategy: str) -> None:
    ranked = rank_chunks(query=QUERY, relevant_chunks=CHUNKS, rank_strategy=strategy, top_k=1)
    assert [r.chunk for r in ranked] == ["The largest continent is called Asia."]


def test_a_chat_model_is_not_a_rank_strategy(session: Session) -> None:
    with pytest.raises(ConflictError, match="not a RERANKING model"):
        rank_chunks(
            query=QUERY,
            relevant_chunks=CHUNKS,
            rank_strategy="builtin/smollm2-135m-instruct",
        )
    with pytest.raises(ConflictError, match=r"needs params\.model_id"):
        parse_strategy({"method": "model"})


def test_a_reviewer_may_not_rank_chunks(session: Session) -> None:
    rex = Actor(kind="user", name="rex", role="reviewer", user_id=9)
    with acting_as(rex), pytest.raises(PermissionDeniedError):
        rank_chunks(query=QUERY, relevant_chunks=CHUNKS, rank_strategy="bm25")
