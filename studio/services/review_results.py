"""What a human review found: hit rates, scale means, A/B win rates and a ranking, how well
the raters agree, the items they disagree on (and settling them), and an LLM judge
measured against the people.

Each item's verdict is the verdict someone settled (:func:`settle`), else the majority of
its ratings; an item whose ratings tie has no verdict and is listed among the
disagreements. Skips never count. Every figure carries a sentence saying what it means.
Only administrators and the app's members read or settle results
(:func:`studio.services.reviews.manageable_review`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlmodel import Session, col, select

from studio.core.errors import ConflictError, FieldProblem, NotFoundError
from studio.core.errors import RequestValidationError as Invalid
from studio.core.identity import current_actor
from studio.evaluators.agreement import agreement, judge_agreement, majority
from studio.evaluators.stats import bradley_terry_ranking, mean_interval, wilson_interval
from studio.services.reviews import RATINGS, SKIP, manageable_review
from studio.store.tables import (
    EvaluationScore,
    HumanReview,
    ReviewItem,
    ReviewRating,
    ReviewVerdict,
    utcnow,
)

__all__ = ["disagreements", "judge_vs_people", "review_results", "settle"]


def _load(
    session: Session, review: HumanReview
) -> tuple[list[ReviewItem], dict[int, dict[str, str]], dict[int, ReviewVerdict]]:
    items = list(
        session.exec(
            select(ReviewItem)
            .where(ReviewItem.review_id == review.id)
            .order_by(col(ReviewItem.position))
        ).all()
    )
    ratings: dict[int, dict[str, str]] = defaultdict(dict)
    for r in session.exec(select(ReviewRating).where(ReviewRating.review_id == review.id)).all():
        if r.rating != SKIP:
            ratings[r.item_id][r.rater] = r.rating
    verdicts = {
        v.item_id: v
        for v in session.exec(select(ReviewVerdict).where(ReviewVerdict.review_id == review.id))
    }
    return items, ratings, verdicts


def _verdict(item_id: int, ratings: dict[int, dict[str, str]], settled: dict[int, Any]) -> Any:
    if item_id in settled:
        return settled[item_id].verdict
    return majority(list(ratings.get(item_id, {}).values()))


def review_results(*, session: Session, review_id: int) -> dict[str, Any]:
    """The review's figures per contender, the agreement, and sentences for each."""
    review = manageable_review(session=session, review_id=review_id, action="read review results")
    items, ratings, settled = _load(session, review)
    agreed = agreement(ratings, level="ordinal" if review.kind == "scale" else "nominal")
    result: dict[str, Any] = {
        "kind": review.kind,
        "items": len(items),
        "rated_items": sum(1 for i in items if ratings.get(int(i.id or 0))),
        "agreement": {
            "statistic": agreed.statistic, "value": agreed.value, "percent": agreed.percent,
            "items": agreed.items, "raters": agreed.raters, "sentence": agreed.sentence,
        },
        "disagreements": len(disagreements(session=session, review_id=review_id)),
    }  # fmt: skip
    if review.kind == "pairwise":
        result.update(_pairwise(review, items, ratings, settled))
    else:
        result["contenders"] = [
            _contender(review, c, items, ratings, settled) for c in review.contenders
        ]
    return result


def _contender(
    review: HumanReview,
    contender: dict[str, Any],
    items: list[ReviewItem],
    ratings: dict[int, dict[str, str]],
    settled: dict[int, ReviewVerdict],
) -> dict[str, Any]:
    mine = [i for i in items if i.outputs and i.outputs[0].get("key") == contender["key"]]
    label = contender["label"]
    if review.kind == "binary":
        verdicts = [_verdict(int(i.id or 0), ratings, settled) for i in mine]
        decided = [v for v in verdicts if v in ("good", "bad")]
        good = sum(1 for v in decided if v == "good")
        rate = wilson_interval(good, len(decided))
        sentence = (
            f"{label}: {good} of {len(decided)} decided items are good ({rate.estimate:.0%}); "
            f"with this many items the true hit rate is likely between {rate.low:.0%} and "
            f"{rate.high:.0%} (95% Wilson interval)."
            if rate
            else f"{label}: no item has a verdict yet."
        )
        return {"key": contender["key"], "label": label, "items": len(mine),
                "decided": len(decided), "good": good,
                "hit_rate": rate.as_dict() if rate else None, "sentence": sentence}  # fmt: skip
    means = [
        sum(int(v) for v in ratings[int(i.id or 0)].values()) / len(ratings[int(i.id or 0)])
        for i in mine
        if ratings.get(int(i.id or 0))
    ]
    interval = mean_interval(means, bounds=(1.0, 5.0))
    sentence = (
        f"{label}: the mean rating is {interval.estimate:.2f} of 5 over {len(means)} items "
        f"(95% interval {interval.low:.2f} to {interval.high:.2f})."
        if interval
        else f"{label}: no item is rated yet."
    )
    return {"key": contender["key"], "label": label, "items": len(mine), "rated": len(means),
            "mean": interval.as_dict() if interval else None, "sentence": sentence}  # fmt: skip


def _pairwise(
    review: HumanReview,
    items: list[ReviewItem],
    ratings: dict[int, dict[str, str]],
    settled: dict[int, ReviewVerdict],
) -> dict[str, Any]:
    labels = {c["key"]: c["label"] for c in review.contenders}
    keys = list(labels)
    wins: dict[str, int] = dict.fromkeys(keys, 0)
    judged: dict[str, int] = dict.fromkeys(keys, 0)
    ties = 0
    pairs: list[tuple[int, int]] = []
    for item in items:
        verdict = _verdict(int(item.id or 0), ratings, settled)
        if verdict is None:
            continue
        first, second = item.outputs[0]["key"], item.outputs[1]["key"]
        if verdict == "tie":
            ties += 1
            continue
        winner, loser = (first, second) if verdict == "a" else (second, first)
        wins[winner] += 1
        judged[winner] += 1
        judged[loser] += 1
        pairs.append((keys.index(winner), keys.index(loser)))
    figures = []
    for key in keys:
        rate = wilson_interval(wins[key], judged[key])
        figures.append(
            {"key": key, "label": labels[key], "wins": wins[key], "judged": judged[key],
             "win_rate": rate.as_dict() if rate else None,
             "sentence": (
                 f"{labels[key]} was preferred in {wins[key]} of {judged[key]} decided items "
                 f"({rate.estimate:.0%}, 95% interval {rate.low:.0%} to {rate.high:.0%})."
                 if rate else f"{labels[key]}: no decided item yet.")}
        )  # fmt: skip
    ranking = bradley_terry_ranking(keys, labels, pairs)
    return {"contenders": figures, "ties": ties, "ranking": ranking}


def disagreements(*, session: Session, review_id: int) -> list[dict[str, Any]]:
    """Items whose raters gave different answers, with the verdict settled so far."""
    review = manageable_review(session=session, review_id=review_id, action="read review results")
    items, ratings, settled = _load(session, review)
    out = []
    for item in items:
        given = ratings.get(int(item.id or 0), {})
        if len(set(given.values())) < 2:
            continue
        verdict = settled.get(int(item.id or 0))
        out.append(
            {"item_id": item.id, "position": item.position, "row_index": item.row_index,
             "inputs": item.inputs, "outputs": item.outputs, "ratings": given,
             "majority": majority(list(given.values())),
             "settled": verdict.verdict if verdict else None,
             "settled_by": verdict.settled_by if verdict else None}
        )  # fmt: skip
    return out


def settle(
    *, session: Session, review_id: int, item_id: int, verdict: str, note: str = ""
) -> ReviewVerdict:
    """Record the final verdict on an item, and who settled it (the app's people)."""
    review = manageable_review(session=session, review_id=review_id, action="settle ratings")
    item = session.get(ReviewItem, item_id) if 0 < item_id < 2**31 else None
    if item is None or item.review_id != review_id:
        raise NotFoundError(f"No item {item_id} in review {review_id}.")
    value = (verdict or "").strip().lower()
    if value not in RATINGS[review.kind]:
        raise Invalid(
            [FieldProblem("verdict", f"one of {', '.join(RATINGS[review.kind])}")],
            what="verdict",
        )
    row = session.get(ReviewVerdict, item_id)
    if row is None:
        row = ReviewVerdict(item_id=item_id, review_id=review_id, verdict=value, settled_by="")
    row.verdict, row.note, row.settled_at = value, (note or "")[:5000], utcnow()
    row.settled_by = current_actor().name
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


def judge_vs_people(
    *, session: Session, review_id: int, evaluation_id: int, evaluator_key: str
) -> dict[str, Any]:
    """How often an evaluation's judge (``evaluator_key``) agrees with the human verdicts
    on the same run rows of a binary review: kappa, the confusion matrix, the items."""
    review = manageable_review(session=session, review_id=review_id, action="read review results")
    if review.kind != "binary":
        raise ConflictError("A judge is compared with people on a good/bad review.")
    from studio.services.evaluations import get_evaluation

    evaluation = get_evaluation(session=session, evaluation_id=evaluation_id)
    items, ratings, settled = _load(session, review)
    runs = {c["key"]: c["run_id"] for c in review.contenders}
    scores = {
        (s.run_id, s.row_index): s
        for s in session.exec(
            select(EvaluationScore).where(
                EvaluationScore.evaluation_id == evaluation.id,
                EvaluationScore.evaluator_key == evaluator_key,
                EvaluationScore.sample_index == 0,
            )
        ).all()
    }
    if not scores:
        raise NotFoundError(
            f"Evaluation {evaluation_id} has no scores from {evaluator_key!r}.",
            hint="Run the judge on the same run first (an evaluation with an llm_judge).",
        )
    humans: dict[int, list[str]] = {}
    judge: dict[int, str] = {}
    for item in items:
        item_id = int(item.id or 0)
        run_id = runs.get(item.outputs[0]["key"]) if item.outputs else None
        row = item.row_index
        score = scores.get((run_id, row)) if run_id is not None and row is not None else None
        if score is None or score.error:
            continue
        if item_id in settled:
            humans[item_id] = [settled[item_id].verdict]
        elif ratings.get(item_id):
            humans[item_id] = list(ratings[item_id].values())
        judge[item_id] = "good" if score.passed else "bad"
    found = judge_agreement(humans, judge)
    by_id = {int(i.id or 0): i for i in items}
    return {
        "kappa": found.kappa,
        "percent": found.percent,
        "items": found.items,
        "labels": found.labels,
        "confusion": found.confusion,
        "disagreements": [
            {"item_id": i, "row_index": by_id[int(i)].row_index,  # type: ignore[call-overload]
             "judge": judge[i], "people": humans[i]}  # type: ignore[index]
            for i in found.disagreements
        ],
        "sentence": found.sentence,
    }  # fmt: skip
