"""String evaluators: rows that must pass and rows that must fail."""

from __future__ import annotations

import pytest

from studio.core.errors import RequestValidationError
from studio.evaluators import EvalItem, build, parse_spec


def item(output: str, reference: str | None = None, **row: str) -> EvalItem:
    return EvalItem(output=output, reference=reference, row=row)


@pytest.mark.parametrize(
    ("spec", "output", "reference", "passed"),
    [
        ("exact_match", "  Paris ", "paris", True),
        ("exact_match", "Paris\n\nFrance", "paris france", True),
        ("exact_match", "Paris.", "Paris", False),
        ("exact_match:case_sensitive=true", "paris", "Paris", False),
        ("exact_match:ignore_whitespace=false", " Paris", "Paris", False),
        ("contains", "The capital is Paris.", "paris", True),
        ("contains", "The capital is Lyon.", "Paris", False),
        ("contains:value=refund", "You get a REFUND", None, True),
        ("contains:value=refund,case_sensitive=true", "You get a REFUND", None, False),
        ("contains_any:values=refund|money back", "Your money back, guaranteed", None, True),
        ("contains_any:values=refund|money back", "No returns", None, False),
        ("contains_all:values=sorry|refund", "Sorry, here is your refund", None, True),
        ("contains_all:values=sorry|refund", "Sorry about that", None, False),
        ("not_contains:values=as an AI|I cannot", "Here is your email", None, True),
        ("not_contains:values=as an AI|I cannot", "As an AI, I cannot", None, False),
        ("starts_with:value=Dear", "  Dear Anna,", None, True),
        ("starts_with:value=Dear", "Hi Anna", None, False),
        ("ends_with:value=Best wishes", "Thanks.\nBest wishes\n", None, True),
        ("ends_with:value=Best wishes", "Best wishes, Bob", None, False),
        ("regex:pattern=^\\d{5}$", "75001", None, True),
        ("regex:pattern=\\d{5}", "zip 75001 ok", None, True),
        ("regex:pattern=\\d{5},mode=fullmatch", "zip 75001 ok", None, False),
        ("regex:pattern=^hello", "HELLO there", None, True),
        ("regex:pattern=^hello,case_sensitive=true", "HELLO there", None, False),
    ],
)
def test_string_checks(spec: str, output: str, reference: str | None, passed: bool) -> None:
    verdict = parse_spec(spec).evaluate(item(output, reference))
    assert verdict.error is None
    assert verdict.passed is passed
    assert (verdict.score == 1.0) is passed
    assert verdict.reason.endswith(".")


def test_values_name_dataset_columns() -> None:
    evaluator = build("contains", {"value": "{{event}}"})
    assert evaluator.columns() == {"event"}
    assert evaluator.evaluate(item("Join us at the Wine tasting", event="Wine tasting")).passed
    assert not evaluator.evaluate(item("Join us at the Hackathon", event="Wine tasting")).passed
    many = build("contains_all", {"values": ["{{event}}", "{{city}}"]})
    assert many.columns() == {"event", "city"}
    verdict = many.evaluate(item("Hackathon in Lyon", event="Hackathon", city="Paris"))
    assert not verdict.passed
    assert verdict.score == 0.5
    assert "Paris" in verdict.reason


def test_no_reference_is_an_evaluator_error_not_a_failed_output() -> None:
    verdict = build("exact_match").evaluate(item("Paris", None))
    assert verdict.error and "reference" in verdict.error
    assert not verdict.passed


def test_a_pattern_that_backtracks_forever_fails_one_row_with_a_reason() -> None:
    evaluator = build("regex", {"pattern": "(a|aa)+$"})
    verdict = evaluator.evaluate(item("a" * 60 + "b"))
    assert verdict.error and "longer than" in verdict.error


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("regex:pattern=(unclosed", "not a valid regular expression"),
        ("contains_any:values=", "at least"),
        ("contains:vaule=x", "vaule"),
        ("exact_match:case_sensitive=maybe", "case_sensitive"),
        ("contains:refund", "key=value"),
    ],
)
def test_bad_options_are_refused_with_the_field_named(spec: str, words: str) -> None:
    with pytest.raises(RequestValidationError) as err:
        parse_spec(spec)
    assert words in str(err.value)
