"""How well human raters agree, computed by the libraries that define the statistics.

:func:`agreement` takes every rating as ``item → rater → category`` and picks the
statistic the data allows:

* two raters who both rated every item: **Cohen's kappa** (``sklearn``; linearly
  weighted for an ordinal 1-5 scale);
* more raters, the same number of ratings on every item: **Fleiss' kappa**
  (``statsmodels``);
* items with different numbers of ratings: **Krippendorff's alpha** (``krippendorff``;
  nominal, or ordinal for a scale).

Percent agreement (the share of rated pairs that agree, per item, averaged) is always
given beside it. Each result carries a sentence that reads the value in words (Landis
and Koch's bands for kappa, Krippendorff's 0.667 / 0.8 thresholds for alpha) and the
edge cases are sentences, never NaN: nothing rated twice yet, every rating in one
category (agreement beyond chance is not defined), a single rater.

:func:`judge_agreement` compares a judge's verdicts with the human majority per item:
Cohen's kappa, the confusion matrix and the items where they differ.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Agreement",
    "JudgeAgreement",
    "agreement",
    "judge_agreement",
    "kappa_reading",
    "majority",
]

Level = Literal["nominal", "ordinal"]
Ratings = Mapping[Any, Mapping[Any, Any]]


@dataclass(frozen=True)
class Agreement:
    """Agreement among raters. ``value`` is ``None`` when the statistic is not defined;
    ``sentence`` then says why."""

    statistic: str  # "Cohen's kappa", "Fleiss' kappa", "Krippendorff's alpha", or ""
    value: float | None
    percent: float | None  # share of agreeing rater pairs, 0..1
    items: int  # items with at least two ratings (the ones agreement is measured on)
    raters: int
    sentence: str


@dataclass(frozen=True)
class JudgeAgreement:
    kappa: float | None
    percent: float | None
    items: int
    labels: list[str]
    confusion: list[list[int]]  # rows: human majority, columns: judge
    disagreements: list[Hashable] = field(default_factory=list)
    sentence: str = ""


def kappa_reading(value: float) -> str:
    """Landis and Koch (1977): the usual words for a kappa."""
    if value < 0:
        return "less than chance (raters disagree more often than guessing would)"
    for limit, words in ((0.2, "slight"), (0.4, "fair"), (0.6, "moderate"), (0.8, "substantial")):
        if value <= limit:
            return words
    return "almost perfect"


def _alpha_reading(value: float) -> str:
    if value >= 0.8:
        return "reliable (at least 0.8)"
    if value >= 0.667:
        return "tentative (between 0.667 and 0.8: use with care)"
    return "unreliable (below 0.667)"


def _percent(ratings: Sequence[Sequence[Hashable]]) -> float | None:
    shares: list[float] = []
    for given in ratings:
        n = len(given)
        if n < 2:
            continue
        counts = Counter(given)
        shares.append(sum(c * (c - 1) for c in counts.values()) / (n * (n - 1)))
    return sum(shares) / len(shares) if shares else None


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def agreement(ratings: Ratings, *, level: Level = "nominal") -> Agreement:
    """Agreement of the raters in ``ratings`` (``item → rater → category``)."""
    rated = {item: dict(by) for item, by in ratings.items() if len(by) >= 2}
    raters = sorted({r for by in ratings.values() for r in by}, key=str)
    if len(raters) < 2:
        return Agreement(
            "", None, None, 0, len(raters),
            "Agreement needs at least two raters; so far "
            + ("one person has rated." if raters else "nobody has rated."),
        )  # fmt: skip
    if not rated:
        return Agreement(
            "", None, None, 0, len(raters),
            "No item has been rated by two people yet, so agreement cannot be measured.",
        )  # fmt: skip
    percent = _percent([list(by.values()) for by in rated.values()])
    categories = {c for by in rated.values() for c in by.values()}
    share = f"{percent:.0%}" if percent is not None else "n/a"
    if len(categories) == 1:
        only = next(iter(categories))
        return Agreement(
            "", None, percent, len(rated), len(raters),
            f"Every rating is {only!r}: the raters agree on all {len(rated)} items, but "
            "agreement beyond chance cannot be measured when only one answer was ever given.",
        )  # fmt: skip
    counts = {len(by) for by in rated.values()}
    complete_pair = len(raters) == 2 and all(len(by) == 2 for by in ratings.values())
    if complete_pair:
        from sklearn.metrics import cohen_kappa_score

        a = [str(rated[i][raters[0]]) for i in rated]
        b = [str(rated[i][raters[1]]) for i in rated]
        weights = "linear" if level == "ordinal" else None
        value = _finite(cohen_kappa_score(a, b, weights=weights))
        name = "Cohen's kappa" + (" (linearly weighted)" if weights else "")
    elif len(counts) == 1 and len(rated) == len(ratings):
        from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

        labels = sorted(categories, key=str)
        index = {c: k for k, c in enumerate(labels)}
        table, _ = aggregate_raters([[index[c] for c in by.values()] for by in rated.values()])
        value = _finite(fleiss_kappa(table, method="fleiss"))
        name = "Fleiss' kappa"
    else:
        value = _alpha(ratings, raters, level)
        name = "Krippendorff's alpha" + (" (ordinal)" if level == "ordinal" else "")
    if value is None:
        return Agreement(
            name, None, percent, len(rated), len(raters),
            f"{name} is not defined for these ratings; the raters agree on {share} of pairs.",
        )  # fmt: skip
    reading = _alpha_reading(value) if name.startswith("Krippendorff") else kappa_reading(value)
    sentence = (
        f"{name} is {value:.2f} over {len(rated)} items rated by {len(raters)} people: "
        f"{reading}. Raters agree on {share} of the pairs of ratings."
    )
    return Agreement(name, value, percent, len(rated), len(raters), sentence)


def _alpha(ratings: Ratings, raters: list[Hashable], level: Level) -> float | None:
    import krippendorff
    import numpy as np

    labels = sorted({c for by in ratings.values() for c in by.values()}, key=str)
    if level == "ordinal":
        code = {c: float(str(c)) for c in labels}  # a scale's categories are numbers
    else:
        code = {c: float(k) for k, c in enumerate(labels)}
    items = list(ratings)
    data = np.full((len(raters), len(items)), np.nan)
    for j, item in enumerate(items):
        for i, rater in enumerate(raters):
            if rater in ratings[item]:
                data[i, j] = code[ratings[item][rater]]
    value = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    return _finite(value)


def majority(votes: Sequence[Hashable]) -> Hashable | None:
    """The most given answer, or ``None`` on a tie (or no votes)."""
    if not votes:
        return None
    (first, n), *rest = Counter(votes).most_common()
    return None if rest and rest[0][1] == n else first


def judge_agreement(
    humans: Mapping[Any, Sequence[Any]], judge: Mapping[Any, Any]
) -> JudgeAgreement:
    """A judge's verdict per item against the human majority (items without a majority,
    or that the judge did not score, are left out)."""
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    pairs = [
        (item, majority(list(votes)), judge[item])
        for item, votes in humans.items()
        if item in judge and majority(list(votes)) is not None
    ]
    if not pairs:
        return JudgeAgreement(
            None, None, 0, [], [],
            sentence="No item has both a human majority and a judge's verdict yet.",
        )  # fmt: skip
    human = [str(h) for _, h, _ in pairs]
    machine = [str(m) for _, _, m in pairs]
    labels = sorted(set(human) | set(machine))
    matrix = (
        confusion_matrix(human, machine, labels=labels).tolist()
        if len(labels) > 1
        else [[len(pairs)]]
    )
    differ = [item for item, h, m in pairs if str(h) != str(m)]
    percent = 1 - len(differ) / len(pairs)
    if len(labels) == 1:
        return JudgeAgreement(
            None, percent, len(pairs), labels, matrix, differ,
            f"The judge and the people all answered {labels[0]!r} on {len(pairs)} items; "
            "kappa is not defined with a single answer.",
        )  # fmt: skip
    kappa = _finite(cohen_kappa_score(human, machine))
    words = kappa_reading(kappa) if kappa is not None else "not defined"
    sentence = (
        f"The judge agrees with the human majority on {percent:.0%} of {len(pairs)} items "
        f"(Cohen's kappa {kappa:.2f}: {words})."
        if kappa is not None
        else f"The judge agrees with the human majority on {percent:.0%} of {len(pairs)} items."
    )
    return JudgeAgreement(kappa, percent, len(pairs), labels, matrix, differ, sentence)
