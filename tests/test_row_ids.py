"""Ids typed by people or sent by clients: digits that are not ASCII, or numbers no table
can hold, are simply not found (never a crash)."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from studio.core.errors import NotFoundError
from studio.core.ids import row_id
from studio.services.apps import create_app, get_app


@pytest.mark.parametrize(
    ("text", "expected"),
    [("42", 42), (" 7 ", 7), ("¹", None), ("٣", None), ("0", None), ("-1", None),
     ("2147483648", None), ("99999999999999999999", None), ("", None), (5, 5), (True, None)],
)  # fmt: skip
def test_row_id_accepts_only_ids_a_table_can_hold(text: object, expected: int | None) -> None:
    assert row_id(text) == expected  # type: ignore[arg-type]


def test_an_app_named_by_an_odd_number_is_not_found(session: Session) -> None:
    made = create_app(session=session, name="Marketing")
    assert get_app(session=session, ref=str(made.id)).name == "Marketing"
    for ref in ("¹", "2147483648", "99999999999999999999"):
        with pytest.raises(NotFoundError):
            get_app(session=session, ref=ref)
    with pytest.raises(NotFoundError):
        get_app(session=session, ref=2**40)
