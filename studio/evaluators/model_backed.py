"""Evaluators that call a model: semantic similarity (embeddings) and the LLM judge.

They reach models only through the :class:`~studio.evaluators.base.ModelCaller`
the evaluation engine hands them, so their calls share the model layer's
retries, limits, cache and usage records with generation.

The judge is asked for one JSON object ``{"verdict": "pass"|"fail", "score": 0-1,
"reason": "..."}``. Small models rarely manage that exactly, so the reply is
read leniently (a JSON object anywhere in it, or a first word such as PASS /
FAIL / GOOD / BAD / YES / NO, and a ``score: 0.7`` if present). A reply that
still says nothing is asked again (``retries``) and then reported as an
evaluator error: never as a pass.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from pydantic import Field

from studio.evaluators.base import (
    NO_REFERENCE,
    EvalItem,
    Evaluator,
    EvaluatorOptions,
    ModelCaller,
    Verdict,
    fill_columns,
)

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "DEFAULT_JUDGE_MODEL",
    "EVALUATORS",
    "LlmJudge",
    "SemanticSimilarity",
    "judge_messages",
    "read_judge",
]

DEFAULT_EMBEDDING_MODEL = "builtin/all-minilm-l6-v2"
DEFAULT_JUDGE_MODEL = "builtin/smollm2-135m-instruct"
_OBJECT = re.compile(r"\{.*\}", re.DOTALL)
_WORD = re.compile(r"[A-Za-z]+")
_SCORE = re.compile(r"score\W{0,3}(\d+(?:\.\d+)?)\s*(?:/\s*(\d+))?", re.IGNORECASE)
_PASS_WORDS = {"pass", "passed", "good", "yes", "correct", "true", "acceptable"}
_FAIL_WORDS = {"fail", "failed", "bad", "no", "incorrect", "false", "unacceptable"}


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


class SemanticSimilarity(Evaluator):
    id = "semantic_similarity"
    name = "Semantic similarity"
    family = "model"
    description = "Cosine similarity of the output's and the reference's embeddings."
    uses_model = True

    class Options(EvaluatorOptions):
        threshold: float = Field(
            default=0.8, ge=0.0, le=1.0, description="Pass when the cosine is at least this."
        )
        model: str = Field(
            default=DEFAULT_EMBEDDING_MODEL,
            min_length=1,
            description="Any embedding model (built-in, custom, or connection/model).",
        )
        reference: str = Field(
            default="",
            max_length=10_000,
            description="The text to compare with; may name columns. Empty: the dataset's "
            "expected output.",
        )

    async def aevaluate(self, item: EvalItem, models: ModelCaller) -> Verdict:
        reference = self.reference(self.options.reference, item)
        if reference is None:
            return Verdict.failed_to_judge(NO_REFERENCE)
        vectors = await models.embed(self.options.model, [item.output, reference])
        score = max(0.0, min(1.0, _cosine(vectors[0], vectors[1])))
        ok = score >= self.options.threshold
        sign = "≥" if ok else "<"
        return Verdict(
            score=score,
            passed=ok,
            reason=f"Cosine similarity {score:.2f} {sign} {self.options.threshold:.2f}.",
        )


JUDGE_SYSTEM = (
    "You grade the output of an AI assistant against a rubric. Answer with one JSON object "
    'and nothing else: {"verdict": "pass" or "fail", "score": a number from 0 to 1, '
    '"reason": one sentence}.'
)


def judge_messages(parts: list[str], system: str = JUDGE_SYSTEM) -> list[dict[str, str]]:
    """The judge's system prompt and one user message: ``parts`` (rubric, what to look at),
    then the reply format."""
    parts = [*parts, 'Reply with {"verdict": ..., "score": ..., "reason": ...} only.']
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": "\n\n".join(parts)},
    ]


def read_judge(reply: str, threshold: float) -> Verdict | None:
    """The judge's verdict from its reply, or None when the reply says nothing usable."""
    text = reply.strip()
    verdict: bool | None = None
    score: float | None = None
    reason = ""
    found = _OBJECT.search(text)
    if found:
        try:
            data = json.loads(found.group(0))
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            raw = str(data.get("verdict", data.get("result", ""))).strip().lower()
            verdict = True if raw in _PASS_WORDS else False if raw in _FAIL_WORDS else None
            if isinstance(data.get("score"), int | float) and not isinstance(
                data.get("score"), bool
            ):
                score = float(data["score"])
            reason = str(data.get("reason", "")).strip()
    if verdict is None:
        first = _WORD.search(text)
        word = first.group(0).lower() if first else ""
        verdict = True if word in _PASS_WORDS else False if word in _FAIL_WORDS else None
    if score is None:
        match = _SCORE.search(text)
        if match:
            value, scale = float(match.group(1)), match.group(2)
            score = value / float(scale) if scale else (value / 10 if value > 1 else value)
    if score is not None and not 0.0 <= score <= 1.0:
        score = None
    if verdict is None and score is None:
        return None
    if verdict is None:
        assert score is not None
        verdict = score >= threshold
    if score is None:
        score = 1.0 if verdict else 0.0
    if not reason:
        reason = "The judge passed the output." if verdict else "The judge failed the output."
    return Verdict(score=score, passed=verdict, reason=reason[:300])


class LlmJudge(Evaluator):
    id = "llm_judge"
    name = "LLM judge"
    family = "model"
    description = "A chat model grades each output against your rubric (pass/fail, score, reason)."
    uses_model = True

    class Options(EvaluatorOptions):
        rubric: str = Field(
            min_length=3,
            max_length=5_000,
            description="What a good output is, e.g. 'Polite, under 80 words, names the event.' "
            "May name columns ({{event}}).",
        )
        model: str = Field(default=DEFAULT_JUDGE_MODEL, min_length=1, description="Any chat model.")
        reference: str = Field(
            default="",
            max_length=10_000,
            description="A reference answer shown to the judge; may name columns. Empty: the "
            "dataset's expected output, if there is one.",
        )
        threshold: float = Field(
            default=0.5, ge=0.0, le=1.0, description="Pass when the judge's score reaches this."
        )
        retries: int = Field(
            default=2, ge=0, le=5, description="Ask again this many times on an unreadable reply."
        )

    def messages(self, item: EvalItem) -> list[dict[str, str]]:
        parts = [f"Rubric:\n{fill_columns(self.options.rubric, item.row)}"]
        if item.prompt:
            parts.append(f"Input given to the assistant:\n{item.prompt}")
        reference = self.reference(self.options.reference, item)
        if reference:
            parts.append(f"Reference answer:\n{reference}")
        parts.append(f"Output to grade:\n{item.output}")
        return judge_messages(parts)

    async def aevaluate(self, item: EvalItem, models: ModelCaller) -> Verdict:
        messages = self.messages(item)
        last = ""
        for attempt in range(self.options.retries + 1):
            params: dict[str, Any] = {"temperature": 0.0 if attempt == 0 else 0.7}
            last = await models.chat(self.options.model, messages, max_tokens=160, **params)
            verdict = read_judge(last, self.options.threshold)
            if verdict is not None:
                return verdict
        shown = last.strip().replace("\n", " ")[:80]
        return Verdict.failed_to_judge(
            f"The judge gave no verdict after {self.options.retries + 1} tries "
            f"(last reply: '{shown}')."
        )


EVALUATORS: list[type[Evaluator]] = [SemanticSimilarity, LlmJudge]
