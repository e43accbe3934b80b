"""Paired statistics against hand-computed values and the libraries' own results."""

from __future__ import annotations

import math

import pytest

from studio.evaluators.paired import (
    holm,
    median_interval,
    paired_scores,
    paired_verdicts,
    rows_needed,
    verdict_sentence,
)


def _pairs(both: int, only_a: int, only_b: int, neither: int) -> tuple[list[bool], list[bool]]:
    a = [True] * both + [True] * only_a + [False] * only_b + [False] * neither
    b = [True] * both + [False] * only_a + [True] * only_b + [False] * neither
    return a, b


def test_mcnemar_exact_is_twice_the_binomial_tail_of_the_discordant_rows() -> None:
    result = paired_verdicts(*_pairs(both=50, only_a=2, only_b=12, neither=36))
    assert result is not None
    # 14 discordant rows, 2 of them for A: p = 2 * P(X <= 2), X ~ Bin(14, 1/2)
    expected = 2 * sum(math.comb(14, k) for k in range(3)) / 2**14
    assert result.p_value == pytest.approx(expected)
    assert (result.rows, result.only_a, result.only_b) == (100, 2, 12)
    assert result.difference.estimate == pytest.approx(0.10)
    assert result.needed_rows is None  # significant: no estimate needed


def test_paired_difference_interval_matches_the_normal_approximation() -> None:
    result = paired_verdicts(*_pairs(both=100, only_a=6, only_b=20, neither=74))
    assert result is not None
    d = result.difference
    assert d.estimate == pytest.approx(0.07)
    half = 1.96 * math.sqrt((0.03 + 0.10 - 0.07**2) / 200)
    assert d.low == pytest.approx(0.07 - half, abs=0.01)
    assert d.high == pytest.approx(0.07 + half, abs=0.01)
    sentence = verdict_sentence("A", "B", result)
    assert sentence.startswith("B passes 14 more of 200 rows than A (+7.0 points, 95% CI +")
    assert "unlikely to be chance" in sentence


def test_no_discordant_rows_means_no_difference_and_no_row_estimate() -> None:
    result = paired_verdicts(*_pairs(both=30, only_a=0, only_b=0, neither=10))
    assert result is not None
    assert result.p_value == 1.0 and result.difference.estimate == 0.0
    assert result.needed_rows is None
    assert "no difference at all" in verdict_sentence("A", "B", result)


def test_a_small_difference_says_how_many_rows_would_be_needed() -> None:
    result = paired_verdicts(*_pairs(both=20, only_a=3, only_b=5, neither=12))
    assert result is not None
    assert result.p_value > 0.05
    assert result.needed_rows == rows_needed(3 / 40, 5 / 40)
    assert "not significant (at this difference about" in verdict_sentence("A", "B", result)


def test_rows_needed_follows_connors_formula() -> None:
    # p10 = 0.1, p01 = 0.2: (1.96 sqrt(.3) + 0.8416 sqrt(.29))^2 / .01 = 233.1 -> 234
    assert rows_needed(0.1, 0.2) == 234
    assert rows_needed(0.1, 0.1) is None


def test_wilcoxon_and_paired_mean_difference() -> None:
    a = [0.0] * 10
    b = [i / 10 for i in range(1, 11)]
    result = paired_scores(a, b)
    assert result is not None
    assert result.p_value == pytest.approx(2 / 1024)  # all ten differences positive: exact
    assert result.difference.estimate == pytest.approx(0.55)
    assert result.difference.low < 0.55 < result.difference.high
    same = paired_scores([0.5, 0.7], [0.5, 0.7])
    assert same is not None and same.p_value == 1.0 and same.difference.estimate == 0.0
    with pytest.raises(ValueError):
        paired_scores([0.1], [0.1, 0.2])


def test_holm_matches_the_textbook_step_down() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([]) == []


def test_median_interval_uses_order_statistics() -> None:
    interval = median_interval(list(range(1, 101)))
    assert interval is not None
    assert interval.estimate == 50.5
    assert (interval.low, interval.high) == (40, 61)
    small = median_interval([5.0, 1.0, 3.0])
    assert small is not None and small.estimate == 3.0 and (small.low, small.high) == (1.0, 5.0)
    assert median_interval([]) is None
