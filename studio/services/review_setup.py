"""Starting a human review: the setup a person fills in (:class:`ReviewSpec`) and the
items made from a run, an evaluation or a comparison (:func:`create_review`).

Rows are all of the source's rows or a random sample of ``sample_size`` (``seed`` makes
it repeatable); items are one per row and contender (binary, scale) or one per row with
two contenders (pairwise: with more than two, each row gets the next pair in turn, and
the sides are shuffled per item). ``split`` gives each item to ``raters_per_item`` of the
named people in turn. Administrators and the app's members create reviews.
"""

from __future__ import annotations

import json
import random
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlmodel import Session, col, func, select

from studio.core.errors import ConflictError, FieldProblem, NotFoundError, PermissionDeniedError
from studio.core.errors import RequestValidationError as Invalid
from studio.services.app_access import check_app
from studio.services.evaluations import contender_label
from studio.store.tables import (
    Comparison,
    DatasetRow,
    Endpoint,
    Evaluation,
    HumanReview,
    RequestLog,
    ReviewItem,
    Run,
    RunResult,
    StudioUser,
)

__all__ = ["MAX_ITEMS", "ReviewSpec", "create_review"]

Kind = Literal["binary", "scale", "pairwise"]
MAX_ITEMS = 20_000
DEFAULT_ENDPOINT_SAMPLE = 50


class ReviewSpec(BaseModel):
    """What a person fills in to start a review."""

    name: str = Field(min_length=1, max_length=200)
    kind: Kind = "binary"
    task: str = Field(min_length=1, max_length=5000)
    good: str = Field(default="", max_length=5000)
    bad: str = Field(default="", max_length=5000)
    examples: str = Field(default="", max_length=20000)
    source_kind: Literal["run", "evaluation", "comparison", "endpoint"] = "run"
    source_id: int
    contenders: list[str] | None = None  # keys to review (default: all; pairwise: two+)
    raters_per_item: int = Field(default=1, ge=1, le=5)
    assignment: Literal["all", "named", "split"] = "all"
    assignees: list[str] = []  # user names, for named and split
    item_order: Literal["random", "source"] = "random"
    sample_size: int | None = Field(default=None, ge=1, le=MAX_ITEMS)
    seed: int = 0


def _source(session: Session, spec: ReviewSpec, app_id: int) -> list[dict[str, Any]]:
    if spec.source_kind == "run":
        run = session.get(Run, spec.source_id) if 0 < spec.source_id < 2**31 else None
        if run is None or run.app_id != app_id:
            raise NotFoundError(f"No run {spec.source_id} in this app.")
        return [{"key": "A", "run_id": run.id, "label": contender_label(session, run)}]
    found: Evaluation | Comparison | None = None
    if 0 < spec.source_id < 2**31:
        table = Evaluation if spec.source_kind == "evaluation" else Comparison
        found = session.get(table, spec.source_id)  # type: ignore[assignment]
    if found is None or found.app_id != app_id:
        raise NotFoundError(f"No {spec.source_kind} {spec.source_id} in this app.")
    return [dict(c) for c in found.contenders]


def _chosen(spec: ReviewSpec, contenders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if spec.contenders:
        by_key = {c["key"]: c for c in contenders}
        missing = [k for k in spec.contenders if k not in by_key]
        if missing:
            raise Invalid(
                [FieldProblem("contenders", f"one of {', '.join(by_key)} (not {missing[0]})")],
                what="review",
            )
        contenders = [by_key[k] for k in dict.fromkeys(spec.contenders)]
    if spec.kind == "pairwise" and len(contenders) < 2:
        raise Invalid([FieldProblem("contenders", "two or more for an A/B review")], what="review")
    return contenders


def _assignees(session: Session, spec: ReviewSpec) -> list[int]:
    if spec.assignment == "all":
        return []
    if not spec.assignees:
        raise Invalid(
            [FieldProblem("assignees", "the people who rate, for a named or split review")],
            what="review",
        )
    ids: list[int] = []
    for name in dict.fromkeys(n.strip() for n in spec.assignees if n.strip()):
        user = session.exec(
            select(StudioUser).where(func.lower(StudioUser.name) == name.lower())
        ).first()
        if user is None or user.disabled or user.id is None:
            raise NotFoundError(f"No active user {name!r}.", hint="List them: studio user list.")
        ids.append(user.id)
    if spec.assignment == "split" and len(ids) < spec.raters_per_item:
        raise Invalid(
            [FieldProblem("assignees", f"at least {spec.raters_per_item} people to split among")],
            what="review",
        )
    return ids


def create_review(*, session: Session, app_id: int, spec: ReviewSpec) -> HumanReview:
    """Store a review and its items (administrators and the app's members)."""
    actor = check_app(session=session, app_id=app_id, action="create reviews")
    if actor.kind == "key":
        raise PermissionDeniedError("Reviews are created in the studio or the CLI.")
    assignees = _assignees(session, spec)
    rng = random.Random(spec.seed)
    if spec.source_kind == "endpoint":
        if spec.kind == "pairwise":
            raise Invalid(
                [FieldProblem("kind", "good/bad or 1-5 for an endpoint's requests")],
                what="review",
            )
        contenders, drafts = _endpoint_drafts(session, spec, app_id)
    else:
        contenders = _chosen(spec, _source(session, spec, app_id))
        drafts = _run_drafts(session, spec, contenders, rng)
    if not drafts:
        raise ConflictError(
            "There is nothing to review: the source has no answered rows (or logged "
            "requests whose bodies were kept) yet.",
            hint="Wait for the run to finish, or pick another source.",
        )
    if len(drafts) > MAX_ITEMS:
        raise Invalid(
            [FieldProblem("sample_size", f"at most {MAX_ITEMS} items: sample fewer rows")],
            what="review",
        )
    if spec.item_order == "random":
        rng.shuffle(drafts)
    review = HumanReview(
        app_id=app_id,
        name=spec.name.strip(),
        kind=spec.kind,
        criteria={"task": spec.task, "good": spec.good, "bad": spec.bad,
                  "examples": spec.examples},
        raters_per_item=spec.raters_per_item,
        assignment=spec.assignment,
        assignees=assignees,
        item_order=spec.item_order,
        seed=spec.seed,
        sample_size=spec.sample_size,
        source_kind=spec.source_kind,
        source_id=spec.source_id,
        contenders=contenders,
        created_by=actor.name,
    )  # fmt: skip
    session.add(review)
    session.flush()
    for position, draft in enumerate(drafts):
        assigned: list[int] = []
        if spec.assignment == "split":
            start = position * spec.raters_per_item
            assigned = [
                assignees[(start + k) % len(assignees)] for k in range(spec.raters_per_item)
            ]
        session.add(
            ReviewItem(review_id=int(review.id or 0), position=position, assigned=assigned, **draft)
        )
    session.commit()
    session.refresh(review)
    return review


def _run_drafts(
    session: Session, spec: ReviewSpec, contenders: list[dict[str, Any]], rng: random.Random
) -> list[dict[str, Any]]:
    runs = [session.get(Run, c["run_id"]) for c in contenders]
    if any(r is None for r in runs):
        raise NotFoundError("A run of this source no longer exists.")
    version_id = runs[0].dataset_version_id  # type: ignore[union-attr]
    rows = {
        r.row_index: r.data
        for r in session.exec(
            select(DatasetRow).where(DatasetRow.dataset_version_id == version_id)
        ).all()
    }
    answers: dict[tuple[int, int], RunResult] = {}
    for run in runs:
        assert run is not None
        stmt = select(RunResult).where(RunResult.run_id == run.id, RunResult.sample_index == 0)
        for result in session.exec(stmt).all():
            answers[(result.run_id, result.row_index)] = result
    chosen_rows = sorted(rows)
    if spec.sample_size is not None and spec.sample_size < len(chosen_rows):
        chosen_rows = sorted(rng.sample(chosen_rows, spec.sample_size))
    return _drafts(spec, contenders, chosen_rows, rows, answers, rng)


def _endpoint_drafts(
    session: Session, spec: ReviewSpec, app_id: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The endpoint's last ``sample_size`` (default 50) answered requests whose logged
    bodies can be read back (not streamed, not cut short, not redacted)."""
    endpoint = session.get(Endpoint, spec.source_id) if 0 < spec.source_id < 2**31 else None
    if endpoint is None or endpoint.app_id != app_id:
        raise NotFoundError(f"No endpoint {spec.source_id} in this app.")
    wanted = spec.sample_size or DEFAULT_ENDPOINT_SAMPLE
    stmt = (
        select(RequestLog)
        .where(RequestLog.endpoint_id == endpoint.id, RequestLog.status_code == 200)
        .where(col(RequestLog.route).endswith("/generate"))
        .order_by(col(RequestLog.id).desc())
        .limit(wanted * 4)
    )
    label = f"endpoint {endpoint.name}"
    drafts: list[dict[str, Any]] = []
    for log in session.exec(stmt).all():
        try:
            inputs = json.loads(log.request_body or "").get("inputs")
            output = json.loads(log.response_body or "").get("output")
        except (ValueError, AttributeError):
            continue
        if not isinstance(inputs, dict) or not isinstance(output, str):
            continue
        drafts.append(
            {"row_index": None, "inputs": {**inputs, "request_id": log.request_id},
             "prompt": "", "outputs": [{"key": "A", "label": label, "output": output}]}
        )  # fmt: skip
        if len(drafts) >= wanted:
            break
    drafts.reverse()  # oldest first, as they were served
    return [{"key": "A", "label": label, "endpoint_id": endpoint.id}], drafts


def _drafts(
    spec: ReviewSpec,
    contenders: list[dict[str, Any]],
    chosen_rows: list[int],
    rows: dict[int, dict[str, Any]],
    answers: dict[tuple[int, int], RunResult],
    rng: random.Random,
) -> list[dict[str, Any]]:
    def out(contender: dict[str, Any], row: int) -> dict[str, Any] | None:
        result = answers.get((contender["run_id"], row))
        if result is None or result.output is None:
            return None
        return {"key": contender["key"], "label": contender["label"], "output": result.output,
                "prompt": result.rendered_prompt}  # fmt: skip

    drafts: list[dict[str, Any]] = []
    pairs = [(a, b) for i, a in enumerate(contenders) for b in contenders[i + 1 :]]
    for turn, row in enumerate(chosen_rows):
        if spec.kind == "pairwise":
            first, second = pairs[turn % len(pairs)]
            shown = [out(first, row), out(second, row)]
            if None in shown:
                continue
            both = [s for s in shown if s is not None]
            drafts.append(
                {"row_index": row, "inputs": rows[row], "prompt": both[0].pop("prompt"),
                 "outputs": [{k: v for k, v in s.items() if k != "prompt"} for s in both],
                 "swapped": rng.random() < 0.5}
            )  # fmt: skip
            continue
        for contender in contenders:
            answer = out(contender, row)
            if answer is None:
                continue
            prompt = answer.pop("prompt")
            drafts.append(
                {"row_index": row, "inputs": rows[row], "prompt": prompt, "outputs": [answer]}
            )
    return drafts
