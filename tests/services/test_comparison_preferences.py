"""Per-row preferences: blind order stable per person, one choice per row and person,
win rates with Wilson intervals, a Bradley-Terry ranking, kept when a contender is added."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session

from studio.core.errors import StudioError
from studio.services.comparison_preferences import (
    TIE,
    blind_order,
    preference_summary,
    set_preference,
)
from studio.services.comparisons import add_contender, create_comparison, parse_contender
from tests.services.test_comparisons import _app


def _comparison(session: Session) -> int:
    app_id, version_id = _app(session)
    comparison, _ = create_comparison(
        session=session, app_id=app_id, dataset_version_id=version_id,
        contenders=[parse_contender("variant:plain"), parse_contender("variant:fancy"),
                    parse_contender("model:mock/echo,temperature=0.7")],
    )  # fmt: skip
    return comparison.id or 0


def test_blind_order_is_shuffled_per_row_and_stable_per_person() -> None:
    keys = ["A", "B", "C"]
    orders = {tuple(blind_order(comparison_id=1, row_index=r, keys=keys)) for r in range(20)}
    assert len(orders) > 1  # not the same order on every row
    assert blind_order(comparison_id=1, row_index=5, keys=keys) == blind_order(
        comparison_id=1, row_index=5, keys=keys
    )
    assert sorted(blind_order(comparison_id=1, row_index=5, keys=keys)) == keys


def test_win_rates_ranking_and_replacing_a_choice(session: Session, mock_provider: Any) -> None:
    comparison_id = _comparison(session)
    choices = ["B"] * 6 + ["A"] * 3 + ["C"] + [TIE] * 2
    for row, winner in enumerate(choices):
        set_preference(session=session, comparison_id=comparison_id, row_index=row,
                       winner=winner, blind=True)  # fmt: skip
    set_preference(session=session, comparison_id=comparison_id, row_index=9, winner="B")
    summary = preference_summary(session=session, comparison_id=comparison_id)
    assert summary["rows_judged"] == 12 and summary["ties"] == 2
    wins = {c["key"]: (c["wins"], c["judged"]) for c in summary["contenders"]}
    assert wins == {"A": (3, 10), "B": (7, 10), "C": (0, 10)}  # row 9 changed C -> B
    b = next(c for c in summary["contenders"] if c["key"] == "B")
    assert b["win_rate"]["low"] == pytest.approx(0.3968, abs=1e-3)  # Wilson, 7 of 10
    assert [r["key"] for r in summary["ranking"]] == ["B", "A", "C"]
    assert "ties left out" in summary["sentence"]

    add_contender(session=session, comparison_id=comparison_id,
                  contender=parse_contender("model:mock/echo,max_tokens=8"))  # fmt: skip
    after = preference_summary(session=session, comparison_id=comparison_id)
    assert after["rows_judged"] == 12  # kept when the comparison grows
    d = next(c for c in after["contenders"] if c["key"] == "D")
    assert d["judged"] == 0  # never shown, so never judged


def test_a_winner_must_be_a_shown_contender(session: Session, mock_provider: Any) -> None:
    comparison_id = _comparison(session)
    with pytest.raises(StudioError, match="not a contender"):
        set_preference(session=session, comparison_id=comparison_id, row_index=0, winner="Z")
    with pytest.raises(StudioError, match="not among the outputs shown"):
        set_preference(session=session, comparison_id=comparison_id, row_index=0, winner="C",
                       shown=["A", "B"])  # fmt: skip
