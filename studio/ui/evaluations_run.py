"""Starting an evaluation and following it: its runs first, then its scores, as jobs.

Pressing **Evaluate** stores the evaluation at once (its contender runs exist,
even those still to be generated), starts a job for every run that has no
outputs yet, and scores the evaluation as soon as they are done. Everything
the page needs to pick this up again is in the database (the runs' jobs, the
evaluation's job), so a reload or another browser tab shows the same progress.
"""

from __future__ import annotations

import contextlib

import streamlit as st

from studio.core.errors import ConflictError
from studio.services.evaluation_runs import contender_runs
from studio.services.evaluations import EvaluatorConfig, create_evaluation, get_evaluation
from studio.services.jobs import (
    JobView,
    cancel_job,
    enqueue_evaluation,
    enqueue_run,
    job_for_evaluation,
    job_for_run,
)
from studio.services.run_results import get_run
from studio.store.tables import Evaluation
from studio.ui.common import studio_session
from studio.ui.playground_run import progress_panel

__all__ = ["follow_evaluation", "start_evaluation"]

ACTOR = "ui"
CONCURRENCY_KEY = "ev_concurrency_of"  # evaluation id -> judge calls at a time, for its job


def start_evaluation(
    *,
    app_id: int,
    dataset_version_id: int,
    variants: list[str],
    run_ids: list[int],
    evaluators: list[EvaluatorConfig],
    name: str,
    concurrency: int,
) -> int:
    """Store the evaluation, generate its missing runs, score it when they are done."""
    with studio_session() as session:
        found = contender_runs(
            session=session,
            app_id=app_id,
            dataset_version_id=dataset_version_id,
            variants=variants,
            concurrency=concurrency,
        )
        evaluation = create_evaluation(
            session=session,
            app_id=app_id,
            run_ids=[*found.run_ids, *run_ids],
            evaluators=evaluators,
            name=name,
            actor=ACTOR,
        )
        assert evaluation.id is not None
        evaluation_id = evaluation.id
    st.session_state.setdefault(CONCURRENCY_KEY, {})[evaluation_id] = concurrency
    for run_id in found.missing:
        enqueue_run(run_id=run_id, actor=ACTOR)
    if not found.missing:
        _score(evaluation_id)
    return evaluation_id


def _score(evaluation_id: int) -> None:
    concurrency = int(st.session_state.get(CONCURRENCY_KEY, {}).get(evaluation_id, 8))
    with contextlib.suppress(ConflictError):  # another tab started it: follow that job
        enqueue_evaluation(evaluation_id=evaluation_id, actor=ACTOR, concurrency=concurrency)


def _score_clicked(evaluation_id: int) -> None:
    try:
        _score(evaluation_id)
    except Exception as exc:
        st.session_state.ev_flash_error = exc


def _cancel(job_id: int) -> None:
    cancel_job(job_id=job_id)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds // 60:.0f} min {seconds % 60:.0f} s"


def _scores_text(job: JobView) -> str:
    parts = [f"{job.done} of {job.total} scores"]
    if job.errors:
        parts.append(f"{job.errors} could not be judged so far")
    parts.append(f"elapsed {_duration(job.elapsed_s)}")
    return " · ".join(parts)


@st.fragment(run_every=1.0)
def _live_scores(evaluation_id: int) -> None:
    job = job_for_evaluation(evaluation_id=evaluation_id)
    if job is None:
        return
    if not job.active:
        st.rerun(scope="app")  # draw the report card
    fraction = job.done / job.total if job.total else 1.0
    st.progress(min(fraction, 1.0), text=_scores_text(job))
    cancelling = job.cancel_requested
    st.button(
        "Cancelling…" if cancelling else "Cancel",
        key=f"ev_cancel_{job.id}",
        on_click=_cancel,
        args=(job.id,),
        disabled=cancelling,
        help="Stops scoring. Scores already made stay saved; Resume scoring finishes the rest.",
    )


def _runs_state(evaluation: Evaluation) -> tuple[list[int], list[str]]:
    """The contender runs still generating, and a sentence per run that stopped short."""
    active, stopped = [], []
    with studio_session() as session:
        for contender in evaluation.contenders:
            run_id = int(contender["run_id"])
            job = job_for_run(run_id=run_id)
            if job is not None and job.active:
                active.append(run_id)
                continue
            run = get_run(session=session, run_id=run_id)
            if run.status != "done":
                why = f": {run.error}" if run.error else ""
                stopped.append(
                    f"{contender['label']} stopped before every row ({run.status}{why})."
                )
    return active, stopped


def follow_evaluation(evaluation_id: int) -> bool:
    """Show what an unfinished evaluation is doing; False when its report card can be drawn."""
    with studio_session() as session:
        evaluation = get_evaluation(session=session, evaluation_id=evaluation_id)
    job = job_for_evaluation(evaluation_id=evaluation_id)
    if job is not None and job.active:
        st.markdown("**Scoring the outputs**")
        _live_scores(evaluation_id)
        return True
    if job is None and evaluation.status == "pending":
        active, stopped = _runs_state(evaluation)
        if active:
            st.markdown(
                f"**Generating the outputs first**: {len(active)} of "
                f"{len(evaluation.contenders)} contender run(s) are still answering the "
                "dataset's rows. Scoring starts by itself when they are done."
            )
            for run_id in active:
                st.caption(f"Run {run_id}")
                progress_panel(run_id)
            return True
        if not stopped and evaluation.actor == ACTOR:
            _score(evaluation_id)  # the runs just finished: score them
            _live_scores(evaluation_id)
            return True
        for sentence in stopped:
            st.warning(sentence)
        st.info(
            "This evaluation has not been scored yet. Resume the stopped runs in the Playground "
            "(pick the run under 'Results of' and press Resume), or score what they answered: "
            "rows without an output count as failed."
        )
        st.button(
            "Score now",
            key=f"ev_score_{evaluation_id}",
            type="primary",
            on_click=_score_clicked,
            args=(evaluation_id,),
        )
        return True
    failed = evaluation.status == "failed" or (job is not None and job.state == "failed")
    if failed:
        error = evaluation.error or (job.error if job is not None else None)
        st.error(error or "The evaluation stopped before every output was scored.")
    elif evaluation.status == "cancelled" or (job is not None and job.state == "cancelled"):
        st.info("This evaluation was cancelled. The scores made so far are kept and shown below.")
    if failed or evaluation.status in ("cancelled", "pending"):
        st.button(
            "Resume scoring",
            key=f"ev_resume_{evaluation_id}",
            on_click=_score_clicked,
            args=(evaluation_id,),
            help="Scores only the outputs that have no score yet.",
        )
    return False
