"""The Fine-tuning page's job list: state, steps, time left, the loss curves (plotly),
Cancel, Resume for a job whose worker stopped, and for the resulting model **Try it**
beside the base (the same question to both, answers side by side) and **Compare with
base**, which opens a comparison of both on the job's validation rows on the Compare page."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from studio.models.registry import execute
from studio.services.finetune import (
    FineTuneView,
    cancel_job,
    job_logs,
    job_metrics,
    list_jobs,
    resume_job,
)
from studio.services.finetune_compare import compare_with_base
from studio.ui.common import show_error, studio_session
from studio.ui.compare_new import SELECTED, start_comparison
from studio.ui.pickers import CURRENT_APP

__all__ = ["job_list", "loss_figure"]

OPEN_COMPARISON = "ft_open_comparison"


def loss_figure(job_id: int) -> go.Figure | None:
    metrics = job_metrics(job_id=job_id)
    if not metrics:
        return None
    fig = go.Figure()
    train = [(m.step, m.train_loss) for m in metrics if m.train_loss is not None]
    val = [(m.step, m.val_loss) for m in metrics if m.val_loss is not None]
    fig.add_scatter(x=[s for s, _ in train], y=[v for _, v in train], name="training loss")
    if val:
        fig.add_scatter(
            x=[s for s, _ in val],
            y=[v for _, v in val],
            name="validation loss",
            mode="lines+markers",
        )
    fig.update_layout(
        height=260, margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis_title="step", yaxis_title="loss", legend={"orientation": "h"},
    )  # fmt: skip
    fig.update_xaxes(dtick=max(1, len(metrics) // 10))  # whole steps
    return fig


def _act(action: str, job_id: int) -> None:
    try:
        (cancel_job if action == "cancel" else resume_job)(job_id=job_id)
    except Exception as exc:
        st.session_state.ft_jobs_error = exc


def _ask(name: str, question: str) -> str:
    payload = {"messages": [{"role": "user", "content": question}], "max_tokens": 64,
               "temperature": 0}  # fmt: skip
    with studio_session() as session:
        answer = execute(session=session, ref=name, payload=payload, source="ui")
    return str(answer.model_dump().get("message", {}).get("content", ""))


def _try_it(job: FineTuneView) -> None:
    """The same question to the base and to the new model; the answers stay on the page
    (the job list redraws every two seconds) until the question changes."""
    assert job.model is not None
    key = f"ft_try_{job.id}"
    question = st.text_input(
        "Ask both models", key=key, placeholder="A question like the ones in the dataset"
    )
    shown = st.session_state.get(f"{key}_answers")
    if st.button("Ask both", key=f"{key}_go", disabled=not question):
        shown = {"question": question, "answers": []}
        for name, label in ((job.base_model, "Base"), (job.model, "Fine-tuned")):
            try:
                with st.spinner(f"{label} model answering…"):
                    shown["answers"].append((label, name, _ask(name, question), None))
            except Exception as exc:
                shown["answers"].append((label, name, None, exc))
        st.session_state[f"{key}_answers"] = shown
    if not shown or shown["question"] != question:
        return
    for column, (label, name, text, error) in zip(st.columns(2), shown["answers"], strict=True):
        with column:
            st.markdown(f"**{label}** · `{name}`")
            if error is not None:
                show_error(error)
            else:
                st.write(text or "(an empty answer)")


def _compare(job_id: int) -> None:
    """Make (or find) the comparison on the validation rows and start its runs; the job
    list then opens it on the Compare page."""
    try:
        with studio_session() as session:
            comparison, missing = compare_with_base(session=session, job_id=job_id, actor="ui")
            comparison_id, app_id = comparison.id, comparison.app_id
        start_comparison(comparison, missing)
    except Exception as exc:
        st.session_state.ft_jobs_error = exc
        return
    st.session_state[SELECTED] = comparison_id
    st.session_state["cmp_app"] = st.session_state[CURRENT_APP] = app_id
    st.session_state[OPEN_COMPARISON] = comparison_id


def _result(job: FineTuneView) -> None:
    st.success(
        f"Model **{job.model}** is ready: it is listed on the Models page in the "
        f"group of {job.base_model}, and every page that picks a model offers it."
    )
    left, right = st.columns(2)
    with left:
        st.markdown("**Try it**: the same question to both models.")
        _try_it(job)
    with right:
        st.markdown(
            f"**Compare with base**: both models answer the {job.validation_rows} validation "
            f"row{'s' if job.validation_rows != 1 else ''} (never trained on), scored against "
            "the expected answers, side by side on the Compare page with a test of whether "
            "the difference is real."
        )
        st.button(
            "Compare with base", key=f"ft_compare_{job.id}", type="primary",
            on_click=_compare, args=(job.id,), disabled=job.validation_rows == 0,
            help="Needs validation rows: a job with a validation share of 0 has none.",
        )  # fmt: skip


def _summary(job: FineTuneView) -> str:
    if not job.active:
        parts = [f"{job.step} step{'s' if job.step != 1 else ''}"]
    elif job.total_steps:
        parts = [f"step {job.step} of {job.total_steps}"]
    else:
        parts = [f"step {job.step}"]
    if job.train_loss is not None:
        parts.append(f"training loss {job.train_loss:.3f}")
    if job.val_loss is not None:
        parts.append(f"validation loss {job.val_loss:.3f}")
    if job.eta_s is not None:
        parts.append(f"about {job.eta_s / 60:.0f} min left" if job.eta_s > 90 else
                     f"about {job.eta_s:.0f} s left")  # fmt: skip
    parts.append(f"{job.elapsed_s:.0f} s so far" if job.active else f"took {job.elapsed_s:.0f} s")
    return " · ".join(parts)


def _job(job: FineTuneView) -> None:
    state = "stalled (its worker stopped)" if job.stalled else job.state
    with st.container(border=True):
        st.markdown(
            f"**Job {job.id}** · {job.base_model} → {job.model or 'new model'} · {state} · "
            f"{job.train_rows} training / {job.validation_rows} validation rows · "
            f"dataset version {job.dataset_version_id}"
        )
        fraction = job.step / job.total_steps if job.total_steps else 0.0
        st.progress(min(1.0, fraction if job.active else 1.0), text=_summary(job))
        st.caption(
            "Loss measures how far the model's answers are from the examples (lower is "
            "better). The validation loss is measured on rows the model never trains on."
        )
        figure = loss_figure(job.id)
        if figure is not None:
            st.plotly_chart(figure, key=f"ft_curve_{job.id}", width="stretch")
        if job.error:
            st.error(job.error)
        if job.active:
            cols = st.columns(4)
            cols[0].button(
                "Cancelling…" if job.cancel_requested else "Cancel", key=f"ft_cancel_{job.id}",
                on_click=_act, args=("cancel", job.id), disabled=job.cancel_requested,
                help="Stops the training; no model is registered.",
            )  # fmt: skip
            if job.stalled:
                cols[1].button(
                    "Resume", key=f"ft_resume_{job.id}", on_click=_act, args=("resume", job.id),
                    help="Starts a new worker; it goes on from the last checkpoint.",
                )  # fmt: skip
        with st.expander("Log"):
            for line in job_logs(job_id=job.id)[-50:]:
                st.text(f"{line.at:%H:%M:%S}  {line.message}")
        if job.state == "succeeded" and job.model:
            _result(job)


@st.fragment(run_every=2.0)
def job_list(app_id: int) -> None:
    if st.session_state.pop(OPEN_COMPARISON, None) is not None:
        st.switch_page("pages/compare.py")
    if "ft_jobs_error" in st.session_state:
        show_error(st.session_state.pop("ft_jobs_error"))
    try:
        jobs = list_jobs(app_id=app_id, limit=20)
    except Exception as exc:
        show_error(exc)
        return
    if not jobs:
        st.info(
            "No fine-tuning jobs in this app yet. Fill in the form above and press Start "
            "fine-tuning: the job's loss curve shows here while it trains."
        )
        return
    for job in jobs:
        _job(job)
