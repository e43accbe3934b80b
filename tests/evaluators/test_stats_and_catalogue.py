"""Intervals against known values; pass@k and pass^k; the catalogue and its plug-in hook."""

from __future__ import annotations

import random
from importlib.metadata import EntryPoint
from typing import Any

import pytest

import studio.evaluators as evaluators
from studio.core.errors import ConfigError
from studio.evaluators import EvalItem, Evaluator, EvaluatorOptions, Verdict, catalogue
from studio.evaluators.stats import (
    flaky_rows,
    interval_sentence,
    mean_interval,
    pass_at_k,
    pass_hat_k,
    wilson_interval,
)


@pytest.mark.parametrize(
    ("passed", "total", "low", "high"),
    [
        (8, 10, 0.4902, 0.9433),  # the textbook example (Wilson 1927; statsmodels gives the same)
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (50, 100, 0.4038, 0.5962),
    ],
)
def test_wilson_interval_known_values(passed: int, total: int, low: float, high: float) -> None:
    interval = wilson_interval(passed, total)
    assert interval is not None
    assert interval.estimate == pytest.approx(passed / total)
    assert interval.low == pytest.approx(low, abs=1e-4)
    assert interval.high == pytest.approx(high, abs=1e-4)


def test_no_rows_judged_has_no_interval() -> None:
    assert wilson_interval(0, 0) is None
    assert mean_interval([]) is None


@pytest.mark.parametrize("n", [400, 5_000])  # scipy's BCa; the multinomial draw above 1,000
def test_bootstrap_interval_of_a_mean_matches_the_normal_approximation_and_is_repeatable(
    n: int,
) -> None:
    rng = random.Random(7)
    scores = [float(rng.random() < 0.5) for _ in range(n)]
    interval = mean_interval(scores)
    assert interval is not None
    half = 1.96 * (interval.estimate * (1 - interval.estimate) / len(scores)) ** 0.5
    assert interval.low == pytest.approx(interval.estimate - half, abs=half / 8)
    assert interval.high == pytest.approx(interval.estimate + half, abs=half / 8)
    assert mean_interval(scores) == interval  # a fixed seed: the report reads the same twice
    assert mean_interval([0.7, 0.7, 0.7]) == mean_interval([0.7])


def test_pass_at_k_and_pass_hat_k() -> None:
    # 5 samples of which 2 pass: any of 2 passes with 1 - C(3,2)/C(5,2) = 0.7; both pass: 0.1.
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)
    assert pass_hat_k(5, 2, 2) == pytest.approx(0.1)
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4) == pass_hat_k(5, 2, 1)
    assert pass_at_k(5, 4, 2) == 1.0
    assert pass_hat_k(5, 0, 1) == 0.0
    with pytest.raises(ValueError):
        pass_at_k(3, 2, 4)


def test_flaky_rows_are_those_whose_samples_disagree() -> None:
    assert flaky_rows({3: [True, True], 1: [True, False, True], 2: [False], 5: [False, True]}) == [
        1,
        5,
    ]


def test_interval_sentence_says_what_it_means() -> None:
    interval = wilson_interval(8, 10)
    assert interval is not None
    sentence = interval_sentence(interval)
    assert sentence.startswith("Pass rate 80% (95% CI 49% to 94%)")
    assert "true pass rate most likely lies" in sentence


def test_catalogue_has_every_built_in_with_described_bounded_options() -> None:
    found = catalogue()
    for wanted in (
        "exact_match",
        "contains",
        "contains_any",
        "contains_all",
        "not_contains",
        "starts_with",
        "ends_with",
        "regex",
        "is_json",
        "json_schema",
        "json_field",
        "length",
        "classification",
        "levenshtein",
        "rouge_l",
        "bleu",
        "semantic_similarity",
        "llm_judge",
        "latency",
        "cost",
        "tokens",
    ):
        assert wanted in found
    for cls in found.values():
        assert cls.name and cls.description.endswith(".")
        for name, field in cls.Options.model_fields.items():
            assert field.description, f"{cls.id}.{name} needs a description for the form"
    with pytest.raises(ConfigError, match="Unknown evaluator 'nope'"):
        evaluators.evaluator_class("nope")


class Shouting(Evaluator):
    id = "shouting"
    name = "Shouting"
    family = "text"
    description = "The output is in capitals."

    class Options(EvaluatorOptions):
        pass

    def evaluate(self, item: EvalItem) -> Verdict:
        return Verdict.check(item.output.isupper(), "Capitals." if item.output.isupper() else "No.")


def test_a_third_party_package_adds_an_evaluator_through_an_entry_point(monkeypatch: Any) -> None:
    point = EntryPoint(
        name="shouting", value=f"{__name__}:Shouting", group=evaluators.ENTRY_POINT_GROUP
    )
    broken = EntryPoint(
        name="broken", value="no_such_module:Thing", group=evaluators.ENTRY_POINT_GROUP
    )
    monkeypatch.setattr(evaluators, "entry_points", lambda group: [broken, point])
    monkeypatch.setattr(evaluators, "_loaded", False)
    monkeypatch.setattr(evaluators, "_CATALOGUE", {})
    found = catalogue()
    assert "shouting" in found and "exact_match" in found  # a broken plug-in is skipped
    assert evaluators.parse_spec("shouting").evaluate(EvalItem(output="HELLO")).passed
