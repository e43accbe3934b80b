"""Per-row preferences in a comparison: which output a person found better (or a tie).

In blind mode the page hides contender names and shows the outputs in an order
shuffled per row (:func:`blind_order`, the same order every time that person
opens that row). A preference is stored with who made it (an anonymous "you"
until accounts exist) and the order it was shown in; one per row and person,
a later choice replaces an earlier one, and all of them are kept when the
comparison gains a contender.

The summary gives each contender's win rate (rows where it was preferred, over
the rows judged without a tie, with a Wilson interval) and, with more than two
contenders, a Bradley-Terry ranking from the pairwise wins (``choix``: the
preferred output beats every other output shown in that row).

Rules: reading needs access to the comparison's app; recording also the admin or member
role (:mod:`studio.services.app_access`).
"""

from __future__ import annotations

import random
from typing import Any

from sqlmodel import Session, select

from studio.core.errors import StudioError
from studio.evaluators.stats import bradley_terry_ranking, wilson_interval
from studio.services.comparisons import get_comparison
from studio.services.members import require_member_role
from studio.store.tables import ComparisonPreference, utcnow

__all__ = ["TIE", "blind_order", "preference_summary", "set_preference"]

TIE = "tie"


def blind_order(
    *, comparison_id: int, row_index: int, keys: list[str], rater: str = "you"
) -> list[str]:
    """The contenders of a row in a shuffled order that is stable for this person."""
    order = list(keys)
    random.Random(f"{comparison_id}:{row_index}:{rater}").shuffle(order)
    return order


def set_preference(
    *,
    session: Session,
    comparison_id: int,
    row_index: int,
    winner: str,
    shown: list[str] | None = None,
    blind: bool = False,
    rater: str = "you",
) -> ComparisonPreference:
    require_member_role("record preferences")
    comparison = get_comparison(session=session, comparison_id=comparison_id)
    keys = [c["key"] for c in comparison.contenders]
    if winner != TIE and winner not in keys:
        raise StudioError(
            f"'{winner}' is not a contender of this comparison.",
            hint=f"Choose one of {', '.join(keys)}, or '{TIE}'.",
        )
    shown = list(shown or keys)
    if not set(shown) <= set(keys) or (winner != TIE and winner not in shown):
        raise StudioError("The preferred output was not among the outputs shown.")
    found = session.exec(
        select(ComparisonPreference).where(
            ComparisonPreference.comparison_id == comparison_id,
            ComparisonPreference.row_index == row_index,
            ComparisonPreference.rater == rater,
        )
    ).first()
    pref = found or ComparisonPreference(
        comparison_id=comparison_id, row_index=row_index, winner=winner, rater=rater
    )
    pref.winner, pref.shown, pref.blind, pref.created_at = winner, shown, blind, utcnow()
    session.add(pref)
    session.commit()
    session.refresh(pref)
    return pref


def preference_summary(*, session: Session, comparison_id: int) -> dict[str, Any]:
    comparison = get_comparison(session=session, comparison_id=comparison_id)
    keys = [c["key"] for c in comparison.contenders]
    labels = {c["key"]: c["label"] for c in comparison.contenders}
    prefs = session.exec(
        select(ComparisonPreference).where(ComparisonPreference.comparison_id == comparison_id)
    ).all()
    decided = [p for p in prefs if p.winner != TIE]
    ties = len(prefs) - len(decided)
    figures = []
    for key in keys:
        shown = [p for p in decided if key in (p.shown or keys)]
        wins = sum(1 for p in shown if p.winner == key)
        rate = wilson_interval(wins, len(shown))
        figures.append(
            {"key": key, "label": labels[key], "wins": wins, "judged": len(shown),
             "win_rate": rate.as_dict() if rate else None}
        )  # fmt: skip
    pairs = [
        (keys.index(p.winner), keys.index(other))
        for p in decided
        for other in (p.shown or keys)
        if other != p.winner and other in keys
    ]
    ranking = bradley_terry_ranking(keys, labels, pairs)
    return {
        "rows_judged": len(prefs),
        "ties": ties,
        "contenders": figures,
        "ranking": ranking,
        "sentence": (
            f"{len(prefs)} row(s) judged, {ties} tie(s). A win rate is the share of judged rows "
            "(ties left out) where that output was preferred; its 95% interval says how sure "
            "that is with this many rows."
            + (" The ranking orders contenders by their Bradley-Terry strength." if ranking else "")
        ),
    }
