"""How fast knowledge bases ingest and answer, beside baselines measured in the same run.

    python bench/bench_knowledge.py            # an aligned table
    python bench/bench_knowledge.py --json     # the same figures as JSON

* Ingestion: chunks/s of :func:`~studio.services.knowledge.ingest_files` (parse, chunk,
  store, embed through the model layer with the built-in MiniLM, write float32 vectors)
  beside sentence-transformers encoding the same chunks directly (target >= 0.9 of it),
  measured before and after (the better of the two is the baseline: the machine may be
  shared).
* Query: p50 latency of one top-10 search over 100,000 vectors of 384 dimensions with the
  exact index (target <= 25 ms) and the HNSW index (target <= 5 ms, recall@10 >= 0.95
  against exact), beside a plain numpy product and full sort. The vectors are
  embedding-like (2,000 clusters with noise); uniform random vectors are reported too,
  as the hard case for any graph index. HNSW's build time is what the first query of a
  process pays (the index is then cached), so it decides APPROXIMATE_ABOVE.
* Peak memory (maximum resident set size) of the process.

Figures only: nothing here asserts a speed. A throwaway SQLite database is used.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/bench_knowledge.py`
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ["STUDIO_HOME"] = tempfile.mkdtemp(prefix="bench-knowledge-")
os.environ.pop("DATABASE_URL", None)

import numpy as np

from bench.common import Row, report

TOPICS = ["invoices", "refunds", "tickets", "macros", "triggers", "backups", "phone calls"]


def chunk_texts(n: int) -> list[str]:
    """``n`` distinct handbook-like paragraphs of about 200 characters."""
    return [
        f"Paragraph {i}: the {TOPICS[i % len(TOPICS)]} settings of workspace {i % 97} "
        f"are changed under Settings, and an administrator approves each change within "
        f"{i % 13 + 1} business days; agents see the result in their inbox view {i}."
        for i in range(n)
    ]


def bench_ingestion(n: int) -> list[Row]:
    from sentence_transformers import SentenceTransformer

    from studio.providers.builtin import minilm_dir
    from studio.services.apps import create_app
    from studio.services.knowledge import create_knowledge_base, ingest_files
    from studio.services.knowledge_parse import ChunkingOptions
    from studio.store import session_scope

    texts = chunk_texts(n)
    model = SentenceTransformer(str(minilm_dir()), device="cpu")
    model.encode(texts[:64], batch_size=64)  # warm

    def encode_directly() -> float:
        started = time.perf_counter()
        model.encode(texts, batch_size=64)
        return n / (time.perf_counter() - started)

    direct = encode_directly()

    with session_scope() as session:
        app = create_app(session=session, name="Bench")
        assert app.id is not None
        kb = create_knowledge_base(
            session=session, app_id=app.id, name="warm",
            chunking=ChunkingOptions(method="paragraphs", size=400, overlap=0),
        )  # fmt: skip
        warm_id = kb.id
        kb = create_knowledge_base(
            session=session, app_id=app.id, name="bench",
            chunking=ChunkingOptions(method="paragraphs", size=400, overlap=0),
        )  # fmt: skip
        kb_id = kb.id
    assert warm_id is not None and kb_id is not None
    ingest_files(kb_id=warm_id, files=[("warm.md", "\n\n".join(texts[:64]).encode())])
    data = "\n\n".join(texts).encode()
    started = time.perf_counter()
    ingest_files(kb_id=kb_id, files=[("handbook.md", data)])
    studio = n / (time.perf_counter() - started)
    direct = max(direct, encode_directly())  # before and after: the better is the baseline
    return [
        Row("ingestion: sentence-transformers directly", direct, "chunks/s", f"{n} chunks"),
        Row(
            "ingestion: knowledge base (parse, store, embed, write)", studio, "chunks/s",
            f"{studio / direct:.2f} of direct", ">= 0.9 of direct",
        ),
    ]  # fmt: skip


def _p50_ms(search: object, queries: np.ndarray) -> float:
    times = []
    for q in queries:
        started = time.perf_counter()
        search(q)  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def bench_query(n: int, dim: int, queries: int) -> list[Row]:
    from studio.models.vector_index import ExactIndex, HnswIndex

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((2000, dim)).astype(np.float32)
    noise = 0.6 * rng.standard_normal((n, dim)).astype(np.float32)
    matrix = (centres[rng.integers(0, 2000, n)] + noise).astype(np.float32)
    ids = np.arange(n, dtype=np.int64)
    picked = centres[rng.integers(0, 2000, queries)]
    qs = (picked + 0.6 * rng.standard_normal((queries, dim))).astype(np.float32)

    unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    baseline = _p50_ms(lambda q: np.argsort(-(unit @ q))[:10], qs)
    exact = ExactIndex(ids, matrix)
    exact_ms = _p50_ms(lambda q: exact.search(q, 10), qs)
    started = time.perf_counter()
    approx = HnswIndex(ids, matrix)
    build_s = time.perf_counter() - started
    approx_ms = _p50_ms(lambda q: approx.search(q, 10), qs)

    def recall(index: HnswIndex, reference: ExactIndex, qs: np.ndarray) -> float:
        found = [
            len({i for i, _ in reference.search(q, 10)} & {i for i, _ in index.search(q, 10)})
            for q in qs
        ]
        return sum(found) / (10 * len(qs))

    rows = [
        Row("query p50: numpy product + full sort", baseline, "ms", f"{n:,} x {dim}"),
        Row("query p50: exact index", exact_ms, "ms", "top 10", "<= 25 ms"),
        Row("query p50: HNSW index", approx_ms, "ms", "top 10", "<= 5 ms"),
        Row("HNSW recall@10 vs exact", recall(approx, exact, qs), "", "clustered", ">= 0.95"),
        Row("HNSW build (first query of a process)", build_s, "s", f"{n:,} vectors"),
    ]
    small = min(n, 20_000)
    random = rng.standard_normal((small, dim)).astype(np.float32)
    r_ids = np.arange(small, dtype=np.int64)
    r_qs = rng.standard_normal((queries, dim)).astype(np.float32)
    rows.append(
        Row(
            "HNSW recall@10 vs exact, uniform random", recall(HnswIndex(r_ids, random),
            ExactIndex(r_ids, random), r_qs), "", f"{small:,} x {dim}, the hard case",
        )
    )  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--chunks", type=int, default=1500, help="chunks to ingest")
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    rows = bench_ingestion(args.chunks)
    rows += bench_query(args.vectors, 384, args.queries)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows.append(Row("peak memory (max RSS)", peak, "MiB"))
    report("Knowledge bases", rows, args.json)


if __name__ == "__main__":
    main()
