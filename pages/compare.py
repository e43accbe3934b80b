"""Compare: variants and models side by side on the same rows, with paired tests."""

from __future__ import annotations

import streamlit as st

from studio.services.comparisons import get_comparison, list_comparisons
from studio.services.datasets import list_datasets
from studio.services.variants import list_variants
from studio.store.tables import Comparison
from studio.ui import db_ready, page_header, show_error, studio_session
from studio.ui.compare_actions import downloads, ship_panel
from studio.ui.compare_grid import grid_panel
from studio.ui.compare_new import (
    SELECTED,
    add_contender_form,
    clear_flash,
    flash_messages,
    new_comparison_form,
)
from studio.ui.compare_progress import follow_comparison
from studio.ui.compare_summary import load_summary, preferences_panel, summary_panel
from studio.ui.pickers import CURRENT_APP, link_to, pick_app

page_header(
    "Compare",
    "Which prompt or model should you ship? Pick two to eight contenders (saved variants, or "
    "the same prompt on other models), press Compare, and read side by side, row by row, "
    "whether the difference is real: pass rates with intervals and a paired test against "
    "your baseline, in plain sentences.",
)
db_ready()

# A deep link (?comparison=ID) opens that comparison, in its app, once per session.
if "cmp_link_done" not in st.session_state:
    st.session_state.cmp_link_done = True
    linked = st.query_params.get("comparison")
    if linked and linked.isdigit():
        try:
            with studio_session() as session:
                app_of_link = get_comparison(session=session, comparison_id=int(linked)).app_id
            st.session_state.cmp_app = st.session_state[CURRENT_APP] = app_of_link
            st.session_state[SELECTED] = int(linked)
        except Exception as exc:
            show_error(exc)

app = pick_app("cmp_app", why="Comparisons belong to an app")
assert app.id is not None

with studio_session() as session:
    datasets = list_datasets(session=session, app_id=app.id)
    variants = list_variants(session=session, app_id=app.id)
    comparisons: list[Comparison] = list_comparisons(session=session, app_id=app.id)

flash_messages()

if not datasets:
    st.info(
        f"'{app.name}' has no dataset yet. A comparison runs every contender over the same "
        "rows: upload a CSV on the Datasets page first."
    )
    link_to("pages/datasets.py", "Go to Datasets", ":material/table:")
    st.stop()
if not variants and not comparisons:
    st.info(
        f"'{app.name}' has no saved variant yet, so there is no prompt to compare. In the "
        "Playground, write a prompt and save it as a variant; then come back here to try it on "
        "other models or against other variants."
    )
    link_to("pages/playground.py", "Go to Playground", ":material/science:")
    st.stop()

with st.expander("New comparison", expanded=not comparisons, icon=":material/compare:"):
    if variants:
        new_comparison_form(app.id, datasets, variants)
    else:  # only comparisons made elsewhere so far (e.g. a fine-tuned model with its base)
        st.info(
            f"'{app.name}' has no saved variant yet. Write a prompt in the Playground and save "
            "it as a variant to compare it here on other models or against other variants."
        )

if not comparisons:
    st.info(
        "No comparisons yet. Open **New comparison** above: choose a variant and one or more "
        "models (or two variants), tick an evaluator, and press **Compare**. The summary and "
        "the rows side by side appear here."
    )
    clear_flash()
    st.stop()

by_id = {c.id: c for c in comparisons if c.id is not None}
if st.session_state.get(SELECTED) not in by_id:
    st.session_state[SELECTED] = comparisons[0].id


def _label(comparison_id: int) -> str:
    c = by_id[comparison_id]
    return f"#{c.id} · {c.name} · {c.created_at:%Y-%m-%d %H:%M} UTC"


selected = int(st.selectbox("Comparison", list(by_id), key=SELECTED, format_func=_label))
st.query_params["comparison"] = str(selected)
chosen = by_id[selected]
st.caption(
    f"{len(chosen.contenders)} contenders · baseline {chosen.baseline} · "
    + ("scored by an evaluation" if chosen.evaluation_id else "no evaluators (no pass rates)")
    + f" · started by {chosen.actor or 'someone'}"
)

try:
    busy = follow_comparison(chosen)
    with st.expander("Add contender", icon=":material/add:"):
        add_contender_form(chosen, variants)
    summary = load_summary(selected)
    st.subheader("Summary")
    if busy:
        st.caption("Still working: the figures below grow as outputs and verdicts arrive.")
    summary_panel(summary)
    st.subheader("Preferences")
    preferences_panel(selected)
    st.subheader("Rows side by side")
    grid_panel(chosen, has_verdicts=chosen.evaluation_id is not None)
    st.subheader("Ship it")
    ship_panel(summary, app.name)
    st.markdown("#### Download")
    downloads(selected)
except Exception as exc:
    show_error(exc)
clear_flash()  # shown in full: a rerun by a progress panel before here shows them again
