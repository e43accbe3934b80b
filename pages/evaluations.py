"""Evaluations: score every output of one or more prompts with evaluators; report cards."""

from __future__ import annotations

import streamlit as st

from studio.services.datasets import list_datasets
from studio.services.evaluations import get_evaluation, list_evaluations
from studio.services.run_results import list_runs
from studio.services.variants import list_variants
from studio.store.tables import Evaluation
from studio.ui import db_ready, page_header, show_error, studio_session
from studio.ui.evaluations_new import new_evaluation, no_contenders
from studio.ui.evaluations_report import downloads, report_card
from studio.ui.evaluations_run import follow_evaluation
from studio.ui.evaluations_tables import report_stamp, report_view
from studio.ui.evaluations_trend import trend
from studio.ui.pickers import CURRENT_APP, link_to, pick_app

page_header(
    "Evaluations",
    "Check every output of your prompts automatically: pick what to evaluate, tick the "
    "checks (evaluators), press Evaluate, and read the report card: pass rates with their "
    "confidence intervals, the failing rows and why.",
)
db_ready()

# A deep link (?evaluation=ID) opens that evaluation, in its app, once per session.
if "ev_link_done" not in st.session_state:
    st.session_state.ev_link_done = True
    linked = st.query_params.get("evaluation")
    if linked and linked.isdigit():
        try:
            with studio_session() as session:
                app_of_link = get_evaluation(session=session, evaluation_id=int(linked)).app_id
            st.session_state.ev_app = st.session_state[CURRENT_APP] = app_of_link
            st.session_state.ev_selected = int(linked)
        except Exception as exc:
            show_error(exc)

app = pick_app("ev_app", why="Evaluations belong to an app")
assert app.id is not None

with studio_session() as session:
    datasets = list_datasets(session=session, app_id=app.id)
    variants = list_variants(session=session, app_id=app.id)
    finished_runs = [r for r in list_runs(session=session, app_id=app.id) if r.status == "done"]
    evaluations: list[Evaluation] = list_evaluations(session=session, app_id=app.id)

flash = st.session_state.pop("ev_flash", None)
if flash:
    st.success(flash)
flash_error = st.session_state.pop("ev_flash_error", None)
if flash_error is not None:
    show_error(flash_error)

if not datasets:
    st.info(
        f"'{app.name}' has no dataset yet. An evaluation scores outputs generated over a "
        "dataset's rows: upload a CSV on the Datasets page (a column with the expected output "
        "lets evaluators compare against it)."
    )
    link_to("pages/datasets.py", "Go to Datasets", ":material/table:")
    st.stop()

with st.expander("New evaluation", expanded=not evaluations, icon=":material/add_task:"):
    if variants or finished_runs:
        new_evaluation(app.id, datasets, variants)
    else:
        no_contenders(app.name)

st.subheader("Report card")
if not evaluations:
    st.info(
        "No evaluations yet. Open **New evaluation** above: pick a variant version, tick one or "
        "more evaluators, and press **Evaluate**. The report card appears here."
    )
else:
    by_id = {e.id: e for e in evaluations if e.id is not None}
    if st.session_state.get("ev_selected") not in by_id:
        st.session_state.ev_selected = evaluations[0].id
    STATUS = {
        "pending": "waiting for its runs",
        "running": "scoring",
        "failed": "stopped on an error",
        "cancelled": "cancelled",
    }

    def _label(evaluation_id: int) -> str:
        e = by_id[evaluation_id]
        return f"#{e.id} · {e.name} · {e.created_at:%Y-%m-%d %H:%M} UTC"

    selected = int(st.selectbox("Evaluation", list(by_id), key="ev_selected", format_func=_label))
    st.query_params["evaluation"] = str(selected)
    chosen = by_id[selected]
    overall = (chosen.summary or {}).get("overall_pass_rate")
    if chosen.status == "done" and overall is not None:
        state = f"done: {overall:.0%} of outputs passed every evaluator"
    else:
        state = STATUS.get(chosen.status, chosen.status)
    st.caption(
        f"Status: {state} · contenders: {', '.join(c['label'] for c in chosen.contenders)} · "
        f"evaluators: {', '.join(c['key'] for c in chosen.evaluators)} · started by "
        f"{chosen.actor or 'someone'}"
    )
    try:
        busy = follow_evaluation(selected)
        if not busy:
            report_card(report_view(selected, report_stamp(selected)))
            st.markdown("#### Download")
            downloads(selected)
    except Exception as exc:
        show_error(exc)

st.subheader("Quality over time")
trend(evaluations)
