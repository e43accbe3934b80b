"""The Review page's body: raters see their queue; an app's people also create reviews
and read their results."""

from __future__ import annotations

import streamlit as st

from studio.core.identity import current_actor
from studio.services.reviews import list_reviews
from studio.ui.common import studio_session
from studio.ui.pickers import pick_app
from studio.ui.review_new import new_review_form
from studio.ui.review_rate import rate_panel
from studio.ui.review_results import results_panel

__all__ = ["review_page"]

OPENED = "review_results_pick"
CREATED = "review_created_flash"


def _results_tab() -> None:
    app = pick_app("review_app", why="Reviews belong to an app")
    assert app.id is not None
    with studio_session() as session:
        reviews = list_reviews(session=session, app_id=app.id)
    if not reviews:
        st.info(f"'{app.name}' has no review yet. Create one in the **New review** tab.")
        return
    by_id = {int(r.id or 0): r for r in reviews}
    if st.session_state.get(OPENED) not in by_id:
        st.session_state[OPENED] = next(iter(by_id))
    review_id = st.selectbox(
        "Review", list(by_id), key=OPENED,
        format_func=lambda i: f"{by_id[i].name} (#{i}, {by_id[i].kind}, by {by_id[i].created_by})",
    )  # fmt: skip
    results_panel(by_id[review_id])


def _new_tab() -> None:
    app = pick_app("review_new_app", why="Reviews belong to an app")
    assert app.id is not None
    created = st.session_state.pop(CREATED, None)
    if created:
        st.success(
            f"Created review #{created}. Raters find it in their **To review** tab; its "
            "figures appear in **Results** as they rate."
        )
    made = new_review_form(app.id, app.name)
    if made:  # rerun, so that the other tabs (drawn before this one) show it too
        st.session_state[OPENED] = st.session_state[CREATED] = made
        st.rerun()


def review_page() -> None:
    actor = current_actor()
    if actor.role == "reviewer":
        rate_panel()
        return
    # Tracked tabs: a rerun (e.g. picking the run to review) keeps the tab the person is
    # on; untracked tabs could fall back to the first one when the page redraws.
    rate_tab, results_tab, new_tab = st.tabs(
        ["To review", "Results", "New review"], key="review_tab", on_change="rerun"
    )
    with rate_tab:
        rate_panel()
    with results_tab:
        _results_tab()
    with new_tab:
        _new_tab()
