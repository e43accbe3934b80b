"""How fast the built-in models run on this machine.

    python bench/bench_builtin.py            # an aligned table
    python bench/bench_builtin.py --json     # the same figures as JSON

Measures SmolLM2-135M (llama.cpp): load time, generation and prompt-processing
tokens/s; all-MiniLM-L6-v2 (sentence-transformers): load time, embeddings/s and
reranking chunks/s. Everything goes through :class:`BuiltinProvider`, the path
the studio takes. Figures only: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/bench_builtin.py`
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from bench.common import Row, report
from studio.core.schemas import (
    CompletionRequest,
    EmbeddingRequest,
    RerankingRequest,
)
from studio.providers.builtin import SMOLLM2_THREADS, BuiltinProvider
from studio.providers.local import clear_loaded_models, loaded_models

T = TypeVar("T")

GENERATION_PROMPTS = [
    "Write a short product description for a reusable water bottle.",
    "Explain in simple words why the sky is blue.",
    "List three ideas for a team-building event.",
    "Once upon a time, in a small village by the sea,",
]
SUBJECTS = ["The cat", "A new phone", "Our team", "The river", "This recipe", "My neighbour"]
VERBS = ["loves", "needs", "ignores", "improves", "explains", "finds"]
OBJECTS = ["fresh bread", "the quarterly report", "a quiet evening", "cold weather", "jazz"]


def sentences(n: int) -> list[str]:
    """``n`` distinct short sentences (about 8-12 tokens each)."""
    out = []
    for i in range(n):
        s, v, o = SUBJECTS[i % 6], VERBS[(i // 6) % 6], OBJECTS[(i // 36) % 5]
        out.append(f"{s} {v} {o} on day {i}.")
    return out


async def timed(make: Callable[[], Awaitable[T]], repeat: int = 1) -> tuple[T, float]:
    """The result and the median wall time over ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = await make()
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)


async def bench(max_tokens: int, n_sentences: int, n_chunks: int, repeat: int) -> list[Row]:
    clear_loaded_models()
    builtin = BuiltinProvider(name="builtin")
    rows: list[Row] = []

    # -- SmolLM2 -------------------------------------------------------------------------
    warm = CompletionRequest(prompts=["Hello"], temperature=0, max_tokens=1)
    _, first = await timed(lambda: builtin.complete("smollm2-135m-completion", warm))
    llama = next(m for m in loaded_models() if m.key[0] == "llama-cpp")
    rows.append(Row("SmolLM2 load", llama.load_seconds, "s", "GGUF Q4_1, n_ctx 4096"))
    rows.append(Row("SmolLM2 first call", first, "s", "load + 1 token"))

    request = CompletionRequest(prompts=GENERATION_PROMPTS, temperature=0, max_tokens=max_tokens)
    done, elapsed = await timed(
        lambda: builtin.complete("smollm2-135m-completion", request), repeat
    )
    generated = done.response_tokens or 0
    rows.append(
        Row(
            "SmolLM2 generation",
            generated / elapsed,
            "tokens/s",
            f"{len(GENERATION_PROMPTS)} prompts, greedy, max_tokens {max_tokens}, "
            f"{generated} tokens, n_threads {SMOLLM2_THREADS}",
        )
    )

    # Distinct openings so llama.cpp cannot reuse a cached prompt prefix.
    body = " ".join(sentences(60))
    long_prompts = [f"{word}: {body}" for word in ("Alpha", "Bravo", "Charlie")]
    prefill = CompletionRequest(prompts=long_prompts, temperature=0, max_tokens=1)
    done, elapsed = await timed(
        lambda: builtin.complete("smollm2-135m-completion", prefill), repeat
    )
    prompt_tokens = done.prompt_tokens or 0
    rows.append(
        Row(
            "SmolLM2 prompt processing",
            prompt_tokens / elapsed,
            "tokens/s",
            f"{len(long_prompts)} prompts of ~{prompt_tokens // len(long_prompts)} tokens",
        )
    )

    # -- MiniLM --------------------------------------------------------------------------
    _, first = await timed(
        lambda: builtin.embed("all-minilm-l6-v2", EmbeddingRequest(texts=["warm up"]))
    )
    minilm = next(m for m in loaded_models() if m.key[0] == "sentence-transformers")
    rows.append(Row("MiniLM load", minilm.load_seconds, "s", "incl. importing torch"))

    texts = sentences(n_sentences)
    embedded, elapsed = await timed(
        lambda: builtin.embed("all-minilm-l6-v2", EmbeddingRequest(texts=texts)), repeat
    )
    rows.append(
        Row(
            "MiniLM embeddings",
            len(texts) / elapsed,
            "texts/s",
            f"{len(texts)} short sentences, batch 64, {embedded.tokens_used} tokens",
        )
    )

    chunks = sentences(n_chunks)
    query = "Which sentence talks about fresh bread?"
    rerank = RerankingRequest(query=query, chunks=chunks)
    _, elapsed = await timed(lambda: builtin.rerank("all-minilm-l6-v2-rerank", rerank), repeat)
    rows.append(
        Row(
            "MiniLM reranking",
            len(chunks) / elapsed,
            "chunks/s",
            f"1 query x {len(chunks)} chunks (embedding similarity)",
        )
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--max-tokens", type=int, default=64, help="tokens per generation")
    parser.add_argument("--sentences", type=int, default=1000, help="texts to embed")
    parser.add_argument("--chunks", type=int, default=200, help="chunks to rerank")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    args = parser.parse_args()

    rows = asyncio.run(bench(args.max_tokens, args.sentences, args.chunks, args.repeat))
    report(f"Built-in models (median of {args.repeat} runs)", rows, args.json)


if __name__ == "__main__":
    main()
