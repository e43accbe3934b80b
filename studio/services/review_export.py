"""A human review as CSV (every rating, and the summary), and ratings imported from a CSV
collected elsewhere (a spreadsheet, another tool).

* :func:`export_ratings`: one line per rating: the item, its position and dataset row,
  the contender (for A/B: the contender chosen, and both that were shown), the row's
  inputs, the output, the rater, the rating, the comment, where it came from and when.
* :func:`export_summary`: per contender its figures and their sentence, then agreement.
* :func:`import_ratings`: columns ``item`` (the item id, as exported), ``rater``,
  ``rating`` and optionally ``comment``; every line is checked first and the errors
  are listed by line; nothing is saved unless every line is right. A rating imported
  again for the same item and rater replaces the earlier one.

Cells a spreadsheet would run as formulas are escaped (:mod:`studio.core.export`). The
app's people (administrators and members) export and import.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from sqlmodel import Session, col, select

from studio.core.errors import DatasetError
from studio.core.export import to_csv
from studio.core.ids import row_id
from studio.services.review_results import review_results
from studio.services.reviews import RATINGS, SKIP, manageable_review
from studio.store.tables import ReviewItem, ReviewRating, utcnow

__all__ = ["RATING_COLUMNS", "export_ratings", "export_summary", "import_ratings"]

RATING_COLUMNS = [
    "review", "item", "position", "row", "contender", "shown", "inputs", "output", "rater",
    "rating", "comment", "source", "rated_at",
]  # fmt: skip
MAX_IMPORT_BYTES = 20_000_000
MAX_PROBLEMS = 20


def export_ratings(*, session: Session, review_id: int) -> bytes:
    """Every rating of the review (skips included, marked so), in item order."""
    review = manageable_review(session=session, review_id=review_id, action="export reviews")
    items = {
        i.id: i
        for i in session.exec(select(ReviewItem).where(ReviewItem.review_id == review_id)).all()
    }
    ratings = session.exec(
        select(ReviewRating)
        .where(ReviewRating.review_id == review_id)
        .order_by(col(ReviewRating.item_id), col(ReviewRating.rater))
    ).all()
    rows: list[dict[str, Any]] = []
    for r in ratings:
        item = items[r.item_id]
        keys = [o.get("key", "") for o in item.outputs]
        if review.kind == "pairwise":
            chosen = {"a": keys[0], "b": keys[1]}.get(r.rating, "")
            contender, output = chosen, ""
            if chosen:
                output = item.outputs[keys.index(chosen)].get("output", "")
        else:
            contender, output = keys[0], item.outputs[0].get("output", "")
        rows.append(
            {"review": review.id, "item": item.id, "position": item.position + 1,
             "row": item.row_index, "contender": contender, "shown": " vs ".join(keys),
             "inputs": json.dumps(item.inputs, ensure_ascii=False), "output": output,
             "rater": r.rater, "rating": r.rating, "comment": r.comment, "source": r.source,
             "rated_at": r.updated_at.isoformat(timespec="seconds")}
        )  # fmt: skip
    return to_csv(rows, RATING_COLUMNS)


def export_summary(*, session: Session, review_id: int) -> bytes:
    """Per contender its figures and sentence, then one line for the agreement."""
    results = review_results(session=session, review_id=review_id)
    rows: list[dict[str, Any]] = []
    for c in results["contenders"]:
        figure = c.get("hit_rate") or c.get("mean") or c.get("win_rate") or {}
        rows.append(
            {"what": c["label"], "contender": c["key"],
             "counted": c.get("decided", c.get("rated", c.get("judged", 0))),
             "estimate": figure.get("estimate"), "low": figure.get("low"),
             "high": figure.get("high"), "sentence": c["sentence"]}
        )  # fmt: skip
    agreed = results["agreement"]
    rows.append(
        {"what": agreed["statistic"] or "agreement", "contender": "", "counted": agreed["items"],
         "estimate": agreed["value"], "low": None, "high": None, "sentence": agreed["sentence"]}
    )  # fmt: skip
    return to_csv(rows, ["what", "contender", "counted", "estimate", "low", "high", "sentence"])


def _pairwise_value(value: str, item: ReviewItem) -> str | None:
    keys = [str(o.get("key", "")).lower() for o in item.outputs]
    if value in ("a", "b", "tie"):
        # a contender key ("A", "B", ...) names the contender; "tie" is a tie
        if value in keys:
            return "a" if keys.index(value) == 0 else "b"
        return value if value == "tie" else None
    if value in keys:
        return "a" if keys.index(value) == 0 else "b"
    return None


def import_ratings(*, session: Session, review_id: int, data: bytes) -> int:
    """Import ratings from CSV bytes; returns how many lines were saved."""
    review = manageable_review(session=session, review_id=review_id, action="import ratings")
    if len(data) > MAX_IMPORT_BYTES:
        raise DatasetError("The file is larger than 20 MB; split it and import the parts.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DatasetError(
            "The file is not UTF-8 text.", hint="Save it from the spreadsheet as CSV UTF-8."
        ) from None
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip().lower() for f in (reader.fieldnames or [])]
    missing = [c for c in ("item", "rater", "rating") if c not in fields]
    if missing:
        raise DatasetError(
            f"The file has no {', '.join(missing)} column.",
            hint="The columns are item, rater, rating and optionally comment "
            "(as in the ratings export).",
        )
    items = {
        int(i.id or 0): i
        for i in session.exec(select(ReviewItem).where(ReviewItem.review_id == review_id)).all()
    }
    allowed = (*RATINGS[review.kind], SKIP)
    problems: list[str] = []
    accepted: list[tuple[ReviewItem, str, str, str]] = []
    for line, raw in enumerate(reader, start=2):
        row = {str(k).strip().lower(): (v or "").strip() for k, v in raw.items() if k}
        item_ref, rater, value = row.get("item", ""), row.get("rater", ""), row.get("rating", "")
        number = row_id(item_ref)
        item = items.get(number) if number is not None else None
        stored = value.lower()
        if review.kind == "pairwise" and item is not None:
            stored = _pairwise_value(stored, item) or stored
        if item is None:
            problems.append(f"line {line}: no item {item_ref!r} in this review")
        elif not rater or len(rater) > 200:
            problems.append(f"line {line}: the rater needs a name (1 to 200 characters)")
        elif stored not in allowed:
            problems.append(f"line {line}: rating {value!r} is not one of {', '.join(allowed)}")
        else:
            accepted.append((item, rater, stored, row.get("comment", "")[:5000]))
        if len(problems) >= MAX_PROBLEMS:
            problems.append("(stopped after 20 problems)")
            break
    if problems:
        raise DatasetError(
            f"Nothing was imported: {len(problems)} line(s) need fixing: " + "; ".join(problems),
            hint="Fix the lines named and import the file again.",
        )
    if not accepted:
        raise DatasetError("The file has no ratings.", hint="Add one line per rating.")
    existing = {
        (r.item_id, r.rater): r
        for r in session.exec(select(ReviewRating).where(ReviewRating.review_id == review_id))
    }
    for item, rater, stored, comment in accepted:
        found = existing.get((int(item.id or 0), rater))
        if found is None:
            found = ReviewRating(
                review_id=review_id, item_id=int(item.id or 0), rater=rater, rating=stored,
                comment=comment, source="import",
            )  # fmt: skip
            existing[(int(item.id or 0), rater)] = found
        found.rating, found.comment, found.source = stored, comment, "import"
        found.updated_at = utcnow()
        session.add(found)
    session.commit()
    return len(accepted)
