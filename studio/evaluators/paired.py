"""Paired statistics: is contender B really better than the baseline A on the same rows?

Every test compares two contenders on the rows both answered (a row one of them
lacks, or where an evaluator could not judge, is left out and counted):

- pass/fail verdicts: McNemar's exact test on the discordant rows
  (``statsmodels``), and the difference in pass rate with a paired bootstrap
  interval. For pass/fail pairs a bootstrap resample is a multinomial draw over
  the four kinds of row (both pass, only A, only B, neither), so it is exact and
  fast at any size;
- numeric scores: the paired bootstrap interval of the mean difference and the
  Wilcoxon signed-rank test (``scipy.stats``);
- latency and cost: medians with a distribution-free interval (order statistics
  of the binomial, the classical interval for a median);
- with several contenders against one baseline, Holm's correction of the
  p-values (``statsmodels``);
- when a difference is not significant, the rows a McNemar test would need to
  find this difference with 80% power (Connor's formula for paired proportions).

Each result carries a plain sentence, written for the comparison page.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from studio.evaluators.stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, Interval, mean_interval

__all__ = [
    "ALPHA",
    "PairedScores",
    "PairedVerdicts",
    "holm",
    "median_interval",
    "paired_scores",
    "paired_verdicts",
    "rows_needed",
    "verdict_sentence",
]

ALPHA = 0.05
POWER = 0.8


@dataclass(frozen=True)
class PairedVerdicts:
    rows: int  # rows both contenders were judged on
    both: int  # both pass
    only_a: int  # the baseline passes, the contender fails
    only_b: int  # the contender passes, the baseline fails
    neither: int
    difference: Interval  # pass rate of B minus pass rate of A, in [-1, 1]
    p_value: float  # McNemar's exact test (two-sided)
    needed_rows: int | None  # rows needed to detect this difference, when not significant

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "difference": self.difference.as_dict()}


def paired_verdicts(a: Sequence[bool], b: Sequence[bool]) -> PairedVerdicts | None:
    """Baseline ``a`` against contender ``b``, row by row (same length, same rows)."""
    if len(a) != len(b):
        raise ValueError("paired verdicts need the same rows for both contenders")
    n = len(a)
    if n == 0:
        return None
    both = sum(1 for x, y in zip(a, b, strict=True) if x and y)
    only_a = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    only_b = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
    neither = n - both - only_a - only_b
    from statsmodels.stats.contingency_tables import mcnemar

    if only_a + only_b == 0:
        p_value = 1.0  # no discordant row: nothing suggests a difference
    else:
        p_value = float(mcnemar([[both, only_a], [only_b, neither]], exact=True).pvalue)
    difference = _paired_difference(n, both, only_a, only_b, neither)
    needed = None
    if p_value >= ALPHA:
        needed = rows_needed(only_a / n, only_b / n)
    return PairedVerdicts(n, both, only_a, only_b, neither, difference, p_value, needed)


def _paired_difference(n: int, both: int, only_a: int, only_b: int, neither: int) -> Interval:
    import numpy as np

    estimate = (only_b - only_a) / n
    if only_a + only_b == 0:
        return Interval(0.0, 0.0, 0.0)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    draws = rng.multinomial(n, [both / n, only_a / n, only_b / n, neither / n],
                            size=BOOTSTRAP_RESAMPLES)  # fmt: skip
    diffs = (draws[:, 2] - draws[:, 1]) / n
    low, high = np.percentile(diffs, [2.5, 97.5])
    return Interval(estimate, float(low), float(high))


def rows_needed(p_only_a: float, p_only_b: float, alpha: float = ALPHA) -> int | None:
    """Rows a two-sided McNemar test needs to detect ``p_only_b - p_only_a`` with 80%
    power (Connor 1987); None when the difference is zero (no number of rows would)."""
    from scipy.stats import norm

    d = abs(p_only_b - p_only_a)
    discordant = p_only_a + p_only_b
    if d == 0 or discordant == 0:
        return None
    z_alpha, z_beta = norm.ppf(1 - alpha / 2), norm.ppf(POWER)
    root = math.sqrt(max(discordant - d * d, 0.0))
    return math.ceil((z_alpha * math.sqrt(discordant) + z_beta * root) ** 2 / (d * d))


@dataclass(frozen=True)
class PairedScores:
    rows: int
    difference: Interval  # mean score of B minus mean score of A
    p_value: float  # Wilcoxon signed-rank (two-sided); 1.0 when every difference is zero

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "difference": self.difference.as_dict()}


def paired_scores(a: Sequence[float], b: Sequence[float]) -> PairedScores | None:
    if len(a) != len(b):
        raise ValueError("paired scores need the same rows for both contenders")
    if not a:
        return None
    diffs = [float(y) - float(x) for x, y in zip(a, b, strict=True)]
    # mean_interval clamps to [0, 1]: shift the differences from [-1, 1] and back
    shifted = mean_interval([(d + 1) / 2 for d in diffs])
    assert shifted is not None
    difference = Interval(2 * shifted.estimate - 1, 2 * shifted.low - 1, 2 * shifted.high - 1)
    if all(d == 0 for d in diffs):
        return PairedScores(len(diffs), Interval(0.0, 0.0, 0.0), 1.0)
    from scipy.stats import wilcoxon

    p_value = float(wilcoxon(diffs, zero_method="wilcox").pvalue)
    return PairedScores(len(diffs), difference, p_value)


def holm(p_values: Sequence[float], alpha: float = ALPHA) -> list[float]:
    """Holm-adjusted p-values (same order), for several contenders against one baseline."""
    if not p_values:
        return []
    from statsmodels.stats.multitest import multipletests

    return [float(p) for p in multipletests(list(p_values), alpha=alpha, method="holm")[1]]


def median_interval(values: Sequence[float], confidence: float = 0.95) -> Interval | None:
    """The median and a distribution-free interval from order statistics (binomial)."""
    data = sorted(float(v) for v in values)
    n = len(data)
    if n == 0:
        return None
    from scipy.stats import binom

    median = (data[(n - 1) // 2] + data[n // 2]) / 2
    tail = (1 - confidence) / 2
    # ranks of the order statistics (e.g. the 40th and 61st of 100 values)
    low = max(0, int(binom.ppf(tail, n, 0.5)) - 1)
    high = min(n - 1, int(binom.isf(tail, n, 0.5)))
    return Interval(median, data[low], data[high])


def verdict_sentence(
    name_a: str, name_b: str, result: PairedVerdicts, adjusted_p: float | None = None
) -> str:
    """``B passes 14 more of 200 rows than A (+7.0 points, 95% CI +2.4 to +11.6); McNemar
    p = 0.004: unlikely to be chance.``"""
    more = result.only_b - result.only_a
    p = result.p_value if adjusted_p is None else adjusted_p
    which = "McNemar p" if adjusted_p is None else "McNemar p (Holm-adjusted)"
    d = result.difference
    points = f"{d.estimate * 100:+.1f} points, 95% CI {d.low * 100:+.1f} to {d.high * 100:+.1f}"
    if more == 0:
        head = f"{name_b} passes as many of {result.rows} rows as {name_a} ({points})"
    else:
        word = "more" if more > 0 else "fewer"
        head = f"{name_b} passes {abs(more)} {word} of {result.rows} rows than {name_a} ({points})"
    if p < ALPHA:
        return f"{head}; {which} = {p:.3f}: unlikely to be chance."
    if result.needed_rows is None:
        tail = "no difference at all on these rows"
    else:
        tail = f"at this difference about {result.needed_rows:,} rows would be needed"
    return f"{head}; {which} = {p:.3f}: not significant ({tail})."
