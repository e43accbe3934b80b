"""The statistics of a report card: intervals, pass@k, pass^k, and flaky rows.

- A pass rate carries a Wilson 95% interval (``scipy.stats.binomtest``): the
  range of true pass rates that could plausibly have produced what was seen.
- A mean score carries a bootstrap 95% interval with a fixed seed, so a report
  reads the same twice: ``scipy.stats.bootstrap`` (BCa) up to 1,000 values; above
  that BCa's jackknife costs n² (14 s for 10,000 scores), so the percentile
  bootstrap is drawn from multinomial counts over the distinct scores (rounded
  to 3 decimals), the same resampling in a few milliseconds.
- With several samples per row: pass@k is the chance that at least one of k
  samples passes, pass^k the chance that all k pass (the unbiased estimators
  over the n samples actually drawn), and a row is *flaky* when its samples
  disagree.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Interval",
    "bradley_terry_ranking",
    "flaky_rows",
    "interval_sentence",
    "mean_interval",
    "pass_at_k",
    "pass_hat_k",
    "wilson_interval",
]

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2_000
BOOTSTRAP_SEED = 20261201
BCA_MAX_VALUES = 1_000


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high}


def wilson_interval(passed: int, total: int, confidence: float = CONFIDENCE) -> Interval | None:
    """The pass rate and its Wilson score interval; None when nothing was judged."""
    if total <= 0:
        return None
    if not 0 <= passed <= total:
        raise ValueError(f"passed ({passed}) must be between 0 and total ({total})")
    from scipy.stats import binomtest

    ci = binomtest(passed, total).proportion_ci(confidence_level=confidence, method="wilson")
    return Interval(passed / total, float(ci.low), float(ci.high))


def mean_interval(
    scores: Sequence[float],
    confidence: float = CONFIDENCE,
    *,
    bounds: tuple[float, float] = (0.0, 1.0),
) -> Interval | None:
    """The mean score and a bootstrap interval (BCa), kept within ``bounds`` (scores are
    0 to 1; a 1-to-5 rating passes ``(1, 5)``); a single value or all-equal values give a
    zero-width interval."""
    values = [float(s) for s in scores]
    if not values:
        return None
    if max(values) == min(values):
        return Interval(values[0], values[0], values[0])
    mean = math.fsum(values) / len(values)
    import numpy as np

    if len(values) > BCA_MAX_VALUES:
        return _multinomial_interval(np.asarray(values), mean, confidence, bounds)
    from scipy.stats import bootstrap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BCa warns on near-degenerate samples; we fall back
        result = bootstrap(
            (np.asarray(values),),
            np.mean,
            confidence_level=confidence,
            n_resamples=BOOTSTRAP_RESAMPLES,
            method="BCa",
            rng=np.random.default_rng(BOOTSTRAP_SEED),
        )
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    if math.isnan(low) or math.isnan(high):
        low, high = min(values), max(values)
    return Interval(mean, max(bounds[0], low), min(bounds[1], high))


def _multinomial_interval(
    values: Any, mean: float, confidence: float, bounds: tuple[float, float]
) -> Interval:
    import numpy as np

    distinct, counts = np.unique(np.round(values, 3), return_counts=True)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    draws = rng.multinomial(len(values), counts / len(values), size=BOOTSTRAP_RESAMPLES)
    means = draws @ distinct / len(values)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Interval(mean, max(bounds[0], float(low)), min(bounds[1], float(high)))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chance that at least one of k samples (of n drawn, c passing) passes: 1 - C(n-c,k)/C(n,k)."""
    _check(n, c, k)
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_hat_k(n: int, c: int, k: int) -> float:
    """Chance that all k samples (of n drawn, c passing) pass: C(c,k)/C(n,k) (pass^k)."""
    _check(n, c, k)
    return math.comb(c, k) / math.comb(n, k)


def _check(n: int, c: int, k: int) -> None:
    if not (0 <= c <= n and 1 <= k <= n):
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n (got n={n}, c={c}, k={k})")


def flaky_rows(verdicts_by_row: Mapping[int, Iterable[bool]]) -> list[int]:
    """Rows whose samples disagree (some pass, some fail), in row order."""
    return sorted(row for row, verdicts in verdicts_by_row.items() if len(set(verdicts)) > 1)


def interval_sentence(interval: Interval, what: str = "pass rate") -> str:
    """``Pass rate 82% (95% CI 74% to 88%): the true pass rate is most likely in this range.``"""
    return (
        f"{what.capitalize()} {interval.estimate:.0%} (95% CI {interval.low:.0%} to "
        f"{interval.high:.0%}): with this many rows, the true {what} most likely lies in "
        "this range."
    )


def bradley_terry_ranking(
    keys: Sequence[str], labels: Mapping[str, str], pairs: Sequence[tuple[int, int]]
) -> list[dict[str, Any]]:
    """Contenders ordered by their Bradley-Terry strength (``choix``, lightly regularised so
    a contender that never wins still gets a finite strength), from ``pairs`` of
    (winner index, loser index) into ``keys``; empty for two contenders (the win rates say
    it all) or when nothing was decided."""
    if len(keys) <= 2 or not pairs:
        return []
    import choix

    strengths = choix.ilsr_pairwise(len(keys), list(pairs), alpha=0.01)
    order = sorted(range(len(keys)), key=lambda i: -float(strengths[i]))
    return [
        {"key": keys[i], "label": labels[keys[i]], "strength": float(strengths[i])} for i in order
    ]
