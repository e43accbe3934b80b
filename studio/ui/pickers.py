"""Pickers shared by pages: the current app follows the user from page to page."""

from __future__ import annotations

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from studio.services.apps import AppSummary, list_apps
from studio.services.datasets import DatasetSummary, list_versions
from studio.store.tables import DatasetVersion
from studio.ui.common import studio_session

__all__ = ["link_to", "pick_app", "pick_dataset_version"]

CURRENT_APP = "current_app_id"


def link_to(page: str, label: str, icon: str) -> None:
    """A link to another page; a caption when the page runs outside app.py's navigation."""
    try:
        st.page_link(page, label=label, icon=icon)
    except StreamlitPageNotFoundError:
        st.caption(f"Open **{label.removeprefix('Go to ')}** in the sidebar.")


def pick_app(key: str, *, why: str) -> AppSummary:
    """An app selectbox remembering the studio-wide current app; stops the page if none exist.

    ``why`` finishes the empty-state sentence, e.g. "Variants belong to an app".
    """
    if CURRENT_APP not in st.session_state:
        st.session_state[CURRENT_APP] = None
    with studio_session() as session:
        apps = list_apps(session=session)
    if not apps:
        st.info(f"No apps yet. {why}: create one on the Apps page first.")
        link_to("pages/apps.py", "Go to Apps", ":material/apps:")
        st.stop()
    by_id = {a.id: a for a in apps}
    if st.session_state.get(key) not in by_id:
        current = st.session_state[CURRENT_APP]
        st.session_state[key] = current if current in by_id else apps[0].id
    app_id = st.selectbox("App", list(by_id), key=key, format_func=lambda i: by_id[i].name)
    st.session_state[CURRENT_APP] = app_id
    return by_id[app_id]


def pick_dataset_version(datasets: list[DatasetSummary], prefix: str) -> DatasetVersion:
    """A dataset and one of its versions (the newest by default), keys under ``prefix``."""
    by_id = {d.id: d for d in datasets}
    if st.session_state.get(f"{prefix}_dataset") not in by_id:
        st.session_state[f"{prefix}_dataset"] = datasets[0].id
    left, right = st.columns([3, 1])
    dataset_id = left.selectbox(
        "Dataset",
        list(by_id),
        key=f"{prefix}_dataset",
        format_func=lambda i: f"{by_id[i].name} ({by_id[i].row_count} rows)",
    )
    with studio_session() as session:
        versions = {v.id: v for v in list_versions(session=session, dataset_id=dataset_id)}
    key = f"{prefix}_dataset_version_{dataset_id}"
    if st.session_state.get(key) not in versions:
        st.session_state[key] = max(versions, key=lambda i: versions[i].version)
    version_id = right.selectbox(
        "Version",
        sorted(versions, key=lambda i: -versions[i].version),
        key=key,
        format_func=lambda i: f"v{versions[i].version} ({versions[i].row_count} rows)",
    )
    return versions[version_id]
