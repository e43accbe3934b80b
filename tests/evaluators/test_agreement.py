"""Agreement statistics against published worked examples and the libraries' own values;
the edge cases read as sentences, never NaN."""

from __future__ import annotations

import math

import pytest

from studio.evaluators.agreement import agreement, judge_agreement, kappa_reading, majority


def _two_raters(pairs: list[tuple[str, str]]) -> dict[int, dict[str, str]]:
    return {i: {"ann": a, "ben": b} for i, (a, b) in enumerate(pairs)}


def test_cohen_kappa_of_the_textbook_example_is_0_4() -> None:
    # 50 proposals: both yes 20, only the first yes 5, only the second yes 10, both no 15
    pairs = [("yes", "yes")] * 20 + [("yes", "no")] * 5 + [("no", "yes")] * 10
    pairs += [("no", "no")] * 15
    result = agreement(_two_raters(pairs))
    assert result.statistic == "Cohen's kappa"
    assert result.value == pytest.approx(0.4)
    assert result.percent == pytest.approx(0.7)
    assert "0.40" in result.sentence and "fair" in result.sentence


FLEISS_TABLE = [  # 10 subjects, 14 raters, 5 categories (Fleiss 1971, as usually quoted)
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_fleiss_kappa_of_the_worked_example_is_0_210() -> None:
    ratings: dict[int, dict[int, int]] = {}
    for subject, counts in enumerate(FLEISS_TABLE):
        given = [category for category, n in enumerate(counts, 1) for _ in range(n)]
        ratings[subject] = dict(enumerate(given))
    result = agreement(ratings)
    assert result.statistic == "Fleiss' kappa"
    assert result.value == pytest.approx(0.210, abs=0.0005)
    assert "fair" in result.sentence and result.raters == 14


# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", example C:
# four observers, twelve units, values 1-5, blanks are missing.
KRIPPENDORFF = {
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
}


def _by_unit() -> dict[int, dict[str, int]]:
    units: dict[int, dict[str, int]] = {}
    for rater, values in KRIPPENDORFF.items():
        for unit, value in enumerate(values):
            if value is not None:
                units.setdefault(unit, {})[rater] = value
    return units


def test_krippendorff_alpha_of_the_published_example_is_0_743() -> None:
    result = agreement(_by_unit())
    assert result.statistic == "Krippendorff's alpha"
    assert result.value == pytest.approx(0.743, abs=0.0005)
    assert "tentative" in result.sentence
    assert result.items == 11  # unit 12 has one value only: it cannot be paired


def test_ordinal_alpha_matches_the_library() -> None:
    import krippendorff
    import numpy as np

    data = np.array(
        [[np.nan if v is None else v for v in values] for values in KRIPPENDORFF.values()],
        dtype=float,
    )
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal")
    result = agreement(_by_unit(), level="ordinal")
    assert result.value == pytest.approx(expected)


def test_everyone_agreeing_on_one_answer_is_a_sentence_not_nan() -> None:
    result = agreement(_two_raters([("good", "good")] * 6))
    assert result.value is None and result.percent == 1.0
    assert "Every rating is 'good'" in result.sentence
    assert "cannot be measured" in result.sentence


def test_perfect_agreement_over_two_answers_is_one() -> None:
    result = agreement(_two_raters([("good", "good"), ("bad", "bad")] * 3))
    assert result.value == pytest.approx(1.0)
    assert "almost perfect" in result.sentence


def test_missing_ratings_and_single_raters_are_sentences() -> None:
    assert "nobody has rated" in agreement({}).sentence
    one = agreement({1: {"ann": "good"}, 2: {"ann": "bad"}})
    assert one.value is None and "one person has rated" in one.sentence
    apart = agreement({1: {"ann": "good"}, 2: {"ben": "bad"}})
    assert apart.value is None and "No item has been rated by two people" in apart.sentence


def test_two_raters_with_gaps_use_alpha_not_kappa() -> None:
    ratings = _two_raters([("good", "good"), ("bad", "bad"), ("good", "bad")] * 2)
    ratings[99] = {"ann": "good"}  # one item only the first rater saw
    result = agreement(ratings)
    assert result.statistic == "Krippendorff's alpha"
    assert result.value is not None and not math.isnan(result.value)


def test_readings_follow_landis_and_koch() -> None:
    assert kappa_reading(-0.1).startswith("less than chance")
    assert [kappa_reading(v) for v in (0.1, 0.3, 0.5, 0.7, 0.9)] == [
        "slight", "fair", "moderate", "substantial", "almost perfect"
    ]  # fmt: skip


def test_majority_is_none_on_a_tie() -> None:
    assert majority(["good", "good", "bad"]) == "good"
    assert majority(["good", "bad"]) is None
    assert majority([]) is None


def test_a_judge_is_measured_against_the_human_majority() -> None:
    humans = {1: ["good", "good"], 2: ["bad", "bad"], 3: ["good", "bad"], 4: ["good"]}
    judge = {1: "good", 2: "good", 3: "good", 4: "good"}
    result = judge_agreement(humans, judge)
    assert result.items == 3  # item 3 has no majority
    assert result.disagreements == [2]
    assert result.labels == ["bad", "good"]
    assert result.confusion == [[0, 1], [0, 2]]  # rows: people, columns: judge
    assert result.percent == pytest.approx(2 / 3)
    assert "67%" in result.sentence


def test_a_judge_that_always_agrees_on_one_answer_is_a_sentence() -> None:
    result = judge_agreement({1: ["good"], 2: ["good"]}, {1: "good", 2: "good"})
    assert result.kappa is None and "not defined" in result.sentence
