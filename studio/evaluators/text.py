"""String checks: exact match, contains (any / all / none), starts and ends with, regex.

Each compares the output with a value that may name dataset columns
(``{{expected_answer}}``); a value left empty means the dataset's
expected-output column. Matching ignores case unless ``case_sensitive``.
Regular expressions run with a time limit (the ``regex`` library's ``timeout``),
so a pattern that backtracks forever fails one row with a reason instead of
freezing the evaluation.
"""

from __future__ import annotations

from typing import Literal

import regex
from pydantic import Field, field_validator

from studio.evaluators.base import (
    NO_REFERENCE,
    EvalItem,
    Evaluator,
    EvaluatorOptions,
    Verdict,
    fill_columns,
)

__all__ = [
    "EVALUATORS",
    "Contains",
    "ContainsAll",
    "ContainsAny",
    "EndsWith",
    "ExactMatch",
    "NotContains",
    "Regex",
    "StartsWith",
]

REGEX_TIMEOUT_S = 0.25


def _quote(text: str, limit: int = 60) -> str:
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return f"'{text}'"


def _norm(text: str, case_sensitive: bool, collapse_whitespace: bool = False) -> str:
    if collapse_whitespace:
        text = " ".join(text.split())
    return text if case_sensitive else text.casefold()


class _CaseOptions(EvaluatorOptions):
    case_sensitive: bool = Field(default=False, description="Tell upper and lower case apart.")


class _ValueOptions(_CaseOptions):
    value: str = Field(
        default="",
        max_length=10_000,
        description="Text to look for; may name columns ({{expected}}). Empty: the dataset's "
        "expected output.",
    )


class _ValuesOptions(_CaseOptions):
    values: list[str] = Field(
        min_length=1,
        max_length=200,
        description="Texts to look for, one per line; each may name columns ({{column}}).",
    )

    @field_validator("values")
    @classmethod
    def _no_blank(cls, values: list[str]) -> list[str]:
        kept = [v for v in values if v.strip()]
        if not kept:
            raise ValueError("needs at least one non-empty text")
        return kept


class ExactMatch(Evaluator):
    id = "exact_match"
    name = "Exact match"
    family = "text"
    description = "The output equals the reference (by default ignoring case and extra spaces)."

    class Options(_ValueOptions):
        ignore_whitespace: bool = Field(
            default=True,
            description="Ignore leading, trailing and repeated spaces and line breaks.",
        )

    def evaluate(self, item: EvalItem) -> Verdict:
        o = self.options
        expected = self.reference(o.value, item)
        if expected is None:
            return Verdict.failed_to_judge(NO_REFERENCE)
        a = _norm(item.output, o.case_sensitive, o.ignore_whitespace)
        b = _norm(expected, o.case_sensitive, o.ignore_whitespace)
        if a == b:
            return Verdict.check(True, f"The output equals {_quote(expected)}.")
        return Verdict.check(False, f"The output differs from {_quote(expected)}.")


class Contains(Evaluator):
    id = "contains"
    name = "Contains"
    family = "text"
    description = "The output contains a text (by default the reference)."
    Options = _ValueOptions

    def evaluate(self, item: EvalItem) -> Verdict:
        o = self.options
        wanted = self.reference(o.value, item)
        if not wanted:
            return Verdict.failed_to_judge(NO_REFERENCE)
        found = _norm(wanted, o.case_sensitive) in _norm(item.output, o.case_sensitive)
        return Verdict.check(
            found, f"The output {'contains' if found else 'does not contain'} {_quote(wanted)}."
        )


def _found(self: Evaluator, item: EvalItem) -> tuple[list[str], list[str]]:
    o = self.options
    output = _norm(item.output, o.case_sensitive)
    present: list[str] = []
    absent: list[str] = []
    for value in o.values:
        text = fill_columns(value, item.row) if "{{" in value else value
        (present if text and _norm(text, o.case_sensitive) in output else absent).append(text)
    return present, absent


class ContainsAny(Evaluator):
    id = "contains_any"
    name = "Contains any"
    family = "text"
    description = "The output contains at least one of the texts."
    Options = _ValuesOptions

    def evaluate(self, item: EvalItem) -> Verdict:
        present, _ = _found(self, item)
        if present:
            return Verdict.check(True, f"The output contains {_quote(present[0])}.")
        return Verdict.check(False, "The output contains none of the texts.")


class ContainsAll(Evaluator):
    id = "contains_all"
    name = "Contains all"
    family = "text"
    description = "The output contains every one of the texts; the score is the share found."
    Options = _ValuesOptions

    def evaluate(self, item: EvalItem) -> Verdict:
        present, absent = _found(self, item)
        score = len(present) / (len(present) + len(absent))
        if not absent:
            return Verdict(score=1.0, passed=True, reason="The output contains every text.")
        missing = ", ".join(_quote(a, 30) for a in absent[:3])
        more = f" and {len(absent) - 3} more" if len(absent) > 3 else ""
        return Verdict(score=score, passed=False, reason=f"The output lacks {missing}{more}.")


class NotContains(Evaluator):
    id = "not_contains"
    name = "Does not contain"
    family = "text"
    description = "The output contains none of the texts (banned words, leaked instructions)."
    Options = _ValuesOptions

    def evaluate(self, item: EvalItem) -> Verdict:
        present, _ = _found(self, item)
        if present:
            return Verdict.check(False, f"The output contains {_quote(present[0])}.")
        return Verdict.check(True, "The output contains none of the texts.")


class StartsWith(Evaluator):
    id = "starts_with"
    name = "Starts with"
    family = "text"
    description = "The output starts with a text (leading spaces ignored)."
    Options = _ValueOptions

    def evaluate(self, item: EvalItem) -> Verdict:
        o = self.options
        wanted = self.reference(o.value, item)
        if not wanted:
            return Verdict.failed_to_judge(NO_REFERENCE)
        ok = _norm(item.output.lstrip(), o.case_sensitive).startswith(
            _norm(wanted, o.case_sensitive)
        )
        return Verdict.check(
            ok, f"The output {'starts' if ok else 'does not start'} with {_quote(wanted)}."
        )


class EndsWith(Evaluator):
    id = "ends_with"
    name = "Ends with"
    family = "text"
    description = "The output ends with a text (trailing spaces ignored)."
    Options = _ValueOptions

    def evaluate(self, item: EvalItem) -> Verdict:
        o = self.options
        wanted = self.reference(o.value, item)
        if not wanted:
            return Verdict.failed_to_judge(NO_REFERENCE)
        ok = _norm(item.output.rstrip(), o.case_sensitive).endswith(_norm(wanted, o.case_sensitive))
        return Verdict.check(
            ok, f"The output {'ends' if ok else 'does not end'} with {_quote(wanted)}."
        )


class Regex(Evaluator):
    id = "regex"
    name = "Regular expression"
    family = "text"
    description = "The output matches a regular expression (anywhere, or the whole output)."

    class Options(_CaseOptions):
        pattern: str = Field(
            min_length=1, max_length=2_000, description="A regular expression, e.g. ^\\d{5}$."
        )
        mode: Literal["search", "fullmatch"] = Field(
            default="search",
            description="search: anywhere in the output; fullmatch: the whole output.",
        )

        @field_validator("pattern")
        @classmethod
        def _compiles(cls, pattern: str) -> str:
            try:
                regex.compile(pattern)
            except regex.error as exc:
                raise ValueError(f"is not a valid regular expression ({exc})") from exc
            return pattern

    def __init__(self, options: object = None) -> None:
        super().__init__(options)  # type: ignore[arg-type]
        flags = 0 if self.options.case_sensitive else regex.IGNORECASE
        self._compiled = regex.compile(self.options.pattern, flags)

    def evaluate(self, item: EvalItem) -> Verdict:
        match = (
            self._compiled.fullmatch
            if self.options.mode == "fullmatch"
            else (self._compiled.search)
        )
        try:
            found = match(item.output, timeout=REGEX_TIMEOUT_S) is not None
        except TimeoutError:
            return Verdict.failed_to_judge(
                f"The pattern took longer than {REGEX_TIMEOUT_S} s on this output; simplify it."
            )
        what = "matches" if found else "does not match"
        return Verdict.check(found, f"The output {what} /{self.options.pattern}/.")


EVALUATORS: list[type[Evaluator]] = [
    ExactMatch,
    Contains,
    ContainsAny,
    ContainsAll,
    NotContains,
    StartsWith,
    EndsWith,
    Regex,
]
