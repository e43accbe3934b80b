"""Jobs: the long work running and queued (runs, evaluations, ingestion), who started it,
progress, Cancel."""

from __future__ import annotations

import streamlit as st

from studio.services.jobs import ACTIVE, JobView, cancel_job, list_jobs
from studio.ui import db_ready, page_header, show_error
from studio.ui.pickers import link_to

page_header(
    "Jobs",
    "Long work runs as jobs: a run is split into parts that the studio's workers share "
    "(or this studio process, with the default SQLite database), an evaluation scores "
    "its outputs, an ingestion reads documents into a knowledge base and embeds their "
    "chunks, and a fine-tuning job trains a new model in its own worker. Progress counts "
    "the rows (or scores, chunks, training steps) saved by every worker; Cancel stops a "
    "job everywhere within a second or two.",
)
db_ready()
if "jobs_finished" not in st.session_state:
    st.session_state.jobs_finished = False


def _cancel(job_id: int) -> None:
    try:
        cancel_job(job_id=job_id)
    except Exception as exc:
        st.session_state.jobs_flash_error = exc


def _job(job: JobView) -> None:
    with st.container(border=True):
        who = f"started by {job.actor or 'unknown'}"
        where = "studio workers" if job.executor == "queue" else "the studio process"
        title = {
            "ingestion": f"knowledge base {job.subject_id}",
            "finetuning": f"fine-tuning on dataset version {job.subject_id}",
        }.get(job.kind, job.title)
        if job.kind == "finetuning":
            where = "its own fine-tuning worker"
        st.markdown(f"**Job {job.id}** · {title} · {job.state} · {who} · executed by {where}")
        fraction = job.done / job.total if job.total else (0.0 if job.active else 1.0)
        unit = {"evaluation": "scores", "ingestion": "chunks embedded",
                "finetuning": "training steps"}.get(job.kind, "rows")  # fmt: skip
        text = f"{job.done} of {job.total} {unit}"
        if job.kind == "finetuning":  # one worker, no parts; its loss curve is on its page
            text += f" · {job.elapsed_s:.0f} s · loss curves on the Fine-tuning page"
        else:
            text += (
                f" · {job.errors} error{'s' if job.errors != 1 else ''} · "
                f"part {job.parts_done} of {job.parts} done · {job.elapsed_s:.0f} s"
            )
        st.progress(min(fraction, 1.0), text=text)
        if job.error:
            st.error(job.error)
        if job.active:
            st.button(
                "Cancelling…" if job.cancel_requested else "Cancel",
                key=f"jobs_cancel_{job.id}",
                on_click=_cancel,
                args=(job.id,),
                disabled=job.cancel_requested,
                help="Stops new calls on every worker. Rows already answered stay saved.",
            )


@st.fragment(run_every=1.0)
def _live() -> None:
    if "jobs_flash_error" in st.session_state:
        show_error(st.session_state.pop("jobs_flash_error"))
    try:
        jobs = list_jobs(states=None if st.session_state.jobs_finished else ACTIVE, limit=50)
    except Exception as exc:
        show_error(exc)
        return
    if not jobs:
        st.info(
            "Nothing is running or queued. Press Generate in the Playground to run a prompt "
            "over a dataset; the run shows up here while it works. Tick 'Show finished jobs' "
            "to see earlier ones."
        )
        link_to("pages/playground.py", "Go to Playground", ":material/science:")
        return
    for job in jobs:
        _job(job)


st.toggle("Show finished jobs", key="jobs_finished")
_live()
