"""A human review's CSVs (every rating, the summary) and ratings imported from a sheet."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from sqlmodel import Session, func, select

from studio.core.errors import DatasetError
from studio.core.identity import acting_as
from studio.core.templates import PromptTemplate
from studio.services.apps import create_app
from studio.services.datasets import upload_dataset
from studio.services.review_export import export_ratings, export_summary, import_ratings
from studio.services.review_results import review_results
from studio.services.review_setup import ReviewSpec, create_review
from studio.services.reviews import next_item, rate
from studio.services.runs import RunConfig, create_run, run_sync
from studio.services.users import actor_for_user, create_user
from studio.store.tables import ReviewItem, ReviewRating

CSV = "city\n" + "".join(f"City {i}\n" for i in range(9)) + "=SUM(A1:A2)\n"


def _rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


@pytest.fixture
def review(session: Session, mock_provider: Any) -> dict[str, Any]:
    app = create_app(session=session, name="Cities")
    version = upload_dataset(
        session=session, app_id=app.id or 0, name="c", data=CSV.encode(), filename="c.csv"
    )
    session.commit()
    run = create_run(
        session=session, app_id=app.id or 0, dataset_version_id=version.id or 0,
        config=RunConfig(model="mock/echo", prompt=PromptTemplate(kind="completion",
                                                                  template="{{city}}")),
    )  # fmt: skip
    session.commit()
    run_sync(run_id=run.id or 0)
    spec = ReviewSpec(
        name="check", task="Say the city", good="the city", bad="anything else",
        source_kind="run", source_id=run.id or 0, raters_per_item=2, item_order="source",
    )  # fmt: skip
    made = create_review(session=session, app_id=app.id or 0, spec=spec)
    raters = [
        actor_for_user(create_user(session=session, name=n, password="a long password 1",
                                   role="reviewer"))
        for n in ("rita", "ravi")
    ]  # fmt: skip
    return {"id": made.id, "raters": raters}


def _rate_everything(session: Session, review: dict[str, Any]) -> None:
    for who in review["raters"]:
        with acting_as(who):
            while (item := next_item(session=session, review_id=review["id"])) is not None:
                answer = "good" if (item.row_index or 0) % 3 else "bad"
                rate(session=session, review_id=review["id"], item_id=item.item_id,
                     rating=answer, comment="ok")  # fmt: skip


def test_the_ratings_csv_holds_every_rating_with_formulas_escaped(
    session: Session, review: dict[str, Any]
) -> None:
    _rate_everything(session, review)
    rows = _rows(export_ratings(session=session, review_id=review["id"]))
    assert len(rows) == 20
    assert {r["rater"] for r in rows} == {"rita", "ravi"}
    assert rows[0].keys() >= {"item", "row", "contender", "output", "rating", "comment"}
    formula = [r for r in rows if "SUM" in r["output"]]
    assert formula and all(not r["output"].startswith("=") for r in formula)
    summary = _rows(export_summary(session=session, review_id=review["id"]))
    assert summary[0]["sentence"].startswith("mock/echo") and summary[-1]["what"] == "Cohen's kappa"


def test_an_import_with_bad_lines_saves_nothing_and_names_each_line(
    session: Session, review: dict[str, Any]
) -> None:
    item_ids = session.exec(select(ReviewItem.id).where(ReviewItem.review_id == review["id"])).all()
    sheet = (
        "item,rater,rating,comment\n"
        f"{item_ids[0]},sam,good,fine\n"
        f"{item_ids[1]},sam,meh,\n"
        "99999,sam,bad,\n"
        f"{item_ids[2]},,bad,\n"
    )
    with pytest.raises(DatasetError) as refused:
        import_ratings(session=session, review_id=review["id"], data=sheet.encode())
    message = str(refused.value)
    assert "line 3: rating 'meh' is not one of good, bad, skip" in message
    assert "line 4: no item '99999'" in message and "line 5: the rater needs a name" in message
    assert session.exec(select(func.count()).select_from(ReviewRating)).one() == 0
    with pytest.raises(DatasetError, match="no rating column"):
        import_ratings(session=session, review_id=review["id"], data=b"item,rater\n1,sam\n")
    with pytest.raises(DatasetError, match="not UTF-8"):
        import_ratings(session=session, review_id=review["id"], data=b"item,rater,rating\n\xff")


def test_imported_ratings_count_in_the_results_and_a_second_import_replaces(
    session: Session, review: dict[str, Any]
) -> None:
    item_ids = session.exec(
        select(ReviewItem.id).where(ReviewItem.review_id == review["id"])
        .order_by(ReviewItem.position)  # type: ignore[arg-type]
    ).all()  # fmt: skip
    lines = "".join(f"{i},sam,good,\n{i},kim,good,\n" for i in item_ids[:4])
    assert (
        import_ratings(
            session=session, review_id=review["id"], data=f"item,rater,rating\n{lines}".encode()
        )
        == 8
    )
    again = f"item,rater,rating\n{item_ids[0]},sam,BAD\n".encode()
    assert import_ratings(session=session, review_id=review["id"], data=again) == 1
    results = review_results(session=session, review_id=review["id"])
    assert results["contenders"][0]["decided"] == 3  # item 0 is now a 1-1 tie
    sources = set(session.exec(select(ReviewRating.source)).all())
    assert sources == {"import"}
