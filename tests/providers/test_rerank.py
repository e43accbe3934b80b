"""Rerank provider: Cohere-style and text-embeddings-inference servers."""

from __future__ import annotations

from typing import Any

import pytest

from studio.core.errors import (
    ConfigError,
    ProviderAuthError,
    ProviderRequestError,
    ProviderUnavailableError,
)
from studio.core.schemas import RerankingRequest
from studio.providers.rerank import RerankProvider

from .fakes import FakeAPI, reply

KEY = "jina_secret_key_123"
REQUEST = RerankingRequest(query="capital of France", chunks=["Berlin", "Paris", "Lyon"])


def provider(api: FakeAPI, api_key: str | None = None, **options: Any) -> RerankProvider:
    return RerankProvider(
        name="rr",
        base_url="http://rerank:8080",
        api_key=api_key,
        options={"retry_base_delay_s": 0, **options},
        transport=api.transport,
    )


async def test_sends_the_common_rerank_request() -> None:
    api = FakeAPI(reply({"results": [{"index": i, "relevance_score": 0.1} for i in range(3)]}))
    await provider(api).rerank("bge-reranker-v2-m3", REQUEST)
    assert api.requests[0].method == "POST"
    assert api.paths == ["/rerank"]
    assert api.json() == {
        "model": "bge-reranker-v2-m3",
        "query": "capital of France",
        "documents": ["Berlin", "Paris", "Lyon"],
        "top_n": 3,
    }
    assert "authorization" not in api.requests[0].headers


async def test_cohere_style_results_come_back_in_input_order() -> None:
    body = {
        "id": "r1",
        "results": [  # sorted by relevance, as servers do
            {"index": 1, "relevance_score": 0.98, "document": {"text": "Paris"}},
            {"index": 2, "relevance_score": 0.40},
            {"index": 0, "relevance_score": 0.02},
        ],
        "meta": {"billed_units": {"search_units": 1}, "tokens": {"input_tokens": 21}},
    }
    answer = await provider(FakeAPI(reply(body))).rerank("m", REQUEST)
    assert answer.chunk_scores == [0.02, 0.98, 0.40]
    assert answer.tokens_used == 21


async def test_usage_total_tokens_is_read() -> None:
    body = {
        "results": [{"index": i, "relevance_score": 0.5} for i in (2, 0, 1)],
        "usage": {"total_tokens": 33},
    }
    answer = await provider(FakeAPI(reply(body))).rerank("m", REQUEST)
    assert answer.tokens_used == 33


async def test_tei_bare_list_with_texts_field_and_custom_path() -> None:
    body = [{"index": 1, "score": 0.9}, {"index": 0, "score": 0.1}, {"index": 2, "score": 0.3}]
    api = FakeAPI(reply(body))
    conn = provider(api, path="/v1/rerank", documents_field="texts")
    answer = await conn.rerank("m", REQUEST)
    assert api.paths == ["/v1/rerank"]
    assert api.json()["texts"] == ["Berlin", "Paris", "Lyon"]
    assert "documents" not in api.json()
    assert answer.chunk_scores == [0.1, 0.9, 0.3]
    assert answer.tokens_used is None


@pytest.mark.parametrize(
    ("results", "problem"),
    [
        (
            [{"index": 0, "score": 0.1}, {"index": 2, "score": 0.3}],
            r"no score for chunk index\(es\) 1",
        ),
        ([{"index": 0, "score": 1}, {"index": 1, "score": 1}, {"index": 7, "score": 1}], "index 7"),
        (
            [{"index": 0, "score": 1}, {"index": 0, "score": 1}, {"index": 1, "score": 1}],
            "repeated",
        ),
        ([{"index": 0}], "has no score"),
        ([{"score": 0.5}], "index: required field is missing"),
    ],
)
async def test_incomplete_results_are_readable_errors(
    results: list[dict[str, Any]], problem: str
) -> None:
    with pytest.raises(ProviderUnavailableError, match=problem):
        await provider(FakeAPI(reply({"results": results}))).rerank("m", REQUEST)


async def test_wrong_shape_is_a_readable_error() -> None:
    with pytest.raises(ProviderUnavailableError, match="answered /rerank in an unexpected shape"):
        await provider(FakeAPI(reply({"scores": [0.1, 0.2, 0.3]}))).rerank("m", REQUEST)


async def test_error_message_of_the_server_is_shown() -> None:
    body = {"error": "Input validation error: `texts` cannot be empty", "error_type": "Validation"}
    api = FakeAPI(reply(body, status=422))
    with pytest.raises(ProviderRequestError, match="`texts` cannot be empty"):
        await provider(api).rerank("m", REQUEST)
    assert api.calls == 1


def test_a_base_url_is_required() -> None:
    with pytest.raises(ConfigError, match="needs a base URL"):
        RerankProvider(name="rr")


def test_path_must_start_with_a_slash() -> None:
    with pytest.raises(ConfigError, match="path"):
        RerankProvider(name="rr", base_url="http://x", options={"path": "rerank"})


async def test_bearer_key_is_sent_but_never_shown() -> None:
    body = {"detail": f"Invalid API key {KEY}"}
    api = FakeAPI(reply(body, status=401))
    conn = provider(api, api_key=KEY)
    assert KEY not in repr(conn)
    with pytest.raises(ProviderAuthError) as caught:
        await conn.rerank("m", REQUEST)
    assert api.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert "Invalid API key" in str(caught.value)
    assert KEY not in str(caught.value)
