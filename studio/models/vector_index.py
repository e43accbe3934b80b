"""Vector search behind one small interface, plus BM25 and reciprocal rank fusion.

An index holds chunk ids and their vectors and answers :meth:`VectorIndex.search`:
the ``k`` nearest by cosine similarity, optionally among ``allowed`` ids only (a filter
by document). :class:`ExactIndex` (a float32 matrix, one matrix product per query) is
the default and the reference; :class:`HnswIndex` (``faiss-cpu`` HNSW graph over unit
vectors, inner product) answers approximately and is what :func:`build_index` picks
above :data:`APPROXIMATE_ABOVE` vectors (bench/bench_knowledge.py measures both).
A filtered query on an approximate index is answered exactly over the allowed rows:
filters name a few documents, whose rows are few.

Rules: none (pure computation over vectors the caller was allowed to read).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

__all__ = [
    "APPROXIMATE_ABOVE",
    "ExactIndex",
    "HnswIndex",
    "VectorIndex",
    "bm25_scores",
    "build_index",
    "from_bytes",
    "reciprocal_rank_fusion",
    "to_bytes",
]

# Measured by bench/bench_knowledge.py on 2 CPUs: over 100,000 x 384 vectors the exact
# index answers in 8-22 ms (p50), HNSW in 0.6 ms with recall@10 1.00 on clustered vectors,
# but building the graph takes about a minute (paid by the first query of a process).
# Below this size exact search is fast enough and needs no build. M=32: with M=16 the
# recall@10 on uniform random vectors (20,000 x 64) fell from 0.97 to 0.87.
APPROXIMATE_ABOVE = 100_000
Floats = npt.NDArray[np.float32]
Ids = npt.NDArray[np.int64]


def to_bytes(vector: list[float] | Floats) -> bytes:
    """A vector as float32 bytes (what the database stores)."""
    return np.asarray(vector, dtype=np.float32).tobytes()


def from_bytes(data: bytes) -> Floats:
    return np.frombuffer(data, dtype=np.float32)


def _unit(matrix: Floats) -> Floats:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(matrix / norms, dtype=np.float32)


class VectorIndex(Protocol):
    """The k nearest chunk ids by cosine similarity, best first, with their scores."""

    ids: Ids

    def search(
        self, query: Floats, k: int, allowed: set[int] | None = None
    ) -> list[tuple[int, float]]: ...


class ExactIndex:
    """Exact cosine search: unit rows in a float32 matrix, one product per query."""

    def __init__(self, ids: Ids, matrix: Floats) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        rows = np.asarray(matrix, dtype=np.float32)
        self.matrix = _unit(rows if rows.ndim == 2 else rows.reshape(len(self.ids), -1))

    def search(
        self, query: Floats, k: int, allowed: set[int] | None = None
    ) -> list[tuple[int, float]]:
        if len(self.ids) == 0 or k <= 0:
            return []
        q = _unit(np.asarray(query, dtype=np.float32).reshape(1, -1))[0]
        if allowed is not None:
            rows = np.flatnonzero(np.isin(self.ids, np.fromiter(allowed, dtype=np.int64)))
            return _top(self.ids[rows], self.matrix[rows] @ q, k)
        return _top(self.ids, self.matrix @ q, k)


def _top(ids: Ids, scores: Floats, k: int) -> list[tuple[int, float]]:
    if len(ids) == 0:
        return []
    k = min(k, len(ids))
    part = np.argpartition(-scores, k - 1)[:k] if k < len(ids) else np.arange(len(ids))
    order = part[np.lexsort((ids[part], -scores[part]))]  # ties: lower id first
    return [(int(ids[i]), float(scores[i])) for i in order]


class HnswIndex:
    """Approximate cosine search: a ``faiss`` HNSW graph over unit vectors."""

    def __init__(self, ids: Ids, matrix: Floats, *, m: int = 32, ef_search: int = 128) -> None:
        import faiss

        self.exact = ExactIndex(ids, matrix)
        self.ids = self.exact.ids
        dim = self.exact.matrix.shape[1]
        self._index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
        self._index.hnsw.efConstruction = 64
        self._index.add(self.exact.matrix)
        self._index.hnsw.efSearch = ef_search

    def search(
        self, query: Floats, k: int, allowed: set[int] | None = None
    ) -> list[tuple[int, float]]:
        if allowed is not None or k <= 0 or len(self.ids) == 0:
            return self.exact.search(query, k, allowed)
        q = _unit(np.asarray(query, dtype=np.float32).reshape(1, -1))
        self._index.hnsw.efSearch = max(self._index.hnsw.efSearch, k)
        scores, rows = self._index.search(q, min(k, len(self.ids)))
        return [
            (int(self.ids[r]), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0
        ]


def build_index(
    ids: Ids, matrix: Floats, *, approximate_above: int = APPROXIMATE_ABOVE
) -> VectorIndex:
    """An exact index, or an HNSW one above ``approximate_above`` vectors."""
    if len(ids) > approximate_above:
        return HnswIndex(ids, matrix)
    return ExactIndex(ids, matrix)


def bm25_scores(query: str, texts: list[str]) -> list[float]:
    """BM25 (``bm25s``, English stop words) score of each text for ``query``, input order."""
    import bm25s

    if not texts:
        return []
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
    tokens = bm25s.tokenize([query], stopwords="en", return_ids=False, show_progress=False)[0]
    if not tokens:
        return [0.0] * len(texts)
    return [float(s) for s in retriever.get_scores(tokens)]


def reciprocal_rank_fusion(rankings: list[list[int]], *, k: int = 60) -> list[tuple[int, float]]:
    """Ids of several rankings (best first) fused by reciprocal rank: sum of 1/(k + rank)."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))
