"""Datasets: upload CSV / JSON Lines files to an app, look at them, edit, version, download."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from studio.services.apps import list_apps
from studio.services.datasets import (
    list_datasets,
    list_versions,
    parse_table,
    rows_frame,
    save_edited_version,
    set_expected_column,
    upload_dataset,
    version_csv,
)
from studio.ui import db_ready, page_header, show_error, studio_session

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "data"
NONE = "none"

page_header(
    "Datasets",
    "The rows your prompts run over. Upload a CSV or JSON Lines file; every column can be used "
    "in a prompt template, and one column can hold the expected output.",
)
db_ready()

for key, default in (
    ("current_app_id", None),
    ("datasets_flash", None),
    ("datasets_pending", None),
    ("datasets_upload_error", None),
):
    if key not in st.session_state:
        st.session_state[key] = default

with studio_session() as session:
    apps = list_apps(session=session)

if not apps:
    st.info("No apps yet. Datasets belong to an app: create one on the Apps page first.")
    try:
        st.page_link("pages/apps.py", label="Go to Apps", icon=":material/apps:")
    except StreamlitPageNotFoundError:  # the page runs on its own, outside app.py's navigation
        st.caption("Open **Apps** in the sidebar.")
    st.stop()

apps_by_id = {a.id: a for a in apps}
if st.session_state.get("datasets_app") not in apps_by_id:
    current = st.session_state.current_app_id
    st.session_state.datasets_app = current if current in apps_by_id else apps[0].id
app_id = st.selectbox(
    "App", list(apps_by_id), key="datasets_app", format_func=lambda i: apps_by_id[i].name
)
st.session_state.current_app_id = app_id


def _select(dataset_id: int, version_id: int, message: str) -> None:
    """Show this dataset and version on the next run, with a success message."""
    st.session_state.datasets_pending = (dataset_id, version_id)
    st.session_state.datasets_flash = message


def _sample_upload(path: Path) -> None:
    data = path.read_bytes()
    name = path.stem.replace("_", " ")
    try:
        with studio_session() as session:
            columns = parse_table(data, filename=path.name).columns
            expected = next((c for c in columns if c.lower().startswith("expected")), None)
            version = upload_dataset(
                session=session,
                app_id=app_id,
                name=name,
                data=data,
                filename=path.name,
                expected_column=expected,
            )
            ids = (version.dataset_id, version.id)
            message = f"Added the sample '{name}' as version {version.version}."
    except Exception as exc:
        st.session_state.datasets_upload_error = exc
        return
    _select(*ids, message)


with studio_session() as session:
    datasets = list_datasets(session=session, app_id=app_id)

with st.expander("Add a dataset", expanded=not datasets, icon=":material/upload:"):
    upload_col, sample_col = st.columns([3, 2], gap="large")
    with upload_col:
        st.markdown("**Upload a file**")
        uploaded = st.file_uploader(
            "CSV or JSON Lines file",
            type=["csv", "tsv", "txt", "jsonl"],
            key="datasets_file",
            help="The first line of a CSV holds the column names. Comma, semicolon, tab and "
            "pipe separators are detected. Files up to 50 MB.",
        )
        if uploaded is not None:
            data = uploaded.getvalue()
            try:
                parsed = parse_table(data, filename=uploaded.name)
            except Exception as exc:
                show_error(exc)
            else:
                st.caption(
                    f"{len(parsed.rows)} row(s), columns: {', '.join(parsed.columns)}"
                    + (
                        f" ({parsed.skipped_blank_rows} blank row(s) skipped)"
                        if parsed.skipped_blank_rows
                        else ""
                    )
                )
                name = st.text_input(
                    "Dataset name (optional)",
                    key="datasets_upload_name",
                    placeholder=Path(uploaded.name).stem.replace("_", " "),
                    help="Using the name of an existing dataset adds a new version to it.",
                )
                expected = st.selectbox(
                    "Expected-output column",
                    [NONE, *parsed.columns],
                    key="datasets_upload_expected",
                    help="The column with the answer you want (used to score runs). "
                    "Choose 'none' if there is no such column.",
                )
                if st.button("Upload", type="primary", key="datasets_upload"):
                    dataset_name = name.strip() or Path(uploaded.name).stem.replace("_", " ")
                    try:
                        with studio_session() as session:
                            version = upload_dataset(
                                session=session,
                                app_id=app_id,
                                name=dataset_name,
                                data=data,
                                filename=uploaded.name,
                                expected_column=None if expected == NONE else expected,
                            )
                            ids = (version.dataset_id, version.id)
                            number, rows = version.version, version.row_count
                    except Exception as exc:
                        show_error(exc)
                    else:
                        _select(
                            *ids, f"Uploaded '{dataset_name}' as version {number} ({rows} rows)."
                        )
                        st.rerun()
    with sample_col:
        st.markdown("**Or use a sample dataset**")
        samples = sorted(SAMPLES_DIR.glob("*.csv"))
        if not samples:
            st.caption("No sample files found in the data/ folder.")
        for path in samples:
            st.button(
                path.stem.replace("_", " ").capitalize(),
                help=f"Adds data/{path.name} to this app as a new dataset.",
                key=f"datasets_sample_{path.stem}",
                on_click=_sample_upload,
                args=(path,),
                icon=":material/dataset:",
                width="stretch",
            )
    if st.session_state.datasets_upload_error is not None:
        show_error(st.session_state.datasets_upload_error)
        st.session_state.datasets_upload_error = None

if st.session_state.datasets_flash:
    st.success(st.session_state.datasets_flash)
    st.session_state.datasets_flash = None

st.subheader("Datasets in this app")
if not datasets:
    st.info(
        f"No datasets in '{apps_by_id[app_id].name}' yet. Upload a CSV or JSON Lines file above, "
        "or start from a sample dataset."
    )
    st.stop()

st.dataframe(
    pd.DataFrame(
        [
            {
                "Name": d.name,
                "Latest version": d.latest_version,
                "Rows": d.row_count,
                "Columns": ", ".join(d.columns),
                "Expected output": d.expected_column or "",
                "Updated": d.updated_at.strftime("%Y-%m-%d %H:%M"),
            }
            for d in datasets
        ]
    ),
    hide_index=True,
    width="stretch",
    key="datasets_table",
)

ds_by_id = {d.id: d for d in datasets}
pending = st.session_state.datasets_pending
if pending and pending[0] in ds_by_id:
    st.session_state.datasets_selected = pending[0]
    st.session_state[f"datasets_version_{pending[0]}"] = pending[1]
st.session_state.datasets_pending = None
if st.session_state.get("datasets_selected") not in ds_by_id:
    st.session_state.datasets_selected = datasets[0].id

left, right = st.columns(2)
dataset_id = left.selectbox(
    "Dataset", list(ds_by_id), key="datasets_selected", format_func=lambda i: ds_by_id[i].name
)
with studio_session() as session:
    versions = list(reversed(list_versions(session=session, dataset_id=dataset_id)))
versions_by_id = {v.id: v for v in versions}
version_key = f"datasets_version_{dataset_id}"
if st.session_state.get(version_key) not in versions_by_id:
    st.session_state[version_key] = versions[0].id
version_id = right.selectbox(
    "Version",
    list(versions_by_id),
    key=version_key,
    format_func=lambda i: (
        f"Version {versions_by_id[i].version}" + (" (latest)" if i == versions[0].id else "")
    ),
)
version = versions_by_id[version_id]
dataset_name = ds_by_id[dataset_id].name

st.caption(
    f"Version {version.version}: {version.row_count} row(s), "
    f"expected output: {version.expected_column or 'none'}"
    + (f" · note: {version.note}" if version.note else "")
)

with studio_session() as session:
    frame = rows_frame(session=session, version_id=version_id)

preview, history = st.tabs(  # tracked: a rerun keeps the tab the person is on
    ["Rows", "Version history"], key="dataset_tab", on_change="rerun"
)

with preview:
    st.caption(
        "Edit cells in place. Add a row at the bottom of the table; select rows to delete them. "
        "Saving makes a new version; this one stays as it is."
    )
    edited = st.data_editor(
        frame,
        num_rows="dynamic",
        hide_index=True,
        width="stretch",
        key=f"datasets_editor_{version_id}",
        column_config={c: st.column_config.TextColumn(c) for c in frame.columns},
    )
    note_col, save_col = st.columns([3, 1], vertical_alignment="bottom")
    note = note_col.text_input(
        "Note for the new version (optional)",
        key=f"datasets_note_{version_id}",
        placeholder="e.g. fixed typos in row 3",
    )
    if save_col.button("Save as new version", type="primary", key=f"datasets_save_{version_id}"):
        rows = edited.astype(object).where(pd.notna(edited), "").to_dict("records")
        try:
            with studio_session() as session:
                saved = save_edited_version(
                    session=session, version_id=version_id, rows=rows, note=note
                )
                ids, number = (saved.dataset_id, saved.id), saved.version
        except Exception as exc:
            show_error(exc)
        else:
            if ids[1] == version_id:
                st.info("Nothing changed, so no new version was made. Edit a cell first.")
            else:
                _select(*ids, f"Saved version {number}.")
                st.rerun()

    st.markdown("**Expected-output column**")
    options = [NONE, *version.columns]
    expected_key = f"datasets_expected_{version_id}"
    if expected_key not in st.session_state:
        st.session_state[expected_key] = version.expected_column or NONE
    exp_col, exp_btn = st.columns([3, 1], vertical_alignment="bottom")
    chosen = exp_col.selectbox(
        "Column with the expected output",
        options,
        key=expected_key,
        help="Runs compare the model's answer with this column. Changing it makes a new version.",
    )
    if exp_btn.button("Set expected column", key=f"datasets_set_expected_{version_id}"):
        try:
            with studio_session() as session:
                saved = set_expected_column(
                    session=session,
                    version_id=version_id,
                    expected_column=None if chosen == NONE else chosen,
                )
                ids, number = (saved.dataset_id, saved.id), saved.version
        except Exception as exc:
            show_error(exc)
        else:
            if ids[1] == version_id:
                st.info(f"Version {version.version} already uses '{chosen}'.")
            else:
                _select(*ids, f"Saved version {number} with expected output '{chosen}'.")
                st.rerun()

    with studio_session() as session:
        csv_bytes = version_csv(session=session, version_id=version_id, bom=True)
    st.download_button(
        f"Download version {version.version} as CSV",
        data=csv_bytes,
        file_name=f"{dataset_name.replace(' ', '_')}-v{version.version}.csv",
        mime="text/csv",
        key=f"datasets_download_{version_id}",
        icon=":material/download:",
    )

with history:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Version": v.version,
                    "Rows": v.row_count,
                    "Columns": ", ".join(v.columns),
                    "Expected output": v.expected_column or "",
                    "Note": v.note,
                    "Source file": v.source_filename or "",
                    "Created": v.created_at.strftime("%Y-%m-%d %H:%M"),
                }
                for v in versions
            ]
        ),
        hide_index=True,
        width="stretch",
        key=f"datasets_history_{dataset_id}",
    )
