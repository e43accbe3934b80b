"""Knowledge page: upload documents, and watch the ingestion job read and embed them.

Uploading starts a job (:mod:`studio.services.knowledge_jobs`); the page never reads or
embeds in its own script thread. The progress panel is a fragment that polls the job in
the database while it is active, so it survives a reload and shows a job started by
another tab or process; when the job ends the whole page runs again (new documents).
"""

from __future__ import annotations

import streamlit as st

from studio.core.errors import StudioError
from studio.services.jobs import cancel_job, retry_job
from studio.services.knowledge_ingest import pending_count
from studio.services.knowledge_jobs import (
    IngestionView,
    enqueue_embedding,
    enqueue_ingestion,
    latest_ingestion,
)
from studio.services.knowledge_parse import KINDS, text_fields
from studio.ui.common import show_error, studio_session

__all__ = ["POLL_S", "ingestion_panel", "upload_form"]

POLL_S = 1.0
WATCHING = "knowledge_watching"  # the job id the panel saw active


def _uploader_key(kb_id: int) -> str:
    return f"knowledge_files_{kb_id}_{st.session_state.get('knowledge_upload_round', 0)}"


def _start(kb_id: int, files: list[tuple[str, bytes]], columns: dict[str, str]) -> None:
    try:
        enqueue_ingestion(kb_id=kb_id, files=files, text_columns=columns)
    except StudioError as exc:
        st.session_state.knowledge_upload_error = exc
        return
    st.session_state.knowledge_upload_round = st.session_state.get("knowledge_upload_round", 0) + 1


def upload_form(kb_id: int, busy: bool) -> None:
    """Several files at once; for a CSV or JSON Lines file, the column holding the text."""
    uploaded = st.file_uploader(
        "Documents",
        type=sorted(k.lstrip(".") for k in KINDS),
        accept_multiple_files=True,
        key=_uploader_key(kb_id),
        help="Text, Markdown, HTML, PDF, CSV (one chunk source per row) or JSON Lines. "
        "The same file again changes nothing; a changed file replaces its chunks.",
    )
    files = [(f.name, f.getvalue()) for f in uploaded or []]
    columns: dict[str, str] = {}
    for name, data in files:
        fields = text_fields(name, data)
        if fields:
            default = fields.index("text") if "text" in fields else 0
            what = "column" if name.lower().endswith(".csv") else "field"
            columns[name] = st.selectbox(
                f"Text {what} of {name}",
                fields,
                index=default,
                key=f"knowledge_column_{name}",
                help="Each row's text in this column becomes one or more chunks.",
            )
    st.button(
        "Upload and embed" if files else "Choose files to upload",
        key="knowledge_upload",
        type="primary",
        disabled=not files or busy,
        on_click=_start,
        args=(kb_id, files, columns),
        help="Wait for the running job to finish first." if busy else None,
    )
    if "knowledge_upload_error" in st.session_state:
        show_error(st.session_state.pop("knowledge_upload_error"))


def _act(action: str, job_id: int, kb_id: int) -> None:
    try:
        if action == "cancel":
            cancel_job(job_id=job_id)
        elif action == "retry":
            retry_job(job_id=job_id)
        else:
            enqueue_embedding(kb_id=kb_id)
    except StudioError as exc:
        st.session_state.knowledge_job_error = exc


def _active(view: IngestionView) -> None:
    job = view.job
    if view.reading:
        waiting = next(f.name for f in view.files if f.outcome == "waiting")
        st.progress(
            view.files_read / max(1, len(view.files)),
            text=f"Reading and chunking files: {view.files_read} of {len(view.files)} done, "
            f"now {waiting} · {job.elapsed_s:.0f} s",
        )
    else:
        fraction = job.done / job.total if job.total else 0.0
        st.progress(
            min(1.0, fraction),
            text=f"Embedding chunks: {job.done} of {job.total} have a vector · "
            f"{job.elapsed_s:.0f} s",
        )
    st.button(
        "Cancelling…" if job.cancel_requested else "Cancel",
        key=f"knowledge_cancel_{job.id}",
        disabled=job.cancel_requested,
        on_click=_act,
        args=("cancel", job.id, view.kb_id),
        help="Stops sending chunks to the model within a second. Chunks embedded so far "
        "stay; Resume finishes the rest.",
    )


def _summary(view: IngestionView) -> None:
    job = view.job
    counts: dict[str, int] = {}
    chunks = 0
    for f in view.files:
        counts[f.outcome] = counts.get(f.outcome, 0) + 1
        chunks += f.chunks
    words = {"added": "added", "replaced": "replaced", "unchanged": "unchanged"}
    parts = [f"{counts[k]} {w}" for k, w in words.items() if counts.get(k)]
    said = f"Last upload: {', '.join(parts)} ({chunks} chunks)" if parts else "Last job"
    figures = f"{job.done} of {job.total} chunks have a vector"
    if job.state == "succeeded":
        st.success(f"{said}. {figures}; every chunk can be found by a query.")
    elif job.state == "cancelled":
        st.warning(f"{said}. Cancelled: {figures}. Resume to embed the rest.")
    else:
        st.error(f"{said}. The job stopped: {job.error or 'no reason recorded'}")
    for f in view.refused:
        st.warning(f"Refused {f.name}: {f.error}")
        if f.hint:
            st.caption(f.hint)
    if job.state in ("cancelled", "failed"):
        st.button(
            "Resume",
            key=f"knowledge_retry_{job.id}",
            on_click=_act,
            args=("retry", job.id, view.kb_id),
            help="Reads the files not read yet and embeds only the chunks still without "
            "a vector; none is embedded twice.",
        )


def _panel(kb_id: int) -> None:
    if "knowledge_job_error" in st.session_state:
        show_error(st.session_state.pop("knowledge_job_error"))
    try:
        view = latest_ingestion(kb_id=kb_id)
        with studio_session() as session:
            progress = pending_count(session=session, kb_id=kb_id)
    except StudioError as exc:
        show_error(exc)
        return
    if view is not None and view.job.active:
        st.session_state[WATCHING] = view.job.id
        _active(view)
        return
    if view is not None and st.session_state.get(WATCHING) == view.job.id:
        st.session_state[WATCHING] = None
        st.rerun()  # the job ended: show its documents, stop polling
    if view is not None:
        _summary(view)
    if not progress.complete and (view is None or view.job.state == "succeeded"):
        st.info(
            f"{progress.total - progress.embedded} of {progress.total} chunks have no vector "
            f"by {progress.model} yet, so queries cannot find them."
        )
        st.button(
            "Embed the rest",
            key="knowledge_embed_rest",
            on_click=_act,
            args=("embed", 0, kb_id),
        )


def ingestion_panel(kb_id: int) -> bool:
    """The latest ingestion job of ``kb_id`` (polled while active); True while it works."""
    try:
        view = latest_ingestion(kb_id=kb_id)
    except StudioError as exc:
        show_error(exc)
        return False
    active = view is not None and view.job.active
    st.fragment(run_every=POLL_S if active else None)(_panel)(kb_id)
    return active
