"""Apps: create one per use case, see what is in each, rename, describe, archive."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from studio.services.apps import archive_app, create_app, describe_app, list_apps, rename_app
from studio.ui import db_ready, page_header, show_error, studio_session

page_header(
    "Apps",
    "An app is one use case, e.g. a marketing copy writer. It holds the datasets, "
    "prompt variants and runs for that use case.",
)
db_ready()

for key, default in (
    ("current_app_id", None),
    ("apps_flash", None),
    ("apps_create_error", None),
    ("apps_edit_error", None),
):
    if key not in st.session_state:
        st.session_state[key] = default


def _create() -> None:
    """Form callback: runs before the page, so it may clear the form's fields."""
    st.session_state.apps_create_error = None
    try:
        with studio_session() as session:
            app = create_app(
                session=session,
                name=st.session_state.apps_new_name,
                description=st.session_state.apps_new_description,
            )
            app_id, name = app.id, app.name
    except Exception as exc:
        st.session_state.apps_create_error = exc
        return
    st.session_state.current_app_id = app_id
    st.session_state.apps_selected = app_id
    st.session_state.apps_new_name = ""
    st.session_state.apps_new_description = ""
    st.session_state.apps_flash = f"Created '{name}'. Add a dataset to it on the Datasets page."


def _save(app_id: int) -> None:
    st.session_state.apps_edit_error = None
    try:
        with studio_session() as session:
            rename_app(
                session=session, ref=app_id, name=st.session_state[f"apps_edit_name_{app_id}"]
            )
            app = describe_app(
                session=session,
                ref=app_id,
                description=st.session_state[f"apps_edit_description_{app_id}"],
            )
            name = app.name
    except Exception as exc:
        st.session_state.apps_edit_error = exc
        return
    st.session_state.apps_flash = f"Saved the changes to '{name}'."


def _set_archived(app_id: int, archived: bool) -> None:
    st.session_state.apps_edit_error = None
    try:
        with studio_session() as session:
            name = archive_app(session=session, ref=app_id, archived=archived).name
    except Exception as exc:
        st.session_state.apps_edit_error = exc
        return
    if archived:
        if st.session_state.current_app_id == app_id:
            st.session_state.current_app_id = None
        st.session_state.apps_flash = (
            f"Archived '{name}'. Its runs are kept; turn on 'Show archived apps' to restore it."
        )
    else:
        st.session_state.apps_flash = f"Restored '{name}'."


st.subheader("Create an app")
with st.form("apps_create_form", border=True):
    st.text_input("Name", key="apps_new_name", placeholder="Marketing copy", max_chars=200)
    st.text_area(
        "Description (optional)",
        key="apps_new_description",
        placeholder="What the app is for, e.g. 'Short event announcements for the newsletter'.",
        height=80,
    )
    st.form_submit_button("Create app", type="primary", key="apps_create", on_click=_create)
if st.session_state.apps_create_error is not None:
    show_error(st.session_state.apps_create_error)
    st.session_state.apps_create_error = None

if st.session_state.apps_flash:
    st.success(st.session_state.apps_flash)
    st.session_state.apps_flash = None

st.subheader("Your apps")
if "apps_show_archived" not in st.session_state:
    st.session_state.apps_show_archived = False
show_archived = st.toggle("Show archived apps", key="apps_show_archived")

with studio_session() as session:
    apps = list_apps(session=session, include_archived=show_archived)
    hidden = (
        0 if show_archived else len(list_apps(session=session, include_archived=True)) - len(apps)
    )

if not apps:
    if hidden:
        st.info(
            f"No active apps. {hidden} archived app(s) are hidden: turn on 'Show archived apps' "
            "to restore one, or create a new app above."
        )
    else:
        st.info("No apps yet. Create your first app above, e.g. 'Marketing copy'.")
    st.stop()

table = pd.DataFrame(
    [
        {
            "Name": a.name,
            "Description": a.description,
            "Variants": a.variants,
            "Datasets": a.datasets,
            "Runs": a.runs,
            "Last activity": a.last_activity.strftime("%Y-%m-%d %H:%M UTC"),
            **({"Status": "archived" if a.archived else "active"} if show_archived else {}),
        }
        for a in apps
    ]
)
st.dataframe(table, hide_index=True, width="stretch", key="apps_table")
if hidden:
    st.caption(f"{hidden} archived app(s) hidden. Turn on 'Show archived apps' to see them.")

by_id = {a.id: a for a in apps}
if st.session_state.get("apps_selected") not in by_id:
    current = st.session_state.current_app_id
    st.session_state.apps_selected = current if current in by_id else apps[0].id
selected_id = st.selectbox(
    "Open an app",
    list(by_id),
    key="apps_selected",
    format_func=lambda i: by_id[i].name + (" (archived)" if by_id[i].archived else ""),
    help="The app you open here is the one the other pages (Datasets, …) start with.",
)
app = by_id[selected_id]
if not app.archived:
    st.session_state.current_app_id = app.id

with st.container(border=True):
    st.markdown(f"**{app.name}**" + (" · archived" if app.archived else ""))
    st.caption(
        f"{app.variants} variant(s) · {app.datasets} dataset(s) · {app.runs} run(s) · "
        f"created {app.created_at:%Y-%m-%d}"
    )
    with st.form(f"apps_edit_form_{app.id}", border=False):
        st.text_input("Name", value=app.name, key=f"apps_edit_name_{app.id}", max_chars=200)
        st.text_area(
            "Description",
            value=app.description,
            key=f"apps_edit_description_{app.id}",
            height=80,
        )
        st.form_submit_button(
            "Save changes", key=f"apps_save_{app.id}", on_click=_save, args=(app.id,)
        )
    if app.archived:
        st.button(
            "Restore app",
            key=f"apps_restore_{app.id}",
            on_click=_set_archived,
            args=(app.id, False),
            help="Show the app in the list again.",
        )
    else:
        st.button(
            "Archive app",
            key=f"apps_archive_{app.id}",
            on_click=_set_archived,
            args=(app.id, True),
            help="Hide the app from the list. Nothing is deleted; you can restore it later.",
        )
    if st.session_state.apps_edit_error is not None:
        show_error(st.session_state.apps_edit_error)
        st.session_state.apps_edit_error = None
