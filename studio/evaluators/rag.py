"""RAG evaluators: is the retrieved context relevant, is the answer grounded in it, and did
retrieval find the documents the dataset expects.

They read what a run's retrieval step gave each row (``EvalItem.query`` and
``EvalItem.retrieved``, the chunks in rank order). A row of a run without a
retrieval step is an evaluator error with a sentence saying how to get one, never a
failed output.

- ``context_relevance`` and ``faithfulness`` are LLM-judge rubrics (the judge's
  machinery of :class:`~studio.evaluators.model_backed.LlmJudge`: lenient reading,
  retries, an unreadable reply is an error) that are shown the retrieved chunks.
- ``retrieval_hit_rate``, ``recall_at_k`` and ``mrr`` compare the retrieved chunks with
  the row's expected sources, named by a dataset column: document file names
  (``billing.md``; ``billing`` matches too) or chunk ids, several separated by ``;`` or
  ``|``. A chunk is *relevant* when it comes from an expected document or is an
  expected chunk. The report's pass rate of ``retrieval_hit_rate`` is the hit rate
  (with its Wilson interval); the mean score of ``recall_at_k`` is mean recall@k and
  that of ``mrr`` the mean reciprocal rank (with bootstrap intervals).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field
from pydantic.json_schema import JsonDict

from studio.core.ids import row_id
from studio.evaluators.base import (
    EvalItem,
    Evaluator,
    EvaluatorOptions,
    ModelCaller,
    RetrievedChunk,
    Verdict,
    fill_columns,
)
from studio.evaluators.model_backed import DEFAULT_JUDGE_MODEL, LlmJudge, judge_messages
from studio.evaluators.stats import mean_interval, wilson_interval

__all__ = [
    "EVALUATORS",
    "NO_RETRIEVAL",
    "ContextRelevance",
    "Faithfulness",
    "Mrr",
    "RecallAtK",
    "RetrievalHitRate",
    "context_text",
    "expected_sources",
]

NO_RETRIEVAL = (
    "This run has no retrieval step, so there are no retrieved chunks to judge: switch "
    "retrieval on for the variant (Playground), run it again, and evaluate that run."
)
MAX_CONTEXT_CHARS = 12_000  # what a judge is shown of the chunks, at most
_SEPARATORS = re.compile(r"[;|]")
# An option naming a dataset column ({{column}}): the UI draws it as a pick of the columns.
COLUMN_OPTION: JsonDict = {"dataset_column": True}

JUDGE_CONTEXT_SYSTEM = (
    "You grade the context a search step retrieved, or an answer written from it, against a "
    'rubric. Answer with one JSON object and nothing else: {"verdict": "pass" or "fail", '
    '"score": a number from 0 to 1, "reason": one sentence}.'
)


def context_text(chunks: Sequence[RetrievedChunk], limit: int = MAX_CONTEXT_CHARS) -> str:
    """The chunks as a judge reads them: ``[1] billing.md`` and the text, in rank order,
    cut at ``limit`` characters (the cut is said)."""
    if not chunks:
        return "(no chunks were retrieved)"
    parts: list[str] = []
    used = 0
    for rank, chunk in enumerate(chunks, start=1):
        block = f"[{rank}] {chunk.document or 'unnamed document'}\n{chunk.text.strip()}"
        if used + len(block) > limit:
            room = max(0, limit - used)
            if room > 200:
                parts.append(block[:room] + " ...")
            left = len(chunks) - rank + (0 if room > 200 else 1)
            if left:
                parts.append(f"({left} more chunk(s) left out: too long to show)")
            break
        parts.append(block)
        used += len(block)
    return "\n\n".join(parts)


class _ContextJudge(LlmJudge):
    """An LLM judge that is shown the retrieved chunks (subclasses say what else)."""

    family = "rag"
    DEFAULT_RUBRIC = ""

    def question(self, item: EvalItem) -> str:
        asked = fill_columns(self.options.question, item.row) if self.options.question else ""
        return asked or item.query or item.prompt or ""

    async def aevaluate(self, item: EvalItem, models: ModelCaller) -> Verdict:
        if item.retrieved is None:
            return Verdict.failed_to_judge(NO_RETRIEVAL)
        return await super().aevaluate(item, models)


class ContextRelevance(_ContextJudge):
    id = "context_relevance"
    name = "Context relevance"
    description = (
        "A chat model reads the question and the chunks retrieved for it, and judges whether "
        "they hold what is needed to answer it (irrelevant chunks count against them)."
    )

    class Options(EvaluatorOptions):
        rubric: str = Field(
            default=(
                "The retrieved context contains the information needed to answer the question. "
                "Pass when it does; fail when the passages are about something else or leave "
                "the answer out. Score the share of passages that are relevant."
            ),
            min_length=3,
            max_length=5_000,
            description="What relevant context is; may name columns ({{question}}).",
        )
        question: str = Field(
            default="",
            max_length=10_000,
            description="The question the chunks should answer; may name columns "
            "({{question}}). Empty: the retrieval step's query.",
        )
        model: str = Field(default=DEFAULT_JUDGE_MODEL, min_length=1, description="Any chat model.")
        threshold: float = Field(
            default=0.5, ge=0.0, le=1.0, description="Pass when the judge's score reaches this."
        )
        retries: int = Field(
            default=2, ge=0, le=5, description="Ask again this many times on an unreadable reply."
        )

    def messages(self, item: EvalItem) -> list[dict[str, str]]:
        return judge_messages(
            [
                f"Rubric:\n{fill_columns(self.options.rubric, item.row)}",
                f"Question:\n{self.question(item)}",
                f"Retrieved context to grade:\n{context_text(item.retrieved or ())}",
            ],
            JUDGE_CONTEXT_SYSTEM,
        )

    async def aevaluate(self, item: EvalItem, models: ModelCaller) -> Verdict:
        if item.retrieved == ():
            return Verdict.check(False, "The retrieval step found no chunks for this row.")
        return await super().aevaluate(item, models)


class Faithfulness(_ContextJudge):
    id = "faithfulness"
    name = "Faithfulness (groundedness)"
    description = (
        "A chat model checks that every claim in the output is backed by the retrieved chunks: "
        "it catches answers the model made up instead of taking them from your documents."
    )

    class Options(EvaluatorOptions):
        rubric: str = Field(
            default=(
                "Every claim in the output is supported by the retrieved context. Fail when the "
                "output states a fact the context does not contain or contradicts it. An output "
                "that says it does not know, when the context lacks the answer, passes."
            ),
            min_length=3,
            max_length=5_000,
            description="What a grounded answer is; may name columns ({{question}}).",
        )
        question: str = Field(
            default="",
            max_length=10_000,
            description="The question, shown to the judge; may name columns. Empty: the "
            "retrieval step's query.",
        )
        model: str = Field(default=DEFAULT_JUDGE_MODEL, min_length=1, description="Any chat model.")
        threshold: float = Field(
            default=0.5, ge=0.0, le=1.0, description="Pass when the judge's score reaches this."
        )
        retries: int = Field(
            default=2, ge=0, le=5, description="Ask again this many times on an unreadable reply."
        )

    def messages(self, item: EvalItem) -> list[dict[str, str]]:
        # The context first and the output last, under the plain judge's system prompt: the
        # built-in 135M judge gave a readable verdict more often this way than with the
        # rubric first (3 of 6 replies against 1 of 6, on a made-up and a grounded answer;
        # readable, not always right: measure a judge against people before trusting it).
        parts = [
            f"Retrieved context:\n{context_text(item.retrieved or ())}",
            f"Rubric:\n{fill_columns(self.options.rubric, item.row)}",
        ]
        question = self.question(item)
        if question:
            parts.append(f"Question:\n{question}")
        parts.append(f"Output to grade:\n{item.output}")
        return judge_messages(parts)


# -- ranking metrics over the expected sources ----------------------------------------------


def expected_sources(value: str) -> list[str]:
    """``"billing.md; refunds.md"`` → ``["billing.md", "refunds.md"]`` (``;`` or ``|``)."""
    return list(dict.fromkeys(v.strip() for v in _SEPARATORS.split(value) if v.strip()))


def _document_matches(expected: str, document: str) -> bool:
    want = expected.casefold().rsplit("/", 1)[-1]
    have = document.strip().casefold().rsplit("/", 1)[-1]
    if not want or not have:
        return False
    return want == have or ("." not in want and have.rsplit(".", 1)[0] == want)


def _matches(expected: str, chunk: RetrievedChunk, match: str) -> bool:
    if match in ("auto", "chunk_id"):
        wanted_id = row_id(expected)
        if wanted_id is not None and chunk.id == wanted_id:
            return True
        if match == "chunk_id":
            return False
    return _document_matches(expected, chunk.document)


def _shown(names: Sequence[str], limit: int = 5) -> str:
    unique = list(dict.fromkeys(n or "unnamed document" for n in names))
    more = f" and {len(unique) - limit} more" if len(unique) > limit else ""
    return ", ".join(unique[:limit]) + more


class _RankOptions(EvaluatorOptions):
    expected_source: str = Field(
        default="{{expected_document}}",
        title="Column naming the expected document",
        min_length=1,
        max_length=1_000,
        description="The dataset column naming the row's expected source: a document's file "
        "name (billing.md) or a chunk id; several separated by ; or |.",
        json_schema_extra=COLUMN_OPTION,
    )
    match: Literal["auto", "document", "chunk_id"] = Field(
        default="auto",
        description="What the expected value names: a document, a chunk id, or auto (a number "
        "is a chunk id, anything else a document name).",
    )


class _RankMetric(Evaluator):
    """Base of the ranking metrics: the expected sources, the relevant ranks, a figure."""

    family = "rag"
    figure = ""  # the report's name for the aggregate: "hit rate", "mean recall@k", "MRR"

    def _k(self) -> int | None:
        return getattr(self.options, "k", None)

    def evaluate(self, item: EvalItem) -> Verdict:
        if item.retrieved is None:
            return Verdict.failed_to_judge(NO_RETRIEVAL)
        expected = expected_sources(fill_columns(self.options.expected_source, item.row))
        if not expected:
            return Verdict.failed_to_judge(
                f"This row names no expected source in {self.options.expected_source}: fill in the "
                "document (or chunk id) the answer should come from, or leave the row out."
            )
        k = self._k()
        chunks = item.retrieved[:k] if k else item.retrieved
        found = [[e for e in expected if _matches(e, c, self.options.match)] for c in chunks]
        return self.verdict(expected, chunks, found)

    def verdict(
        self, expected: list[str], chunks: Sequence[RetrievedChunk], found: list[list[str]]
    ) -> Verdict:
        raise NotImplementedError

    def where(self, chunks: Sequence[RetrievedChunk]) -> str:
        k = self._k()
        n = len(chunks)
        top = f"the top {k}" if k else "the"
        return f"{top} {n} chunk{'s' if n != 1 else ''} retrieved" if n else "no chunk retrieved"

    def summary(self, items: Sequence[EvalItem], verdicts: Sequence[Verdict]) -> dict[str, Any]:
        judged = [v for v in verdicts if not v.error]
        if not judged:
            return {}
        if self.figure == "hit rate":
            interval = wilson_interval(sum(v.passed for v in judged), len(judged))
        else:
            interval = mean_interval([v.score for v in judged])
        if interval is None:
            return {}
        return {
            "retrieval": {
                "figure": self.figure,
                "k": self._k(),
                "rows": len(judged),
                **interval.as_dict(),
            }
        }


class RetrievalHitRate(_RankMetric):
    id = "retrieval_hit_rate"
    name = "Retrieval hit rate"
    figure = "hit rate"
    description = (
        "Passes when at least one retrieved chunk comes from the document the row expects (a "
        "dataset column names it). Its pass rate is the hit rate: how often retrieval found "
        "the right document."
    )

    class Options(_RankOptions):
        k: int | None = Field(
            default=None,
            ge=1,
            le=1_000,
            title="Top k",
            description="Count only the first k chunks; empty: all.",
        )

    def verdict(
        self, expected: list[str], chunks: Sequence[RetrievedChunk], found: list[list[str]]
    ) -> Verdict:
        for rank, (chunk, hits) in enumerate(zip(chunks, found, strict=True), start=1):
            if hits:
                return Verdict.check(
                    True, f"{chunk.document or hits[0]} came back at rank {rank} of {len(chunks)}."
                )
        got = f"; they came from {_shown([c.document for c in chunks])}" if chunks else ""
        return Verdict.check(
            False, f"None of {self.where(chunks)} came from {_shown(expected)}{got}."
        )


class RecallAtK(_RankMetric):
    id = "recall_at_k"
    name = "Recall@k"
    figure = "mean recall@k"
    description = (
        "The share of the row's expected documents found among the first k chunks retrieved "
        "(a row may expect several, separated by ; or |). Its mean score is mean recall@k."
    )

    class Options(_RankOptions):
        k: int = Field(
            default=5, ge=1, le=1_000, title="Top k", description="How many first chunks count."
        )
        threshold: float = Field(
            default=1.0,
            ge=0.0,
            le=1.0,
            description="Pass when this share of the expected sources is found (1: all of them).",
        )

    def verdict(
        self, expected: list[str], chunks: Sequence[RetrievedChunk], found: list[list[str]]
    ) -> Verdict:
        seen = {e for hits in found for e in hits}
        got = [e for e in expected if e in seen]
        missing = [e for e in expected if e not in seen]
        score = len(got) / len(expected)
        reason = f"Found {len(got)} of {len(expected)} expected source(s) in {self.where(chunks)}"
        if missing:
            reason += f"; missing {_shown(missing)}"
        return Verdict(
            score=score, passed=score >= self.options.threshold, reason=f"{reason} ({score:.2f})."
        )


class Mrr(_RankMetric):
    id = "mrr"
    name = "MRR (mean reciprocal rank)"
    figure = "MRR"
    description = (
        "How high the first relevant chunk ranks: 1 at rank 1, 0.5 at rank 2, 0.33 at rank 3, "
        "0 when none came back. Its mean score is the MRR."
    )

    class Options(_RankOptions):
        k: int | None = Field(
            default=None,
            ge=1,
            le=1_000,
            title="Top k",
            description="Look only at the first k chunks; empty: all.",
        )
        threshold: float = Field(
            default=0.5,
            ge=0.0,
            le=1.0,
            description="Pass when 1/rank reaches this (0.5: a relevant chunk in the top 2).",
        )

    def verdict(
        self, expected: list[str], chunks: Sequence[RetrievedChunk], found: list[list[str]]
    ) -> Verdict:
        rank = next((r for r, hits in enumerate(found, start=1) if hits), None)
        if rank is None:
            return Verdict(
                score=0.0,
                passed=self.options.threshold <= 0.0,
                reason=f"No chunk from {_shown(expected)} in {self.where(chunks)}: "
                "reciprocal rank 0.",
            )
        score = 1.0 / rank
        document = chunks[rank - 1].document or found[rank - 1][0]
        return Verdict(
            score=score,
            passed=score >= self.options.threshold,
            reason=f"The first relevant chunk ({document}) is at rank {rank}: reciprocal rank "
            f"{score:.2f}.",
        )


EVALUATORS: list[type[Evaluator]] = [
    ContextRelevance,
    Faithfulness,
    RetrievalHitRate,
    RecallAtK,
    Mrr,
]
