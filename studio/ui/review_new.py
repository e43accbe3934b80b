"""Review page, "New review": the criteria, the type, who rates, and what to rate."""

from __future__ import annotations

from typing import Any

import streamlit as st
from pydantic import ValidationError

from studio.services.comparisons import list_comparisons
from studio.services.endpoints import list_endpoints
from studio.services.evaluations import contender_label, list_evaluations
from studio.services.review_setup import ReviewSpec, create_review
from studio.services.reviews import assignable_people
from studio.services.run_results import list_runs
from studio.ui.common import show_error, studio_session

__all__ = ["new_review_form"]

KINDS = {
    "binary": "Good or bad (a hit rate per contender)",
    "scale": "A 1 to 5 scale (a mean per contender)",
    "pairwise": "A/B, blind (which of two outputs is better; a win rate)",
}
SOURCES = {
    "run": "A run",
    "evaluation": "An evaluation (its contenders)",
    "comparison": "A comparison (its contenders)",
    "endpoint": "A deployed endpoint's latest requests",
}
ASSIGN = {
    "all": "Everyone: every reviewer and every member of this app",
    "named": "Only the people I name (each rates every item they can)",
    "split": "Split the items among the people I name",
}


def _sources(app_id: int, kind: str) -> dict[int, tuple[str, list[dict[str, Any]]]]:
    """id → (label, contenders) for the chosen source kind."""
    with studio_session() as session:
        if kind == "run":
            return {
                int(r.id or 0): (f"Run {r.id}: {contender_label(session, r)} · {r.status}", [])
                for r in list_runs(session=session, app_id=app_id)
            }
        if kind == "evaluation":
            return {
                int(e.id or 0): (f"Evaluation {e.id}: {e.name}", list(e.contenders))
                for e in list_evaluations(session=session, app_id=app_id)
            }
        if kind == "comparison":
            return {
                int(c.id or 0): (f"Comparison {c.id}: {c.name}", list(c.contenders))
                for c in list_comparisons(session=session, app_id=app_id)
            }
        return {
            e.id: (f"Endpoint {e.name}", []) for e in list_endpoints(session=session, app=app_id)
        }


def new_review_form(app_id: int, app_name: str) -> int | None:
    """The form; returns the new review's id once created."""
    st.markdown(
        "Write down what a good and a bad output are, choose what to rate and who rates it. "
        "Raters then open this page and see one item at a time, with your criteria beside it."
    )
    source_kind: str = st.selectbox(
        "What to review",
        list(SOURCES),
        format_func=lambda k: SOURCES[k],
        key="review_new_source_kind",
    )
    sources = _sources(app_id, source_kind)
    if not sources:
        st.info(
            f"'{app_name}' has no {source_kind} yet. Generate a run in the Playground (or "
            "deploy an endpoint and send it requests), then come back."
        )
        return None
    source_id = st.selectbox(
        "Which one", list(sources), format_func=lambda i: sources[i][0], key="review_new_source"
    )
    contenders = sources[source_id][1]
    with studio_session() as session:
        people = assignable_people(session=session, app_id=app_id)
    with st.form("review_new"):
        name = st.text_input("Name", placeholder="e.g. Tone of the invitations")
        kind = st.radio("Type", list(KINDS), format_func=lambda k: KINDS[k], horizontal=False)
        task = st.text_area("The task", placeholder="What the model was asked to do")
        good = st.text_area("A good output is…", placeholder="e.g. Names the event and the date")
        bad = st.text_area("A bad output is…", placeholder="e.g. Invents a date, or is rude")
        examples = st.text_area("Examples (optional)", placeholder="A good and a bad example")
        chosen: list[str] = []
        if contenders:
            keys = [c["key"] for c in contenders]
            labels = {c["key"]: c["label"] for c in contenders}
            chosen = st.multiselect(
                "Contenders to review", keys, default=keys, format_func=lambda k: labels[k],
                help="For A/B, two or more: each row shows two of them, names hidden.",
            )  # fmt: skip
        left, right = st.columns(2)
        raters = left.slider("Raters per item", 1, 5, 1, help="More raters give agreement.")
        sample = right.number_input(
            "Rows to review (0 = all)", min_value=0, max_value=20000, value=0, step=10,
            help="A random sample of this many rows; the seed makes it repeatable. For an "
            "endpoint: its latest requests (50 when 0).",
        )  # fmt: skip
        assignment = st.radio("Who rates", list(ASSIGN), format_func=lambda k: ASSIGN[k])
        named = st.multiselect("People", people, help="For named and split reviews.")
        left, right = st.columns(2)
        order = left.selectbox("Item order", ["random", "source"], help="Random by default.")
        seed = right.number_input("Seed", min_value=0, max_value=2**31 - 1, value=0)
        submitted = st.form_submit_button("Create the review", type="primary")
    if not submitted:
        return None
    try:
        spec = ReviewSpec(
            name=name or "Review", kind=kind, task=task or "(no task written)", good=good,
            bad=bad, examples=examples, source_kind=source_kind, source_id=source_id,
            contenders=chosen or None, raters_per_item=raters, assignment=assignment,
            assignees=named, item_order=order, sample_size=int(sample) or None, seed=int(seed),
        )  # fmt: skip
        with studio_session() as session:
            review = create_review(session=session, app_id=app_id, spec=spec)
    except ValidationError as exc:
        problem = exc.errors()[0]
        field = ".".join(str(p) for p in problem["loc"]).replace("_", " ")
        st.error(f"Please check {field}: {problem['msg'].lower()}.")
        return None
    except Exception as exc:
        show_error(exc)
        return None
    return int(review.id or 0)
