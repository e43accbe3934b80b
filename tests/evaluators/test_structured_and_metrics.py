"""JSON and metric evaluators, pinned to the metric libraries' own reference examples."""

from __future__ import annotations

import pytest

from studio.core.errors import RequestValidationError
from studio.evaluators import EvalItem, build, parse_spec

SCHEMA = '{"type": "object", "required": ["answer"], "properties": {"answer": {"type": "string"}}}'


def item(output: str, reference: str | None = None, **extra: object) -> EvalItem:
    row = {k: v for k, v in extra.items() if isinstance(v, str)}
    numbers = {k: v for k, v in extra.items() if not isinstance(v, str)}
    return EvalItem(output=output, reference=reference, row=row, **numbers)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("output", "passed"),
    [
        ('{"a": 1}', True),
        ('```json\n{"a": [1, 2]}\n```', True),
        ("[1, 2, 3]", True),
        ("{'a': 1}", False),
        ('Sure! {"a": 1}', False),
    ],
)
def test_is_json(output: str, passed: bool) -> None:
    verdict = build("is_json").evaluate(item(output))
    assert verdict.passed is passed
    if not passed:
        assert "not JSON" in verdict.reason and "line 1" in verdict.reason


def test_is_json_without_fence_stripping_refuses_a_fence() -> None:
    assert (
        not build("is_json", {"strip_code_fence": False}).evaluate(item('```\n{"a":1}\n```')).passed
    )


def test_json_schema_reports_where_the_output_breaks_the_schema() -> None:
    evaluator = parse_spec(f"json_schema:json_schema={SCHEMA}")
    assert evaluator.evaluate(item('{"answer": "42"}')).passed
    missing = evaluator.evaluate(item('{"reply": "42"}'))
    assert not missing.passed and "'answer' is a required property" in missing.reason
    wrong = evaluator.evaluate(item('{"answer": 42}'))
    assert not wrong.passed and "At answer" in wrong.reason
    assert not evaluator.evaluate(item("no json")).passed


def test_an_invalid_schema_is_refused_when_configured() -> None:
    with pytest.raises(RequestValidationError) as err:
        build("json_schema", {"json_schema": {"type": "no-such-type"}})
    assert "not a valid JSON Schema" in str(err.value)


@pytest.mark.parametrize(
    ("options", "output", "passed"),
    [
        ({"path": "answer", "equals": "Paris"}, '{"answer": "paris"}', False),
        (
            {"path": "answer", "equals": "Paris", "case_sensitive": False},
            '{"answer": "paris"}',
            True,
        ),
        ({"path": "items[1].id", "equals": "7"}, '{"items": [{"id": 3}, {"id": 7}]}', True),
        ({"path": "items[2].id", "equals": "7"}, '{"items": [{"id": 3}, {"id": 7}]}', False),
        ({"path": "ok", "equals": "true"}, '{"ok": true}', True),
        ({"path": "label", "equals": "{{label}}"}, '{"label": "spam"}', True),
        ({"path": "label"}, '{"label": "ham"}', False),  # reference is "spam"
    ],
)
def test_json_field(options: dict[str, object], output: str, passed: bool) -> None:
    verdict = build("json_field", options).evaluate(item(output, "spam", label="spam"))
    assert verdict.passed is passed, verdict.reason


@pytest.mark.parametrize(
    ("options", "output", "passed"),
    [
        ({"unit": "words", "max": 5}, "one two three four five", True),
        ({"unit": "words", "max": 4}, "one two three four five", False),
        ({"unit": "characters", "min": 3, "max": 5}, "abcd", True),
        ({"unit": "characters", "min": 5}, "abcd", False),
    ],
)
def test_length(options: dict[str, object], output: str, passed: bool) -> None:
    assert build("length", options).evaluate(item(output)).passed is passed


def test_length_in_tokens_uses_what_the_model_reported() -> None:
    evaluator = build("length", {"unit": "tokens", "max": 10})
    assert evaluator.evaluate(item("x", completion_tokens=10)).passed
    assert not evaluator.evaluate(item("x", completion_tokens=11)).passed
    assert evaluator.evaluate(item("x")).error  # unknown: the evaluator cannot judge


def test_length_needs_a_bound_and_sane_bounds() -> None:
    with pytest.raises(RequestValidationError, match="set min, max or both"):
        build("length", {"unit": "words"})
    with pytest.raises(RequestValidationError, match="larger than max"):
        build("length", {"min": 9, "max": 2})


def test_classification_rows_and_report() -> None:
    evaluator = build("classification", {"labels": ["positive", "negative"]})
    rows = [
        ("Positive.", "positive"),
        ("negative", "positive"),
        ("NEGATIVE", "negative"),
        ("negative", "negative"),
        ("maybe?", "negative"),
    ]
    items = [item(out, ref) for out, ref in rows]
    verdicts = [evaluator.evaluate(i) for i in items]
    assert [v.passed for v in verdicts] == [True, False, True, True, False]
    assert "not one of the allowed labels" in verdicts[4].reason
    report = evaluator.summary(items, verdicts)
    assert report["accuracy"] == pytest.approx(3 / 5)
    by_label = {p["label"]: p for p in report["per_label"]}
    assert by_label["positive"]["precision"] == pytest.approx(1.0)
    assert by_label["positive"]["recall"] == pytest.approx(0.5)
    assert by_label["negative"]["precision"] == pytest.approx(2 / 3)
    assert by_label["negative"]["recall"] == pytest.approx(2 / 3)
    assert report["confusion"]["labels"] == ["positive", "negative", "(other)"]
    assert report["confusion"]["matrix"] == [[1, 1, 0], [0, 2, 1], [0, 0, 0]]


def test_classification_expected_label_outside_the_labels_is_an_evaluator_error() -> None:
    verdict = build("classification", {"labels": ["a", "b"]}).evaluate(item("a", "c"))
    assert verdict.error and "not one of the allowed labels" in verdict.error


def test_levenshtein_matches_rapidfuzz_documented_example() -> None:
    # rapidfuzz docs: Levenshtein.normalized_distance("lewenstein", "levenshtein") == 0.1818...
    verdict = build("levenshtein", {"threshold": 0.8}).evaluate(item("lewenstein", "levenshtein"))
    assert verdict.score == pytest.approx(1 - 2 / 11)
    assert verdict.passed
    assert (
        not build("levenshtein", {"threshold": 0.9})
        .evaluate(item("lewenstein", "levenshtein"))
        .passed
    )


def test_rouge_l_matches_the_rouge_score_readme_example() -> None:
    # rouge-score README: target "The quick brown fox jumps over the lazy dog",
    # prediction "The quick brown dog jumps on the log." -> LCS 5 of 9 / 8 words.
    verdict = build("rouge_l", {"threshold": 0.5}).evaluate(
        item("The quick brown dog jumps on the log.", "The quick brown fox jumps over the lazy dog")
    )
    precision, recall = 5 / 8, 5 / 9
    assert verdict.score == pytest.approx(2 * precision * recall / (precision + recall))
    assert verdict.passed


def test_bleu_identical_is_one_and_unrelated_is_near_zero() -> None:
    evaluator = build("bleu")
    same = evaluator.evaluate(item("The dog bit the man.", "The dog bit the man."))
    assert same.score == pytest.approx(1.0) and same.passed
    other = evaluator.evaluate(item("Completely different words here", "The dog bit the man."))
    assert other.score < 0.1 and not other.passed


def test_similarity_reference_can_name_a_column() -> None:
    evaluator = build("levenshtein", {"reference": "{{answer}}", "threshold": 0.99})
    assert evaluator.evaluate(item("Paris", None, answer="paris")).passed


@pytest.mark.parametrize(
    ("spec", "fields", "passed", "error"),
    [
        ("latency:max_ms=500", {"latency_ms": 420.0}, True, False),
        ("latency:max_ms=500", {"latency_ms": 501.0}, False, False),
        ("latency", {}, False, True),
        ("cost:max_usd=0.001", {"cost_usd": 0.0004}, True, False),
        ("cost:max_usd=0.001", {"cost_usd": 0.002}, False, False),
        ("cost", {}, False, True),
        ("tokens:max_tokens=100", {"prompt_tokens": 60, "completion_tokens": 40}, True, False),
        ("tokens:max_tokens=100", {"prompt_tokens": 60, "completion_tokens": 41}, False, False),
        (
            "tokens:max_tokens=50,count=completion",
            {"prompt_tokens": 60, "completion_tokens": 41},
            True,
            False,
        ),
        ("tokens", {}, False, True),
    ],
)
def test_latency_cost_tokens(
    spec: str, fields: dict[str, float], passed: bool, error: bool
) -> None:
    verdict = parse_spec(spec).evaluate(EvalItem(output="x", **fields))  # type: ignore[arg-type]
    assert verdict.passed is passed
    assert bool(verdict.error) is error
