"""Metrics: length, classification, similarity (Levenshtein, ROUGE-L, BLEU), latency, cost, tokens.

The similarity metrics come from the libraries that define them: ``rapidfuzz``
(normalised Levenshtein similarity), ``rouge-score`` (Google's ROUGE-L F-measure,
with Porter stemming) and ``sacrebleu`` (sentence BLEU, scaled to [0, 1]). The
classification report uses ``scikit-learn``'s precision, recall, F1 and confusion
matrix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cached_property
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from studio.evaluators.base import (
    NO_REFERENCE,
    EvalItem,
    Evaluator,
    EvaluatorOptions,
    Verdict,
)

__all__ = [
    "EVALUATORS",
    "Bleu",
    "Classification",
    "Cost",
    "Latency",
    "Length",
    "Levenshtein",
    "RougeL",
    "Tokens",
]

_WORDS = re.compile(r"\S+")
_EDGE_PUNCT = re.compile(r"^[\s\"'`*.,:;!?()\[\]]+|[\s\"'`*.,:;!?()\[\]]+$")


class Length(Evaluator):
    id = "length"
    name = "Length"
    family = "metrics"
    description = "The output's length in characters, words or tokens is within bounds."

    class Options(EvaluatorOptions):
        unit: Literal["characters", "words", "tokens"] = Field(
            default="words", description="What to count (tokens: as the model reported them)."
        )
        min: int | None = Field(default=None, ge=0, description="At least this many.")
        max: int | None = Field(default=None, ge=0, description="At most this many.")

        @model_validator(mode="after")
        def _bounds(self) -> Length.Options:
            if self.min is None and self.max is None:
                raise ValueError("set min, max or both")
            if self.min is not None and self.max is not None and self.min > self.max:
                raise ValueError(f"min ({self.min}) is larger than max ({self.max})")
            return self

    def evaluate(self, item: EvalItem) -> Verdict:
        o = self.options
        if o.unit == "characters":
            count = len(item.output)
        elif o.unit == "words":
            count = len(_WORDS.findall(item.output))
        elif item.completion_tokens is None:
            return Verdict.failed_to_judge("The model did not report how many tokens it wrote.")
        else:
            count = item.completion_tokens
        low = o.min if o.min is not None else 0
        high = o.max if o.max is not None else float("inf")
        if low <= count <= high:
            return Verdict.check(True, f"{count} {o.unit}, within bounds.")
        side = f"fewer than {o.min}" if count < low else f"more than {o.max}"
        return Verdict.check(False, f"{count} {o.unit}: {side}.")


def _label(text: str, case_sensitive: bool) -> str:
    text = _EDGE_PUNCT.sub("", text)
    return text if case_sensitive else text.casefold()


class Classification(Evaluator):
    id = "classification"
    name = "Classification"
    family = "metrics"
    description = (
        "The output is one of the allowed labels and equals the expected label; the report "
        "adds accuracy, per-label precision, recall and F1, and a confusion matrix."
    )

    class Options(EvaluatorOptions):
        labels: list[str] = Field(
            min_length=2, max_length=100, description="The allowed labels, one per line."
        )
        expected: str = Field(
            default="",
            description="The expected label; may name a column ({{label}}). Empty: the "
            "dataset's expected output.",
        )
        case_sensitive: bool = Field(default=False, description="Tell upper and lower case apart.")

        @field_validator("labels")
        @classmethod
        def _labels(cls, labels: list[str]) -> list[str]:
            kept = list(dict.fromkeys(v.strip() for v in labels if v.strip()))
            if len(kept) < 2:
                raise ValueError("needs at least two different labels")
            return kept

    @cached_property
    def _by_norm(self) -> dict[str, str]:
        return {_label(x, self.options.case_sensitive): x for x in self.options.labels}

    def predicted(self, output: str) -> str | None:
        return self._by_norm.get(_label(output, self.options.case_sensitive))

    def evaluate(self, item: EvalItem) -> Verdict:
        expected_text = self.reference(self.options.expected, item)
        if expected_text is None:
            return Verdict.failed_to_judge(NO_REFERENCE)
        expected = self.predicted(expected_text)
        if expected is None:
            return Verdict.failed_to_judge(
                f"The expected label '{expected_text[:40]}' is not one of the allowed labels."
            )
        got = self.predicted(item.output)
        if got is None:
            return Verdict.check(False, "The output is not one of the allowed labels.")
        if got == expected:
            return Verdict.check(True, f"Labelled '{got}', as expected.")
        return Verdict.check(False, f"Labelled '{got}', expected '{expected}'.")

    def summary(self, items: Sequence[EvalItem], verdicts: Sequence[Verdict]) -> dict[str, Any]:
        from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

        other = "(other)"
        truth: list[str] = []
        guess: list[str] = []
        for item, verdict in zip(items, verdicts, strict=True):
            if verdict.error:
                continue
            expected = self.predicted(self.reference(self.options.expected, item) or "")
            if expected is None:
                continue
            truth.append(expected)
            guess.append(self.predicted(item.output) or other)
        labels = list(self.options.labels)
        if not truth:
            return {}
        shown = labels + ([other] if other in guess else [])
        precision, recall, f1, support = precision_recall_fscore_support(
            truth, guess, labels=labels, zero_division=0
        )
        matrix = confusion_matrix(truth, guess, labels=shown)
        return {
            "accuracy": sum(t == g for t, g in zip(truth, guess, strict=True)) / len(truth),
            "per_label": [
                {
                    "label": label,
                    "precision": float(precision[i]),
                    "recall": float(recall[i]),
                    "f1": float(f1[i]),
                    "support": int(support[i]),
                }
                for i, label in enumerate(labels)
            ],
            "confusion": {"labels": shown, "matrix": matrix.tolist()},
        }


class _SimilarityOptions(EvaluatorOptions):
    threshold: float = Field(
        default=0.8, ge=0.0, le=1.0, description="Pass when the similarity is at least this."
    )
    reference: str = Field(
        default="",
        max_length=10_000,
        description="The text to compare with; may name columns ({{answer}}). Empty: the "
        "dataset's expected output.",
    )


def _similar(score: float, threshold: float, metric: str) -> Verdict:
    score = max(0.0, min(1.0, score))
    ok = score >= threshold
    sign = "≥" if ok else "<"
    return Verdict(score=score, passed=ok, reason=f"{metric} {score:.2f} {sign} {threshold:.2f}.")


class Levenshtein(Evaluator):
    id = "levenshtein"
    name = "Levenshtein similarity"
    family = "metrics"
    description = "1 minus the edit distance over the longer length (rapidfuzz), vs a threshold."

    class Options(_SimilarityOptions):
        case_sensitive: bool = Field(default=False, description="Tell upper and lower case apart.")

    def evaluate(self, item: EvalItem) -> Verdict:
        from rapidfuzz.distance import Levenshtein as _Lev

        reference = self.reference(self.options.reference, item)
        if reference is None:
            return Verdict.failed_to_judge(NO_REFERENCE)
        a, b = item.output.strip(), reference.strip()
        if not self.options.case_sensitive:
            a, b = a.casefold(), b.casefold()
        return _similar(_Lev.normalized_similarity(a, b), self.options.threshold, "Similarity")


class RougeL(Evaluator):
    id = "rouge_l"
    name = "ROUGE-L"
    family = "metrics"
    description = "ROUGE-L F-measure (longest common subsequence of words, rouge-score)."
    Options = _SimilarityOptions

    @cached_property
    def _scorer(self) -> Any:
        from rouge_score import rouge_scorer

        return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)

    def evaluate(self, item: EvalItem) -> Verdict:
        reference = self.reference(self.options.reference, item)
        if reference is None:
            return Verdict.failed_to_judge(NO_REFERENCE)
        score = self._scorer.score(reference, item.output)["rougeL"].fmeasure
        return _similar(score, self.options.threshold, "ROUGE-L")


class Bleu(Evaluator):
    id = "bleu"
    name = "BLEU"
    family = "metrics"
    description = "Sentence BLEU (sacrebleu, smoothed), scaled to [0, 1]."

    class Options(_SimilarityOptions):
        threshold: float = Field(
            default=0.3, ge=0.0, le=1.0, description="Pass when BLEU / 100 is at least this."
        )

    def evaluate(self, item: EvalItem) -> Verdict:
        import sacrebleu

        reference = self.reference(self.options.reference, item)
        if reference is None:
            return Verdict.failed_to_judge(NO_REFERENCE)
        score = sacrebleu.sentence_bleu(item.output, [reference]).score / 100.0
        return _similar(score, self.options.threshold, "BLEU")


class Latency(Evaluator):
    id = "latency"
    name = "Latency"
    family = "cost"
    description = "The model call took at most this long."

    class Options(EvaluatorOptions):
        max_ms: float = Field(default=2_000, gt=0, le=600_000, description="Milliseconds.")

    def evaluate(self, item: EvalItem) -> Verdict:
        if item.latency_ms is None:
            return Verdict.failed_to_judge("This output has no recorded latency.")
        ok = item.latency_ms <= self.options.max_ms
        sign = "≤" if ok else ">"
        return Verdict.check(ok, f"{item.latency_ms:.0f} ms {sign} {self.options.max_ms:.0f} ms.")


class Cost(Evaluator):
    id = "cost"
    name = "Cost"
    family = "cost"
    description = "The model call cost at most this much (from the model's prices)."

    class Options(EvaluatorOptions):
        max_usd: float = Field(default=0.01, ge=0, le=100, description="US dollars per call.")

    def evaluate(self, item: EvalItem) -> Verdict:
        if item.cost_usd is None:
            return Verdict.failed_to_judge("This model has no price, so the cost is unknown.")
        ok = item.cost_usd <= self.options.max_usd
        sign = "≤" if ok else ">"
        return Verdict.check(ok, f"${item.cost_usd:.5f} {sign} ${self.options.max_usd:.5f}.")


class Tokens(Evaluator):
    id = "tokens"
    name = "Tokens"
    family = "cost"
    description = "The call used at most this many tokens (total, prompt or completion)."

    class Options(EvaluatorOptions):
        max_tokens: int = Field(default=512, ge=1, le=10_000_000, description="Tokens.")
        count: Literal["total", "prompt", "completion"] = Field(
            default="total", description="Which tokens to count."
        )

    def evaluate(self, item: EvalItem) -> Verdict:
        parts = {"prompt": item.prompt_tokens, "completion": item.completion_tokens}
        if self.options.count == "total":
            if item.prompt_tokens is None and item.completion_tokens is None:
                value = None
            else:
                value = (item.prompt_tokens or 0) + (item.completion_tokens or 0)
        else:
            value = parts[self.options.count]
        if value is None:
            return Verdict.failed_to_judge("The model did not report its token counts.")
        ok = value <= self.options.max_tokens
        sign = "≤" if ok else ">"
        return Verdict.check(
            ok, f"{value} {self.options.count} tokens {sign} {self.options.max_tokens}."
        )


EVALUATORS: list[type[Evaluator]] = [
    Length,
    Classification,
    Levenshtein,
    RougeL,
    Bleu,
    Latency,
    Cost,
    Tokens,
]
