"""Human review: people rate outputs against criteria the team wrote.

A :class:`~studio.store.tables.HumanReview` is made from a run, an evaluation or a
comparison (:func:`studio.services.review_setup.create_review`): its rows (all, or a
random sample with a seed) become items, one per row and contender (``binary``
good/bad, ``scale`` 1-5) or one per row with two contenders side by side
(``pairwise``, blind: sides shuffled per item, no names).

Reviewers work through :func:`next_item` / :func:`rate` / :func:`undo_last`: each rating
is saved the moment it is given, once per item and person (the unique key makes a
double click or a second tab one rating), so closing the browser loses nothing and the
queue resumes at the next unrated item. An item leaves the queues when it has the
ratings it needs (``raters_per_item``); a skipped item comes back after the others.

Who may do what (the actor from :func:`studio.core.identity.current_actor`):

* creating, reading results, exporting, importing and settling: administrators and the
  app's members (:func:`studio.services.app_access.check_app`);
* rating: the people the review is given to: ``all`` (every reviewer and every member of
  the app), or the ``named`` / ``split`` people; administrators too;
* a reviewer lists only the reviews given to them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from studio.core.errors import ConflictError, FieldProblem, NotFoundError, PermissionDeniedError
from studio.core.errors import RequestValidationError as Invalid
from studio.core.identity import Actor, current_actor
from studio.services.app_access import check_app
from studio.services.members import may_use_app
from studio.store.tables import (
    AppMember,
    HumanReview,
    ReviewItem,
    ReviewRating,
    StudioUser,
    utcnow,
)

__all__ = [
    "RATINGS",
    "SKIP",
    "QueueItem",
    "assignable_people",
    "get_review",
    "list_reviews",
    "manageable_review",
    "next_item",
    "progress",
    "rate",
    "undo_last",
]

RATINGS: dict[str, tuple[str, ...]] = {
    "binary": ("good", "bad"),
    "scale": ("1", "2", "3", "4", "5"),
    "pairwise": ("a", "b", "tie"),  # a = the first contender, b = the second
}
SKIP = "skip"


class QueueItem(BaseModel):
    """One item as a rater sees it: pairwise outputs are ``left`` / ``right``, unnamed."""

    review_id: int
    item_id: int
    position: int
    row_index: int | None
    inputs: dict[str, Any]
    prompt: str
    outputs: list[str]  # one (binary, scale) or two in display order (pairwise)
    contender: str | None  # the contender's label (binary, scale); None when blind
    mine_done: int
    mine_left: int
    previous: str | None = None  # the rater's earlier answer on this item (a skip)


# -- reading ----------------------------------------------------------------------------


def _in_pool(session: Session, review: HumanReview, actor: Actor) -> bool:
    if actor.kind != "user" or actor.user_id is None:
        return actor.is_admin
    if actor.is_admin:
        return True
    if review.assignment != "all":
        return actor.user_id in (review.assignees or [])
    if actor.role == "reviewer":
        return True
    member = session.get(AppMember, (review.app_id, actor.user_id))
    return member is not None


def _find(session: Session, review_id: int) -> HumanReview:
    review = session.get(HumanReview, review_id) if 0 < review_id < 2**31 else None
    if review is None:
        raise NotFoundError(f"No review {review_id}.", hint="List them: studio review list.")
    return review


def get_review(*, session: Session, review_id: int) -> HumanReview:
    """A review its raters, the app's members or an administrator may open."""
    review = _find(session, review_id)
    actor = current_actor()
    if _in_pool(session, review, actor) or may_use_app(
        session=session, app_id=review.app_id, actor=actor
    ):
        return review
    raise NotFoundError(f"No review {review_id}.", hint="Ask its author to give it to you.")


def manageable_review(*, session: Session, review_id: int, action: str) -> HumanReview:
    """A review whose results the caller may read and change (the app's people)."""
    review = _find(session, review_id)
    check_app(session=session, app_id=review.app_id, action=action, what="review")
    return review


def assignable_people(*, session: Session, app_id: int) -> list[str]:
    """The names a review of ``app_id`` may be given to: every active reviewer and the
    app's members (for the app's people, who create reviews)."""
    check_app(session=session, app_id=app_id, action="create reviews")
    reviewers = select(StudioUser.name).where(
        StudioUser.role == "reviewer", col(StudioUser.disabled).is_(False)
    )
    members = (
        select(StudioUser.name)
        .join(AppMember, AppMember.user_id == StudioUser.id)  # type: ignore[arg-type]
        .where(AppMember.app_id == app_id, col(StudioUser.disabled).is_(False))
    )
    names = set(session.exec(reviewers).all()) | set(session.exec(members).all())
    return sorted(names, key=str.lower)


def list_reviews(*, session: Session, app_id: int | None = None) -> list[HumanReview]:
    """The reviews the caller may open, newest first: for a reviewer, those given to them."""
    actor = current_actor()
    if not actor.signed_in:
        raise PermissionDeniedError("Sign in to see your reviews.")
    stmt = select(HumanReview).order_by(col(HumanReview.id).desc())
    if app_id is not None:
        stmt = stmt.where(HumanReview.app_id == app_id)
    return [
        r
        for r in session.exec(stmt).all()
        if _in_pool(session, r, actor) or may_use_app(session=session, app_id=r.app_id, actor=actor)
    ]


# -- rating -------------------------------------------------------------------------------


def _rater(action: str) -> Actor:
    """A person: a signed-in user, or the one local user of a studio without sign-in
    (``STUDIO_AUTH=none``, the UI's operator). The CLI's operator imports instead."""
    actor = current_actor()
    local_user = actor.kind == "operator" and actor.origin.split(" ")[0] == "ui"
    if not local_user and (actor.kind != "user" or actor.user_id is None):
        raise PermissionDeniedError(
            f"Only a signed-in person can {action}.",
            hint="Sign in to the studio; the CLI imports ratings instead (studio review import).",
        )
    return actor


def _counts(session: Session, review_id: int) -> dict[int, int]:
    stmt = (
        select(ReviewRating.item_id, func.count())
        .where(ReviewRating.review_id == review_id, ReviewRating.rating != SKIP)
        .group_by(col(ReviewRating.item_id))
    )
    return {int(i): int(n) for i, n in session.exec(stmt).all()}


def _mine(session: Session, review_id: int, rater: str) -> dict[int, str]:
    stmt = select(ReviewRating.item_id, ReviewRating.rating).where(
        ReviewRating.review_id == review_id, ReviewRating.rater == rater
    )
    return {int(i): r for i, r in session.exec(stmt).all()}


def _open_to(item: ReviewItem, review: HumanReview, user_id: int, counts: dict[int, int]) -> bool:
    if item.assigned and user_id not in item.assigned:
        return False
    return counts.get(int(item.id or 0), 0) < review.raters_per_item


def next_item(*, session: Session, review_id: int) -> QueueItem | None:
    """The next item for the signed-in rater (unrated first, then skipped), or ``None``
    when nothing is left for them."""
    actor = _rater("rate")
    review = get_review(session=session, review_id=review_id)
    if not _in_pool(session, review, actor):
        raise PermissionDeniedError("This review is not given to you.")
    user_id = actor.user_id if actor.user_id is not None else -1
    items = session.exec(
        select(ReviewItem)
        .where(ReviewItem.review_id == review_id)
        .order_by(col(ReviewItem.position))
    ).all()
    counts, mine = _counts(session, review_id), _mine(session, review_id, actor.name)
    fresh = [i for i in items if i.id not in mine and _open_to(i, review, user_id, counts)]
    skipped = [
        i for i in items if mine.get(int(i.id or 0)) == SKIP
        and _open_to(i, review, user_id, counts)
    ]  # fmt: skip
    done = sum(1 for r in mine.values() if r != SKIP)
    if not fresh and not skipped:
        return None
    pick = (fresh or skipped)[0]
    assert pick.id is not None
    texts = [o.get("output", "") for o in pick.outputs]
    if review.kind == "pairwise" and pick.swapped:
        texts = texts[::-1]
    blind = review.kind == "pairwise"
    return QueueItem(
        review_id=review_id,
        item_id=pick.id,
        position=pick.position,
        row_index=pick.row_index,
        inputs=pick.inputs,
        prompt=pick.prompt,
        outputs=texts,
        contender=None if blind else pick.outputs[0].get("label"),
        mine_done=done,
        mine_left=len(fresh) + len(skipped),
        previous=mine.get(pick.id),
    )


def _stored_rating(review: HumanReview, item: ReviewItem, rating: str) -> str:
    value = (rating or "").strip().lower()
    if review.kind == "pairwise" and value in ("left", "right"):
        first_on_left = not item.swapped
        value = "a" if (value == "left") == first_on_left else "b"
    allowed = (*RATINGS[review.kind], SKIP)
    if value not in allowed:
        raise Invalid(
            [FieldProblem("rating", f"one of {', '.join(allowed)} (not {rating!r})")],
            what="rating",
        )
    return value


def rate(
    *, session: Session, review_id: int, item_id: int, rating: str, comment: str = ""
) -> ReviewRating:
    """Save the signed-in rater's rating of ``item_id`` at once (a second rating of the
    same item by the same person changes it). Pairwise ratings may be given as the side
    shown (``left`` / ``right``) or as ``a`` / ``b`` / ``tie``."""
    actor = _rater("rate")
    review = get_review(session=session, review_id=review_id)
    if not _in_pool(session, review, actor):
        raise PermissionDeniedError("This review is not given to you.")
    item = session.get(ReviewItem, item_id) if 0 < item_id < 2**31 else None
    if item is None or item.review_id != review_id:
        raise NotFoundError(f"No item {item_id} in review {review_id}.")
    value = _stored_rating(review, item, rating)
    if item.assigned and actor.user_id not in item.assigned:
        raise PermissionDeniedError("This item is given to other raters.")
    return _upsert(session, review, item, actor, value, (comment or "")[:5000])


def _upsert(
    session: Session, review: HumanReview, item: ReviewItem, actor: Actor, value: str, comment: str
) -> ReviewRating:
    # Take the item's write lock before counting (a no-op update: a row lock on
    # PostgreSQL, the database's write lock on SQLite), so that raters racing for its
    # last place are counted one after the other: never more ratings than it needs.
    session.execute(update(ReviewItem).where(col(ReviewItem.id) == item.id).values(id=item.id))
    stmt = select(ReviewRating).where(
        ReviewRating.item_id == item.id, ReviewRating.rater == actor.name
    )
    existing = session.exec(stmt).first()
    # the other raters' ratings: this person's own (perhaps being written from another
    # tab at this moment) never counts against them
    others = select(func.count()).where(
        ReviewRating.item_id == item.id, ReviewRating.rater != actor.name,
        ReviewRating.rating != SKIP,
    )  # fmt: skip
    taken = int(session.exec(others).one())
    if existing is None and value != SKIP and taken >= review.raters_per_item:
        raise ConflictError(
            "This item already has all the ratings it needs.", hint="Go on to the next item."
        )
    if existing is None:
        row = ReviewRating(
            review_id=int(review.id or 0), item_id=int(item.id or 0), rater=actor.name,
            rater_id=actor.user_id, rating=value, comment=comment,
        )  # fmt: skip
        session.add(row)
        try:
            session.commit()
        except IntegrityError:  # the same person, at the same moment, from another tab
            session.rollback()
            existing = session.exec(stmt).first()
            if existing is None:
                raise
        else:
            session.refresh(row)
            return row
    existing.rating, existing.comment, existing.updated_at = value, comment, utcnow()
    session.add(existing)
    session.commit()
    session.refresh(existing)
    return existing


def undo_last(*, session: Session, review_id: int) -> int | None:
    """Take back the signed-in rater's latest rating in this review; returns its item id
    (``None`` when they have rated nothing)."""
    actor = _rater("undo ratings")
    get_review(session=session, review_id=review_id)
    stmt = (
        select(ReviewRating)
        .where(ReviewRating.review_id == review_id, ReviewRating.rater == actor.name)
        .order_by(col(ReviewRating.updated_at).desc(), col(ReviewRating.id).desc())
    )
    last = session.exec(stmt).first()
    if last is None:
        return None
    item_id = last.item_id
    session.delete(last)
    session.commit()
    return item_id


def progress(*, session: Session, review_id: int) -> dict[str, Any]:
    """Ratings given against ratings needed, overall and per rater (skips left out)."""
    review = get_review(session=session, review_id=review_id)
    items = session.exec(
        select(func.count()).select_from(ReviewItem).where(ReviewItem.review_id == review_id)
    ).one()
    needed = int(items) * review.raters_per_item
    per_rater = dict(
        session.exec(
            select(ReviewRating.rater, func.count())
            .where(ReviewRating.review_id == review_id, ReviewRating.rating != SKIP)
            .group_by(col(ReviewRating.rater))
        ).all()
    )
    counts = _counts(session, review_id)
    given = sum(min(n, review.raters_per_item) for n in counts.values())
    complete = sum(1 for n in counts.values() if n >= review.raters_per_item)
    return {
        "items": int(items),
        "needed": needed,
        "given": given,
        "complete_items": complete,
        "share": given / needed if needed else 0.0,
        "per_rater": {str(k): int(v) for k, v in sorted(per_rater.items())},
        "sentence": (
            f"{given} of {needed} ratings given ({given / needed:.0%}); {complete} of "
            f"{int(items)} items have all {review.raters_per_item} rating(s) they need."
            if needed
            else "This review has no items."
        ),
    }
