"""Following a comparison's work: its contenders' runs, then its evaluation, as jobs.

Everything is read back from the database (the runs' latest jobs, the evaluation's
latest job), so a reload or another browser tab finds the same progress. The runs
show as ONE progress panel: the rows answered across all contenders, over the rows
they must answer, with one Cancel for all of them. When every run has finished, the
evaluation is scored (if evaluators were chosen), with its own progress and Cancel.
"""

from __future__ import annotations

import contextlib

import streamlit as st

from studio.core.errors import ConflictError
from studio.core.settings import DEFAULT_CONCURRENCY
from studio.services.evaluations import get_evaluation
from studio.services.jobs import (
    JobView,
    cancel_job,
    enqueue_evaluation,
    enqueue_run,
    job_for_evaluation,
    job_for_run,
)
from studio.services.run_results import get_run
from studio.store.tables import Comparison
from studio.ui.common import show_error, studio_session

__all__ = ["follow_comparison"]

ACTOR = "ui"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds // 60:.0f} min {seconds % 60:.0f} s"


def _run_jobs(comparison: Comparison) -> list[tuple[dict[str, object], JobView | None]]:
    return [(c, job_for_run(run_id=int(c["run_id"]))) for c in comparison.contenders]


def _cancel_all(job_ids: list[int]) -> None:
    for job_id in job_ids:
        with contextlib.suppress(Exception):  # it may have just finished
            cancel_job(job_id=job_id)


def _score(evaluation_id: int) -> None:
    with contextlib.suppress(ConflictError):  # another tab started it: follow that job
        enqueue_evaluation(
            evaluation_id=evaluation_id,
            actor=ACTOR,
            concurrency=int(st.session_state.get("cmp_parallel", DEFAULT_CONCURRENCY)),
        )


def _clicked(action: str, ids: list[int]) -> None:
    try:
        if action == "resume":
            for run_id in ids:
                with contextlib.suppress(ConflictError):
                    enqueue_run(run_id=run_id, actor=ACTOR)
        else:
            _score(ids[0])
    except Exception as exc:
        st.session_state.cmp_flash_error = exc


@st.fragment(run_every=1.0)
def _live_runs(comparison: Comparison) -> None:
    pairs = _run_jobs(comparison)
    jobs = [j for _, j in pairs if j is not None]
    active = [j for j in jobs if j.active]
    if not active:
        st.rerun(scope="app")  # every run stopped: score, or draw the summary
    total = sum(j.total for j in jobs)
    done = sum(j.done for j in jobs)
    errors = sum(j.errors for j in jobs)
    elapsed = max((j.elapsed_s or 0.0) for j in active)
    text = (
        f"{done} of {total} outputs across {len(jobs)} contender run(s) · "
        f"{errors} error{'s' if errors != 1 else ''} so far · elapsed {_duration(elapsed)}"
    )
    st.progress(min(done / total, 1.0) if total else 0.0, text=text)
    st.caption(
        " · ".join(
            f"{c['key']} {c['label']}: " + (f"{j.done}/{j.total}" if j else "reused")
            for c, j in pairs
        )
    )
    cancelling = all(j.cancel_requested for j in active)
    st.button(
        "Cancelling…" if cancelling else "Cancel",
        key=f"cmp_cancel_runs_{comparison.id}",
        on_click=_cancel_all,
        args=([j.id for j in active],),
        disabled=cancelling,
        help="Stops every contender's run. Outputs already written stay saved; resume later.",
    )


@st.fragment(run_every=1.0)
def _live_scores(evaluation_id: int) -> None:
    job = job_for_evaluation(evaluation_id=evaluation_id)
    if job is None or not job.active:
        st.rerun(scope="app")  # draw the verdicts
        return
    parts = [f"{job.done} of {job.total} verdicts"]
    if job.errors:
        parts.append(f"{job.errors} could not be judged so far")
    parts.append(f"elapsed {_duration(job.elapsed_s)}")
    st.progress(min(job.done / job.total, 1.0) if job.total else 0.0, text=" · ".join(parts))
    st.button(
        "Cancelling…" if job.cancel_requested else "Cancel",
        key=f"cmp_cancel_scores_{job.id}",
        on_click=_cancel_all,
        args=([job.id],),
        disabled=job.cancel_requested,
        help="Stops scoring. Verdicts already made stay saved; Resume scoring finishes the rest.",
    )


Pairs = list[tuple[dict[str, object], JobView | None]]


def _stopped_runs(pairs: Pairs) -> tuple[list[int], list[str], list[int]]:
    """(run ids never started, sentences about runs that stopped short, their ids)."""
    never: list[int] = []
    sentences: list[str] = []
    stopped: list[int] = []
    with studio_session() as session:
        for c, job in pairs:
            run_id = int(str(c["run_id"]))
            run = get_run(session=session, run_id=run_id)
            if run.status == "done":
                continue
            if job is None and run.status == "pending":
                never.append(run_id)
                continue
            why = f": {run.error}" if run.error else ""
            sentences.append(
                f"{c['key']} ({c['label']}) stopped before every row ({run.status}{why})."
            )
            stopped.append(run_id)
    return never, sentences, stopped


def follow_comparison(comparison: Comparison) -> bool:
    """Show what an unfinished comparison is doing; True while its outputs are generating or
    being scored (the summary is drawn from what is there either way)."""
    assert comparison.id is not None
    pairs = _run_jobs(comparison)
    if any(j is not None and j.active for _, j in pairs):
        st.markdown("**Generating the outputs**: every contender answers the dataset's rows.")
        _live_runs(comparison)
        return True
    never, sentences, stopped = _stopped_runs(pairs)
    if never:  # stored but not started (the tab closed in between): start them now
        try:
            for run_id in never:
                with contextlib.suppress(ConflictError):
                    enqueue_run(run_id=run_id, actor=ACTOR)
        except Exception as exc:
            show_error(exc)
            return False
        st.markdown("**Generating the outputs**: every contender answers the dataset's rows.")
        _live_runs(comparison)
        return True
    for sentence in sentences:
        st.warning(sentence)
    if stopped:
        st.button(
            "Resume generating",
            key=f"cmp_resume_{comparison.id}",
            on_click=_clicked,
            args=("resume", stopped),
            help="Answers only the rows still missing.",
        )
    if comparison.evaluation_id is None:
        return False
    job = job_for_evaluation(evaluation_id=comparison.evaluation_id)
    if job is not None and job.active:
        st.markdown("**Scoring the outputs**: the evaluators judge every contender's answers.")
        _live_scores(comparison.evaluation_id)
        return True
    with studio_session() as session:
        evaluation = get_evaluation(session=session, evaluation_id=comparison.evaluation_id)
    if evaluation.status == "pending" and not stopped and (job is None or job.state == "succeeded"):
        _score(comparison.evaluation_id)  # the runs just finished (or a contender was added)
        st.markdown("**Scoring the outputs**: the evaluators judge every contender's answers.")
        _live_scores(comparison.evaluation_id)
        return True
    if evaluation.status in ("failed", "cancelled", "pending"):
        if evaluation.status == "failed":
            st.error(evaluation.error or "Scoring stopped before every output was judged.")
        elif evaluation.status == "cancelled":
            st.info("Scoring was cancelled: the verdicts made so far are shown below.")
        st.button(
            "Resume scoring" if evaluation.status != "pending" else "Score what they answered",
            key=f"cmp_score_{comparison.id}",
            on_click=_clicked,
            args=("score", [comparison.evaluation_id]),
            help="Scores only the outputs that have no verdict yet; missing rows count as failed.",
        )
    return False
