"""Variants: an app's saved prompt configurations, their versions, diffs, forks and edits."""

from __future__ import annotations

import streamlit as st

from studio.models.registry import model_overview
from studio.services.variants import (
    archive_variant,
    diff_versions,
    fork_variant,
    get_variant,
    get_version,
    history,
    list_variants,
    rename_variant,
    save_version,
    version_config,
)
from studio.ui import db_ready, page_header, show_error, studio_session
from studio.ui.pickers import link_to, pick_app
from studio.ui.variants_view import (
    config_editor,
    config_from_state,
    model_choices,
    readable_error,
    show_config,
    show_diff,
    variants_frame,
    version_label,
    versions_frame,
)

page_header(
    "Variants",
    "A variant is a saved prompt setup: the prompt, the model and its settings. Every save "
    "makes a new numbered version, so you can look back, compare and undo.",
)
db_ready()

for key, default in (
    ("variants_flash", None),
    ("variants_error", None),
    ("variants_show_archived", False),
):
    if key not in st.session_state:
        st.session_state[key] = default


def _notify(where: str, message: str, kind: str = "success") -> None:
    st.session_state.variants_flash = (where, kind, message)


def _fail(where: str, exc: Exception, name_label: str = "Name") -> None:
    st.session_state.variants_error = (where, readable_error(exc, {"name": name_label}))


def _notices(where: str) -> None:
    """Show the message or error left by the last action taken in this part of the page."""
    flash, error = st.session_state.variants_flash, st.session_state.variants_error
    if flash and flash[0] == where:
        (st.success if flash[1] == "success" else st.info)(flash[2])
        st.session_state.variants_flash = None
    if error and error[0] == where:
        show_error(error[1])
        st.session_state.variants_error = None


def _fork(variant_id: int) -> None:
    try:
        with studio_session() as session:
            number = st.session_state[f"variants_fork_version_{variant_id}"]
            new = fork_variant(
                session=session,
                variant_id=variant_id,
                new_name=st.session_state[f"variants_fork_name_{variant_id}"],
                version=number,
            )
            new_id = new.variant_id
    except Exception as exc:
        _fail("manage", exc, "New variant name")
        return
    st.session_state.variants_selected = new_id
    st.session_state[f"variants_fork_name_{variant_id}"] = ""
    _notify("manage", f"Forked v{number} into a new variant. You are now looking at the fork.")


def _rename(variant_id: int) -> None:
    try:
        with studio_session() as session:
            name = rename_variant(
                session=session,
                variant_id=variant_id,
                name=st.session_state[f"variants_rename_name_{variant_id}"],
            ).name
    except Exception as exc:
        _fail("manage", exc)
        return
    _notify("manage", f"Renamed the variant to '{name}'.")


def _set_archived(variant_id: int, archived: bool) -> None:
    try:
        with studio_session() as session:
            name = archive_variant(session=session, variant_id=variant_id, archived=archived).name
    except Exception as exc:
        _fail("manage", exc)
        return
    if archived:
        _notify(
            "top",
            f"Archived '{name}'. Nothing is deleted: turn on 'Show archived variants' to see "
            "or restore it.",
        )
    else:
        _notify("manage", f"Restored '{name}'.")


def _save(variant_id: int, base_id: int) -> None:
    prefix = f"variants_edit_{base_id}"
    try:
        with studio_session() as session:
            base = get_version(session=session, version_id=base_id)
            config = config_from_state(prefix, version_config(base))
            latest = history(session=session, variant_id=variant_id)[0]
            saved = save_version(
                session=session,
                variant_id=variant_id,
                config=config,
                note=st.session_state.get(f"{prefix}_note", ""),
            )
            new_id, number, unchanged = saved.id, saved.version, saved.id == latest.id
    except Exception as exc:
        _fail("edit", exc)
        return
    if unchanged:
        _notify(
            "edit", f"Nothing changed, so no new version was made (v{number} is the same).", "info"
        )
        return
    st.session_state[f"variants_version_{variant_id}"] = new_id
    st.session_state[f"variants_edit_base_{variant_id}"] = new_id
    _notify("edit", f"Saved version {number}.")


app = pick_app("variants_app", why="Variants belong to an app")
assert app.id is not None
_notices("top")

show_archived = st.toggle("Show archived variants", key="variants_show_archived")
with studio_session() as session:
    variants = list_variants(session=session, app_id=app.id, include_archived=show_archived)
    total = len(list_variants(session=session, app_id=app.id, include_archived=True))

if not variants:
    if total:
        st.info(
            f"No active variants in '{app.name}'. {total} archived variant(s) are hidden: turn "
            "on 'Show archived variants' to see or restore them."
        )
    else:
        st.info(
            f"No variants in '{app.name}' yet. Variants are saved from the Playground page: try "
            "a prompt on your dataset, then save it under 'Save as variant'. Or create one from "
            "the command line:"
        )
        st.code(
            f'studio variant create --app "{app.name}" --name email-v1 '
            "--model builtin/smollm2-135m-instruct --prompt 'Write a short email about {{event}}.'",
            language="bash",
        )
        link_to("pages/playground.py", "Go to Playground", ":material/science:")
    st.stop()

st.dataframe(
    variants_frame(variants, with_status=show_archived),
    hide_index=True,
    width="stretch",
    key="variants_table",
)
if not show_archived and total > len(variants):
    st.caption(f"{total - len(variants)} archived variant(s) hidden.")

by_id = {v.id: v for v in variants}
if st.session_state.get("variants_selected") not in by_id:
    st.session_state.variants_selected = variants[0].id
variant_id = st.selectbox(
    "Open a variant",
    list(by_id),
    key="variants_selected",
    format_func=lambda i: by_id[i].name + (" (archived)" if by_id[i].archived else ""),
)
variant = by_id[variant_id]

with studio_session() as session:
    versions = history(session=session, variant_id=variant_id)
    origin = ""
    if variant.forked_from_version_id is not None:
        source = get_version(session=session, version_id=variant.forked_from_version_id)
        parent = get_variant(session=session, app_id=app.id, ref=source.variant_id)
        origin = f" · forked from '{parent.name}' v{source.version}"
    models = model_overview(session=session)
by_version = {v.id: v for v in versions if v.id is not None}
latest = versions[0]

st.subheader(variant.name + (" (archived)" if variant.archived else ""))
st.caption(
    f"{len(versions)} version(s) · latest v{latest.version}, saved "
    f"{latest.created_at:%Y-%m-%d %H:%M} UTC{origin}"
)


def _version_picker(label: str, key: str, default: int, help: str | None = None) -> int:
    if st.session_state.get(key) not in by_version:
        st.session_state[key] = default
    chosen: int = st.selectbox(
        label,
        list(by_version),
        key=key,
        format_func=lambda i: version_label(by_version[i], latest=latest.version),
        help=help,
    )
    return chosen


history_tab, compare_tab, edit_tab, manage_tab = st.tabs(  # tracked: reruns keep the tab
    ["History", "Compare versions", "Edit and save a new version", "Fork, rename, archive"],
    key="variants_tab",
    on_change="rerun",
)

with history_tab:
    st.dataframe(versions_frame(versions), hide_index=True, width="stretch", key="variants_history")
    shown = _version_picker("Show version", f"variants_version_{variant_id}", latest.id or 0)
    with st.container(border=True):
        show_config(version_config(by_version[shown]))

with compare_tab:
    if len(versions) < 2:
        st.info(
            "This variant has one version so far. Save a new version (next tab) to compare two."
        )
    else:
        left, right = st.columns(2)
        with left:
            a_id = _version_picker(
                "Older version", f"variants_diff_a_{variant_id}", versions[1].id or 0
            )
        with right:
            b_id = _version_picker("Newer version", f"variants_diff_b_{variant_id}", latest.id or 0)
        with studio_session() as session:
            diff = diff_versions(session=session, a_id=a_id, b_id=b_id)
        a, b = by_version[a_id], by_version[b_id]
        show_diff(diff, older=f"v{a.version}", newer=f"v{b.version}")

with edit_tab:
    base_id = _version_picker(
        "Start from",
        f"variants_edit_base_{variant_id}",
        latest.id or 0,
        help="The form starts with this version's settings. Saving never changes an old "
        "version: it adds a new one after the latest.",
    )
    base = version_config(by_version[base_id])
    with st.form(f"variants_edit_form_{base_id}"):
        config_editor(f"variants_edit_{base_id}", base, model_choices(models, base.model))
        st.form_submit_button(
            f"Save as version {latest.version + 1}",
            type="primary",
            key=f"variants_save_{base_id}",
            on_click=_save,
            args=(variant_id, base_id),
        )
    _notices("edit")

with manage_tab:
    fork_col, rename_col, archive_col = st.columns(3, gap="medium")
    with fork_col, st.form(f"variants_fork_form_{variant_id}"):
        st.markdown("**Fork**: copy a version into a new variant and change it there.")
        st.text_input(
            "New variant name",
            key=f"variants_fork_name_{variant_id}",
            max_chars=200,
            placeholder=f"{variant.name} (copy)",
        )
        numbers = {v.version: v for v in versions}
        st.selectbox(
            "From version",
            list(numbers),
            key=f"variants_fork_version_{variant_id}",
            format_func=lambda n: version_label(numbers[n], latest=latest.version),
        )
        st.form_submit_button(
            "Fork", key=f"variants_fork_{variant_id}", on_click=_fork, args=(variant_id,)
        )
    with rename_col, st.form(f"variants_rename_form_{variant_id}"):
        st.markdown("**Rename**: its versions and runs stay attached to it.")
        if f"variants_rename_name_{variant_id}" not in st.session_state:
            st.session_state[f"variants_rename_name_{variant_id}"] = variant.name
        st.text_input("Name", key=f"variants_rename_name_{variant_id}", max_chars=200)
        st.form_submit_button(
            "Rename", key=f"variants_rename_{variant_id}", on_click=_rename, args=(variant_id,)
        )
    with archive_col, st.container(border=True):
        if variant.archived:
            st.markdown("**Restore**: show this variant in the list again.")
            st.button(
                "Restore variant",
                key=f"variants_restore_{variant_id}",
                on_click=_set_archived,
                args=(variant_id, False),
            )
        else:
            st.markdown(
                "**Archive**: hide this variant from the list. Nothing is deleted, and you can "
                "restore it later with 'Show archived variants'."
            )
            st.button(
                "Archive variant",
                key=f"variants_archive_{variant_id}",
                on_click=_set_archived,
                args=(variant_id, True),
            )
    _notices("manage")
