"""The Playground's run panel: live progress with Cancel, results, retries and downloads."""

from __future__ import annotations

from typing import Any, Literal

import pandas as pd
import streamlit as st

from studio.services.run_results import (
    ResultTable,
    export_results,
    get_run,
    list_runs,
    result_table,
    summarize,
)
from studio.services.runs import concurrency_note, retry_failed
from studio.ui.common import as_caller, show_error, studio_session
from studio.ui.run_jobs import RunJob, run_jobs

__all__ = ["concurrency_caption", "progress_panel", "results_panel", "runs_picker", "start_job"]

PAGE_ROWS = 1000  # results drawn at once; sending 10,000 rows to the browser takes ~1 s


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{seconds // 60:.0f} min {seconds % 60:.0f} s"


def concurrency_caption() -> None:
    """Under "Parallel calls": a sentence when the model's connection caps that number."""
    model = st.session_state.get("pg_model")
    asked = st.session_state.get("pg_concurrency")
    if not model or asked is None:
        return
    with studio_session() as session:
        note = concurrency_note(session=session, model=str(model), concurrency=int(asked))
    if note:
        st.caption(note)


def start_job(run_id: int) -> None:
    """Execute (or resume) a run in the background and show it."""
    with studio_session() as session:
        run = get_run(session=session, run_id=run_id)
        total = run.total_rows * run.samples
    run_jobs().start(run_id, total)
    st.session_state.pg_run_id = run_id


def _cancel(run_id: int) -> None:
    run_jobs().cancel(run_id)


def _progress_text(job: RunJob) -> str:
    p = job.progress
    parts = [f"{p.done} of {p.total} rows"]
    parts.append(f"{p.errors} error{'s' if p.errors != 1 else ''} so far")
    if p.cached:
        parts.append(f"{p.cached} from the cache")
    parts.append(f"elapsed {_duration(p.elapsed_s)}")
    if p.eta_s is not None:
        parts.append(f"about {_duration(p.eta_s)} left")
    return " · ".join(parts)


@st.fragment(run_every=1.0)
def _live(run_id: int) -> None:
    job = run_jobs().get(run_id)
    if job is None:
        return
    if not job.running:
        st.rerun(scope="app")  # show the finished results
    fraction = job.progress.done / job.progress.total if job.progress.total else 1.0
    st.progress(min(fraction, 1.0), text=_progress_text(job))
    cancelling = job.cancel.is_set()
    st.button(
        "Cancelling…" if cancelling else "Cancel",
        key=f"pg_cancel_{run_id}",
        on_click=_cancel,
        args=(run_id,),
        disabled=cancelling,
        help="Stops new calls. Rows already answered stay saved; resume later.",
    )


def progress_panel(run_id: int) -> bool:
    """Live progress of a running job; True while it runs."""
    job = run_jobs().get(run_id)
    if job is None or not job.running:
        return False
    _live(run_id)
    return True


def runs_picker(app_id: int) -> int | None:
    """Pick one of the app's runs (the latest started here is preselected)."""
    with studio_session() as session:
        runs = [
            summarize(session=session, run=r) for r in list_runs(session=session, app_id=app_id)
        ]
    if not runs:
        return None
    by_id = {r.id: r for r in runs}
    if st.session_state.get("pg_run_id") not in by_id:
        st.session_state.pg_run_id = runs[0].id

    def label(run_id: int) -> str:
        r = by_id[run_id]
        when = r.created_at.strftime("%Y-%m-%d %H:%M")
        return f"Run {r.id} · {r.model} on {r.dataset} v{r.dataset_version} · {when} UTC"

    picked = st.selectbox("Results of", list(by_id), key="pg_run_id", format_func=label)
    return int(picked) if picked is not None else None


def _retry(run_id: int) -> None:
    try:
        with studio_session() as session:
            retry_failed(session=session, run_id=run_id)
        start_job(run_id)
    except Exception as exc:
        st.session_state.pg_flash_error = exc


def _resume(run_id: int) -> None:
    try:
        start_job(run_id)
    except Exception as exc:
        st.session_state.pg_flash_error = exc


def _frame(columns: list[str], records: list[dict[str, Any]]) -> pd.DataFrame:
    if "retrieved_documents" in columns:  # what each row was given, beside its output
        columns = [c for c in columns if c != "retrieved_documents"]
        columns.insert(columns.index("output"), "retrieved_documents")
    frame = pd.DataFrame(records, columns=columns)
    # A row without an error, and a failed row's missing output, show an empty cell: the
    # table would otherwise print "None" there.
    for text in ("output", "error"):
        frame[text] = frame[text].fillna("")
    return frame.rename(
        columns={
            "latency_ms": "latency (ms)",
            "prompt_tokens": "prompt tokens",
            "response_tokens": "response tokens",
        }
    )


@st.cache_data(max_entries=4, show_spinner="Loading the results…")
def _table(run_id: int, stamp: tuple[object, ...]) -> ResultTable:
    """The results table; ``stamp`` changes whenever the run's results can have changed."""
    with studio_session() as session:
        return result_table(session=session, run_id=run_id)


def _export(run_id: int, fmt: Literal["csv", "jsonl"]) -> bytes:
    """Built only when the user clicks a download button."""
    with studio_session() as session:
        return export_results(session=session, run_id=run_id, fmt=fmt)


def results_panel(run_id: int) -> None:
    """Summary figures, the results table, re-run failed rows, resume, and downloads."""
    try:
        with studio_session() as session:
            run = get_run(session=session, run_id=run_id)
            summary = summarize(session=session, run=run)
        stamp = (summary.rows, summary.errors, run.status, str(run.finished_at))
        table = _table(run_id, stamp)
    except Exception as exc:
        show_error(exc)
        return
    job = run_jobs().get(run_id)
    if job is not None and job.error:
        st.error(f"The run stopped: {job.error}")
    elif run.error:
        st.error(f"The run stopped: {run.error}")
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Rows answered", f"{summary.rows - summary.errors} / {summary.total}")
    c2.metric("Errors", summary.errors)
    c3.metric("Tokens", summary.prompt_tokens + summary.response_tokens)
    c4.metric("Cost", f"${summary.cost:.4f}")
    if run.started_at and run.finished_at:
        wall = (run.finished_at - run.started_at).total_seconds()
        st.caption(f"Status: {run.status} · wall time {_duration(wall)}")
    else:
        st.caption(f"Status: {run.status}")

    actions = st.columns([1, 1, 1, 1])
    if summary.errors:
        actions[0].button(
            f"Re-run {summary.errors} failed row{'s' if summary.errors != 1 else ''}",
            key="pg_retry",
            on_click=_retry,
            args=(run_id,),
        )
    if summary.rows < summary.total:
        actions[1].button(
            f"Resume ({summary.total - summary.rows} rows left)",
            key="pg_resume",
            on_click=_resume,
            args=(run_id,),
        )
    actions[2].download_button(
        "Download CSV",
        as_caller(lambda: _export(run_id, "csv")),
        on_click="ignore",
        file_name=f"run-{run_id}-results.csv",
        mime="text/csv",
        key="pg_download_csv",
        icon=":material/download:",
    )
    actions[3].download_button(
        "Download JSON Lines",
        as_caller(lambda: _export(run_id, "jsonl")),
        on_click="ignore",
        file_name=f"run-{run_id}-results.jsonl",
        mime="application/x-ndjson",
        key="pg_download_jsonl",
        icon=":material/download:",
    )
    if not table.records:
        st.info("No rows answered yet. Press Resume to continue this run.")
        return
    records = table.records
    pages = -(-len(records) // PAGE_ROWS)
    if pages > 1:
        key = f"pg_results_page_{run_id}"
        if not 1 <= st.session_state.get(key, 0) <= pages:
            st.session_state[key] = 1
        page = int(st.number_input(f"Page (of {pages})", 1, pages, key=key))
        first = (page - 1) * PAGE_ROWS
        records = records[first : first + PAGE_ROWS]
        st.caption(
            f"Rows {first + 1} to {first + len(records)} of {len(table.records)}; "
            "the downloads hold every row."
        )
    st.dataframe(
        _frame(table.columns, records),
        hide_index=True,
        width="stretch",
        column_config={
            "output": st.column_config.TextColumn("output", width="large"),
            "latency (ms)": st.column_config.NumberColumn(format="%.0f"),
            "cost": st.column_config.NumberColumn(format="$%.6f"),
            "retrieved_documents": st.column_config.TextColumn("retrieved documents"),
            "retrieved_chunk_ids": st.column_config.TextColumn("chunk ids"),
            "retrieval_scores": st.column_config.TextColumn("retrieval scores"),
        },
    )
    if "retrieved_documents" in table.columns:
        st.caption(
            "Retrieved documents, chunk ids and scores: what each row's prompt was given from "
            "the knowledge base, best first (scores are cosine similarity, or the reranker's)."
        )
