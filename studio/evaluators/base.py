"""What an evaluator is: typed options, one item in, one verdict out.

An :class:`Evaluator` judges one output (an :class:`EvalItem`: the output, its
dataset row, the reference answer, and what the call cost) and returns a
:class:`Verdict`: a score in [0, 1], pass or fail, and a one-sentence reason.
When the evaluator itself cannot judge (a judge model that answers nonsense,
a token count nobody recorded), the verdict carries an ``error`` instead: that
is the evaluator's failure, never the output's, and it is left out of pass
rates.

Option values may name dataset columns: ``{{expected_answer}}`` is replaced by
that row's value. A reference option left empty means the dataset's
expected-output column (``EvalItem.reference``).

An item of a run whose variant retrieves from a knowledge base also carries the
retrieval query and the chunks retrieved for it, in rank order
(``EvalItem.retrieved``; ``None`` when the run had no retrieval step), for the
RAG evaluators (:mod:`studio.evaluators.rag`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError

from studio.core.errors import FieldProblem, RequestValidationError

__all__ = [
    "COLUMN_REF",
    "NO_REFERENCE",
    "EvalItem",
    "Evaluator",
    "EvaluatorOptions",
    "ModelCaller",
    "RetrievedChunk",
    "Verdict",
    "columns_in",
    "fill_columns",
    "problem",
    "retrieved_chunks",
]

COLUMN_REF = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_ ]*?)\s*\}\}")
NO_REFERENCE = (
    "No reference answer: set the option, or choose the dataset's expected-output column."
)


class EvaluatorOptions(BaseModel):
    """Base of every evaluator's options: unknown keys are refused, not ignored."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class RetrievedChunk:
    """One chunk a retrieval step returned: its id, the document's file name, its text."""

    id: int | None
    document: str
    text: str
    score: float | None = None
    document_id: int | None = None
    position: int | None = None


def retrieved_chunks(retrieval: Mapping[str, Any] | None) -> tuple[RetrievedChunk, ...] | None:
    """The chunks of a stored retrieval record (``RunResult.retrieval``), in rank order;
    None when there was no retrieval step."""
    if not isinstance(retrieval, Mapping):
        return None
    chunks = retrieval.get("chunks") or []

    def number(value: Any, kind: type) -> Any:
        try:
            return None if value is None or isinstance(value, bool) else kind(value)
        except (TypeError, ValueError):
            return None

    return tuple(
        RetrievedChunk(
            id=number(c.get("id"), int),
            document=str(c.get("document") or ""),
            text=str(c.get("text") or ""),
            score=number(c.get("score"), float),
            document_id=number(c.get("document_id"), int),
            position=number(c.get("position"), int),
        )
        for c in chunks
        if isinstance(c, Mapping)
    )


@dataclass(frozen=True)
class EvalItem:
    """One output to judge, with what it was made from."""

    output: str
    row: Mapping[str, Any] = field(default_factory=dict)
    reference: str | None = None
    prompt: str | None = None
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    query: str | None = None  # what the retrieval step searched for
    retrieved: tuple[RetrievedChunk, ...] | None = None  # None: no retrieval step


@dataclass(frozen=True)
class Verdict:
    """``score`` in [0, 1]; ``passed``; ``reason`` in one sentence; ``error`` when the
    evaluator could not judge (then ``passed`` is False and the row is not counted)."""

    score: float
    passed: bool
    reason: str
    error: str | None = None

    @classmethod
    def check(cls, passed: bool, reason: str) -> Verdict:
        return cls(score=1.0 if passed else 0.0, passed=passed, reason=reason)

    @classmethod
    def failed_to_judge(cls, error: str) -> Verdict:
        return cls(score=0.0, passed=False, reason=error, error=error)


class ModelCaller:
    """How a model-backed evaluator reaches models (supplied by the evaluation engine)."""

    async def chat(self, model: str, messages: list[dict[str, str]], **params: Any) -> str:
        raise NotImplementedError

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        raise NotImplementedError


def columns_in(value: Any) -> set[str]:
    """The dataset columns an option value names (``{{column}}``), searched recursively."""
    if isinstance(value, str):
        return {m.group(1) for m in COLUMN_REF.finditer(value)}
    if isinstance(value, Mapping):
        return set().union(*(columns_in(v) for v in value.values())) if value else set()
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return set().union(*(columns_in(v) for v in value)) if value else set()
    return set()


def fill_columns(value: str, row: Mapping[str, Any]) -> str:
    """Replace each ``{{column}}`` with the row's value (empty when the cell is empty)."""
    if "{{" not in value:
        return value

    def cell(match: re.Match[str]) -> str:
        found = row.get(match.group(1))
        return "" if found is None else str(found)

    return COLUMN_REF.sub(cell, value)


class Evaluator:
    """Base class. Subclasses set the class attributes, an ``Options`` model and ``evaluate``.

    ``uses_model`` evaluators (LLM judge, semantic similarity) implement ``aevaluate``
    and receive a :class:`ModelCaller`; the others are pure functions of the item.
    """

    id: ClassVar[str]
    name: ClassVar[str]
    family: ClassVar[str]  # "text", "json", "metrics", "model", "cost"
    description: ClassVar[str]
    uses_model: ClassVar[bool] = False
    Options: ClassVar[type[EvaluatorOptions]] = EvaluatorOptions

    def __init__(self, options: EvaluatorOptions | Mapping[str, Any] | None = None) -> None:
        if isinstance(options, EvaluatorOptions):
            self.options: Any = options
        else:
            try:
                self.options = self.Options.model_validate(dict(options or {}))
            except PydanticValidationError as exc:
                from studio.core.schemas import problems_from_pydantic

                raise RequestValidationError(
                    problems_from_pydantic(exc, self.Options), what=f"options for {self.id}"
                ) from exc

    def columns(self) -> set[str]:
        """Dataset columns the options name; the engine checks them against the dataset."""
        return columns_in(self.options.model_dump())

    def evaluate(self, item: EvalItem) -> Verdict:
        raise NotImplementedError(f"{type(self).__name__} needs a model: use aevaluate")

    async def aevaluate(self, item: EvalItem, models: ModelCaller) -> Verdict:
        return self.evaluate(item)

    def summary(self, items: Sequence[EvalItem], verdicts: Sequence[Verdict]) -> dict[str, Any]:
        """Extra figures for the report card (e.g. a confusion matrix); none by default."""
        return {}

    def reference(self, value: str | None, item: EvalItem) -> str | None:
        """An option's reference value for this row: the option (columns filled) if set,
        else the dataset's expected output."""
        if value:
            return fill_columns(value, item.row)
        return item.reference

    def __repr__(self) -> str:
        return f"{self.id}({self.options.model_dump(exclude_defaults=True)})"


def problem(field_name: str, rule: str, evaluator: str) -> RequestValidationError:
    """An options error naming one field, in the same words as the schema errors."""
    return RequestValidationError([FieldProblem(field_name, rule)], what=f"options for {evaluator}")
