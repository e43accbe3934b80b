"""Streamlit pieces of the Monitoring page: recent requests with filters, one request in
detail, and "add these requests to a dataset"."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from studio.services.api_keys import list_keys
from studio.services.datasets import list_datasets
from studio.services.endpoints import EndpointPublic
from studio.services.monitoring import (
    RequestDetail,
    RequestSummary,
    StatusFilter,
    get_request,
    list_requests,
    requests_to_dataset,
)
from studio.store.tables import utcnow
from studio.ui.common import show_error, studio_session
from studio.ui.monitoring_charts import WINDOWS, format_ms
from studio.ui.pickers import link_to

__all__ = [
    "STATUS_FILTERS",
    "add_to_dataset_panel",
    "detail_panel",
    "requests_frame",
    "requests_panel",
]

TABLE_LIMIT = 200
STATUS_FILTERS: dict[str, StatusFilter] = {
    "All": "all",
    "Successful (2xx)": "ok",
    "Errors (4xx and 5xx)": "error",
    "400 bad request": 400,
    "401 no or wrong key": 401,
    "403 key not allowed": 403,
    "404 not found": 404,
    "422 invalid body": 422,
    "429 rate limited": 429,
    "502 model failed": 502,
    "504 model timed out": 504,
}
ALL_TIME = "All time"
NEW_DATASET = 0


def _time(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _tokens(r: RequestSummary) -> str:
    if r.prompt_tokens is None and r.response_tokens is None:
        return ""
    return f"{r.prompt_tokens or 0} → {r.response_tokens or 0}"


def requests_frame(rows: Sequence[RequestSummary], names: Mapping[int, str]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Time (UTC)": _time(r.created_at),
                "Request id": r.request_id,
                "Endpoint": names.get(r.endpoint_id, "") if r.endpoint_id is not None else "",
                "Model": r.model or "",
                "Status": r.status_code,
                "Latency (ms)": round(r.latency_ms, 1),
                "Overhead (ms)": round(r.overhead_ms, 2) if r.overhead_ms is not None else None,
                "Tokens in → out": _tokens(r),
                "Error": (r.error or "")[:120],
            }
            for r in rows
        ],
        columns=[
            "Time (UTC)",
            "Request id",
            "Endpoint",
            "Model",
            "Status",
            "Latency (ms)",
            "Overhead (ms)",
            "Tokens in → out",
            "Error",
        ],
    )


def _filters() -> tuple[StatusFilter, str, datetime | None]:
    for key, default in (("mon_status", "All"), ("mon_text", ""), ("mon_when", "Same as above")):
        if key not in st.session_state:
            st.session_state[key] = default
    status_col, text_col, when_col = st.columns([2, 3, 2])
    with status_col:
        status = st.selectbox("Status", list(STATUS_FILTERS), key="mon_status")
    with text_col:
        text = st.text_input(
            "Search",
            key="mon_text",
            placeholder="request id, error text, or words in the bodies",
        )
    with when_col:
        when = st.selectbox("Time", ["Same as above", *WINDOWS, ALL_TIME], key="mon_when")
    label = st.session_state.get("mon_window", "Last hour") if when == "Same as above" else when
    since = None if label == ALL_TIME else utcnow() - WINDOWS.get(label, timedelta(hours=1))
    return STATUS_FILTERS[status], text.strip(), since


def requests_panel(endpoint_id: int | None, names: Mapping[int, str]) -> list[RequestSummary]:
    """The newest requests that pass the filters; returns them for the panels below."""
    status, text, since = _filters()
    with studio_session() as session:
        rows = list_requests(
            session=session,
            endpoint_id=endpoint_id,
            status=status,
            since=since,
            text=text or None,
            limit=TABLE_LIMIT,
        )
    if not rows:
        st.info("No requests match these filters. Widen the time or clear the search.")
        return []
    st.dataframe(
        requests_frame(rows, names),
        hide_index=True,
        width="stretch",
        key="mon_requests_table",
        column_config={"Request id": st.column_config.TextColumn(width="medium")},
    )
    more = (
        " (the newest ones; narrow the filters to see others)" if len(rows) == TABLE_LIMIT else ""
    )
    st.caption(f"{len(rows)} request(s){more}.")
    return rows


def _body(raw: str | None) -> tuple[str, str | None]:
    """A body pretty-printed when it is JSON."""
    if raw is None:
        return "(not kept: see the gateway's body logging setting)", None
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False), "json"
    except ValueError:
        return raw, None


def _key_label(key_id: int | None) -> str:
    if key_id is None:
        return "none"
    with studio_session() as session:
        for key in list_keys(session=session):
            if key.id == key_id:
                return f"{key.name} ({key.prefix}…)" + (" · revoked" if key.revoked else "")
    return f"key {key_id}"


def _show_detail(detail: RequestDetail, names: Mapping[int, str]) -> None:
    endpoint = names.get(detail.endpoint_id or -1, "")
    st.markdown(
        f"**{detail.status_code}** · `{detail.route}` · "
        + (f"endpoint **{endpoint}** · " if endpoint else "")
        + (f"model `{detail.model}` · " if detail.model else "")
        + f"{_time(detail.created_at)} UTC"
    )
    cols = st.columns(5)
    cols[0].metric("Total latency", format_ms(detail.latency_ms))
    cols[1].metric("Model latency", format_ms(detail.model_latency_ms))
    cols[2].metric(
        "Gateway overhead",
        format_ms(detail.overhead_ms),
        help="Time the gateway added around the model call (auth, rendering, logging).",
    )
    tokens = (detail.prompt_tokens or 0) + (detail.response_tokens or 0)
    cols[3].metric(
        "Tokens used",
        f"{tokens:,}",
        help=f"{detail.prompt_tokens or 0} prompt, {detail.response_tokens or 0} answer.",
    )
    cols[4].metric(
        "Cost of this call",
        f"${detail.cost:,.6f}" if detail.cost else "$0",
        help="From the model's price on the Models page; $0 when no price is set.",
    )
    st.caption(f"Request id `{detail.request_id}` · API key: {_key_label(detail.api_key_id)}")
    if detail.error:
        st.error(detail.error)
    if detail.retrieval:
        _show_retrieval(detail.retrieval)
    left, right = st.columns(2)
    with left:
        st.markdown("**Request body**")
        text, lang = _body(detail.request_body)
        st.code(text, language=lang, wrap_lines=True)
    with right:
        st.markdown("**Response body**")
        text, lang = _body(detail.response_body)
        st.code(text, language=lang, wrap_lines=True)


def _show_retrieval(retrieval: dict[str, Any]) -> None:
    chunks = retrieval.get("chunks") or []
    st.markdown(
        f"**Retrieved** for the query _{retrieval.get('query', '')}_: {len(chunks)} "
        f"chunk{'s' if len(chunks) != 1 else ''} the prompt was given, best first"
    )
    if chunks:
        st.dataframe(
            [{"document": c.get("document"), "chunk id": c.get("id"), "score": c.get("score")}
             for c in chunks],
            hide_index=True,
            column_config={"score": st.column_config.NumberColumn(format="%.3f")},
        )  # fmt: skip


def detail_panel(rows: Sequence[RequestSummary], names: Mapping[int, str]) -> None:
    """Pick one of the shown requests and see everything the log kept about it."""
    by_id = {r.request_id: r for r in rows}
    if st.session_state.get("mon_detail") not in by_id:
        st.session_state["mon_detail"] = rows[0].request_id
    chosen = st.selectbox(
        "Request",
        list(by_id),
        key="mon_detail",
        format_func=lambda i: f"{_time(by_id[i].created_at)} · {by_id[i].status_code} · {i}",
    )
    with studio_session() as session:
        try:
            detail = get_request(session=session, request_id=chosen)
        except Exception as exc:
            show_error(exc)
            return
    _show_detail(detail, names)


def _add(app_id: int, ids: list[str]) -> None:
    target = st.session_state.get(f"mon_add_target_{app_id}", NEW_DATASET)
    try:
        with studio_session() as session:
            version = requests_to_dataset(
                session=session,
                app_id=app_id,
                request_ids=ids,
                dataset_id=None if target == NEW_DATASET else target,
                name=st.session_state.get(f"mon_add_name_{app_id}", ""),
            )
            rows = version.row_count
            datasets = {d.id: d.name for d in list_datasets(session=session, app_id=app_id)}
    except Exception as exc:
        st.session_state["mon_add_result"] = exc
        return
    name = datasets.get(version.dataset_id, "the dataset")
    st.session_state["mon_add_result"] = (
        f"Saved '{name}' version {version.version} with {rows} row(s), including the "
        f"{len(ids)} chosen request(s) that had inputs. Open it on the Datasets page or run "
        "a variant over it in the Playground."
    )


def add_to_dataset_panel(
    rows: Sequence[RequestSummary], endpoints: Sequence[EndpointPublic]
) -> None:
    """Turn logged calls into test rows of one of the app's datasets (or a new one)."""
    result = st.session_state.pop("mon_add_result", None)
    if isinstance(result, BaseException):
        show_error(result)
    elif result:
        st.success(result)
        link_to("pages/datasets.py", "Go to Datasets", ":material/table:")
    apps = {e.id: (e.app_id, e.app_name) for e in endpoints}
    usable = [r for r in rows if r.endpoint_id in apps and r.status_code < 400]
    if not usable:
        st.caption("Only successful calls to an endpoint can become dataset rows; none is shown.")
        return
    app_names = {apps[r.endpoint_id][0]: apps[r.endpoint_id][1] for r in usable if r.endpoint_id}
    if st.session_state.get("mon_add_app") not in app_names:
        st.session_state["mon_add_app"] = next(iter(app_names))
    app_id = st.selectbox(
        "App", list(app_names), key="mon_add_app", format_func=lambda i: app_names[i]
    )
    mine = {r.request_id: r for r in usable if r.endpoint_id and apps[r.endpoint_id][0] == app_id}
    pick_key = f"mon_add_pick_{app_id}"
    if pick_key not in st.session_state:
        st.session_state[pick_key] = list(mine)
    st.session_state[pick_key] = [i for i in st.session_state[pick_key] if i in mine]
    st.multiselect(
        "Requests to add (their inputs become rows)",
        list(mine),
        key=pick_key,
        format_func=lambda i: f"{_time(mine[i].created_at)} · {i[:8]}",
    )
    with studio_session() as session:
        datasets = {d.id: d.name for d in list_datasets(session=session, app_id=app_id)}
    target_key = f"mon_add_target_{app_id}"
    if st.session_state.get(target_key) not in (NEW_DATASET, *datasets):
        st.session_state[target_key] = NEW_DATASET
    target = st.selectbox(
        "Dataset",
        [NEW_DATASET, *datasets],
        key=target_key,
        format_func=lambda i: "A new dataset" if i == NEW_DATASET else f"Add to '{datasets[i]}'",
        help="Adding to a dataset saves its next version: the rows it had, then these.",
    )
    name_key = f"mon_add_name_{app_id}"
    if name_key not in st.session_state:
        st.session_state[name_key] = f"gateway requests {utcnow():%Y-%m-%d}"
    if target == NEW_DATASET:
        st.text_input("New dataset name", key=name_key, max_chars=200)
    chosen = list(st.session_state[pick_key])
    st.button(
        f"Add {len(chosen)} request(s) to the dataset",
        key="mon_add_button",
        type="primary",
        disabled=not chosen,
        on_click=_add,
        args=(app_id, chosen),
    )
