"""The vector indexes: exact search equals a brute-force computation; the approximate
(HNSW) index finds nearly the same neighbours; BM25 and reciprocal rank fusion."""

from __future__ import annotations

import numpy as np

from studio.models.vector_index import (
    ExactIndex,
    HnswIndex,
    bm25_scores,
    build_index,
    reciprocal_rank_fusion,
)


def _data(n: int, dim: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return np.arange(100, 100 + n, dtype=np.int64), rng.standard_normal((n, dim)).astype(np.float32)


def test_exact_search_equals_brute_force_cosine() -> None:
    ids, matrix = _data(2000, 48)
    index = ExactIndex(ids, matrix)
    query = np.random.default_rng(1).standard_normal(48).astype(np.float32)
    cosine = matrix @ query / np.linalg.norm(matrix, axis=1) / np.linalg.norm(query)
    best = np.argsort(-cosine)[:10]
    found = index.search(query, 10)
    assert [i for i, _s in found] == [int(ids[b]) for b in best]
    assert np.allclose([s for _i, s in found], cosine[best], atol=1e-5)


def test_exact_search_keeps_to_the_allowed_ids() -> None:
    ids, matrix = _data(500, 16)
    allowed = {int(i) for i in ids[::7]}
    found = ExactIndex(ids, matrix).search(matrix[3], 20, allowed)
    assert len(found) == 20 and {i for i, _s in found} <= allowed


def test_hnsw_recall_at_10_against_exact_on_random_data() -> None:
    ids, matrix = _data(20_000, 64)
    queries = np.random.default_rng(2).standard_normal((50, 64)).astype(np.float32)
    exact, approx = ExactIndex(ids, matrix), HnswIndex(ids, matrix)
    recall = np.mean(
        [
            len({i for i, _ in exact.search(q, 10)} & {i for i, _ in approx.search(q, 10)}) / 10
            for q in queries
        ]
    )
    assert recall >= 0.9, recall


def test_build_index_goes_approximate_above_the_threshold() -> None:
    ids, matrix = _data(300, 8)
    assert isinstance(build_index(ids, matrix, approximate_above=1000), ExactIndex)
    assert isinstance(build_index(ids, matrix, approximate_above=100), HnswIndex)


def test_bm25_and_rank_fusion() -> None:
    scores = bm25_scores(
        "largest continent", ["Milk with cereals.", "The largest continent is Asia.", "Ibiza."]
    )
    assert scores[1] > 0 and scores[0] == scores[2] == 0
    fused = reciprocal_rank_fusion([[1, 2, 3], [3, 1]])
    assert [i for i, _s in fused] == [1, 3, 2]
