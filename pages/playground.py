"""Playground: write a prompt over a dataset's columns, try it on one row, run it on all."""

from __future__ import annotations

import streamlit as st

from studio.core.settings import DEFAULT_CONCURRENCY
from studio.services.datasets import list_datasets, list_versions, load_rows, upload_dataset
from studio.services.run_results import start_try_row
from studio.services.runs import RunConfig, create_run
from studio.services.samples import DATA_DIR, EXAMPLES
from studio.services.variants import (
    create_variant,
    latest_version,
    list_variants,
    save_version,
    version_config,
)
from studio.ui import db_ready, page_header, show_error, studio_session
from studio.ui.pickers import link_to, pick_app
from studio.ui.playground_editor import (
    current_config,
    init_editor,
    load_config,
    model_picker,
    parameters_editor,
    prompt_editor,
    variables_panel,
)
from studio.ui.playground_retrieval import retrieval_editor
from studio.ui.playground_run import (
    concurrency_caption,
    progress_panel,
    results_panel,
    runs_picker,
    start_job,
)

SAMPLE = EXAMPLES["marketing"]
CONCURRENCY = DEFAULT_CONCURRENCY  # parallel calls a new run starts with

page_header(
    "Playground",
    "Write a prompt over your dataset's columns, try it on one row, then generate an output "
    "for every row. Save the configurations you like as variants.",
)
db_ready()
init_editor()
for key, default in (
    ("pg_variant", 0),
    ("pg_flash", None),
    ("pg_flash_error", None),
    ("pg_try", None),
    ("pg_save_note", ""),
):
    if key not in st.session_state:
        st.session_state[key] = default

app = pick_app("pg_app", why="The playground works on an app's datasets")


@st.cache_data(max_entries=8, show_spinner=False)
def _rows(version_id: int) -> list[dict[str, str]]:
    """A dataset version's rows (versions never change, so caching by id is safe)."""
    with studio_session() as session:
        return load_rows(session=session, version_id=version_id)


def _add_sample() -> None:
    try:
        with studio_session() as session:
            upload_dataset(
                session=session,
                app_id=app.id,
                name="marketing events",
                data=(DATA_DIR / SAMPLE.filename).read_bytes(),
                filename=SAMPLE.filename,
            )
        st.session_state.pg_kind = "Completion"
        st.session_state.pg_template = SAMPLE.template
    except Exception as exc:
        st.session_state.pg_flash_error = exc


with studio_session() as session:
    datasets = list_datasets(session=session, app_id=app.id)
    variants = list_variants(session=session, app_id=app.id)

if st.session_state.pg_flash_error is not None:
    show_error(st.session_state.pg_flash_error)
    st.session_state.pg_flash_error = None
if st.session_state.pg_flash:
    st.success(st.session_state.pg_flash)
    st.session_state.pg_flash = None

if not datasets:
    st.info(
        f"'{app.name}' has no dataset yet. The playground runs your prompt over a dataset's "
        "rows: upload a CSV on the Datasets page, or start with a sample."
    )
    st.button(
        "Add the sample dataset (event marketing emails)",
        key="pg_add_sample",
        on_click=_add_sample,
        type="primary",
    )
    link_to("pages/datasets.py", "Go to Datasets", ":material/table:")
    st.stop()

# -- what to run -----------------------------------------------------------------------------

variants_by_id = {v.id: v for v in variants}
NEW_PROMPT = 0  # the "Start from" choice that keeps the editor as it is
if st.session_state.pg_variant not in variants_by_id:
    st.session_state.pg_variant = NEW_PROMPT


def _load_variant() -> None:
    variant_id = st.session_state.pg_variant
    if variant_id == NEW_PROMPT:
        return
    with studio_session() as session:
        load_config(version_config(latest_version(session=session, variant_id=variant_id)))
        st.session_state.pg_save_name = variants_by_id[variant_id].name


pending = st.session_state.pop("pg_open_variant", None)  # e.g. an example opened on Home
if pending in variants_by_id:
    st.session_state.pg_variant = pending
    _load_variant()

datasets_by_id = {d.id: d for d in datasets}
if st.session_state.get("pg_dataset") not in datasets_by_id:
    st.session_state.pg_dataset = datasets[0].id

pick_variant, pick_dataset, pick_version = st.columns([2, 2, 1])
pick_variant.selectbox(
    "Start from",
    [NEW_PROMPT, *variants_by_id],
    key="pg_variant",
    on_change=_load_variant,
    format_func=lambda i: (
        "A new prompt" if i == NEW_PROMPT else f"Variant: {variants_by_id[i].name}"
    ),
    help="Load a saved variant's latest version into the editor.",
)
dataset_id = pick_dataset.selectbox(
    "Dataset",
    list(datasets_by_id),
    key="pg_dataset",
    format_func=lambda i: f"{datasets_by_id[i].name} ({datasets_by_id[i].row_count} rows)",
)
with studio_session() as session:
    versions = {v.id: v for v in list_versions(session=session, dataset_id=dataset_id)}
version_key = f"pg_dataset_version_{dataset_id}"
if st.session_state.get(version_key) not in versions:
    st.session_state[version_key] = max(versions, key=lambda i: versions[i].version)
version_id = pick_version.selectbox(
    "Version",
    sorted(versions, key=lambda i: -versions[i].version),
    key=version_key,
    format_func=lambda i: f"v{versions[i].version}",
)
version = versions[version_id]
columns = list(version.columns)
rows = _rows(version_id)

# -- editor ----------------------------------------------------------------------------------

edit, preview = st.columns([3, 2], gap="large")
with edit:
    st.subheader("Prompt")
    prompt_editor(columns)
    st.subheader("Model")
    model_picker()
    parameters_editor()
    st.subheader("Retrieval")
    retrieval_editor(app.id)
with preview:
    st.subheader("Preview")
    prompt_ok = variables_panel(columns, rows)

    def _try_streamed(row: dict[str, str]) -> None:
        """Send the preview to the model and show its answer as it is written."""
        try:
            config = current_config()
            with studio_session() as session:
                tried = start_try_row(
                    session=session,
                    config=RunConfig(
                        model=config.model,
                        prompt=config.prompt,
                        parameters=config.parameter_dict(),
                        retrieval=config.retrieval,
                    ),
                    row=row,
                )
        except Exception as exc:
            st.session_state.pg_try = None
            show_error(exc)
            return
        live = st.empty()
        with live.container():
            st.markdown("**Output**")
            st.write_stream(tried.texts(), cursor="▌")
        live.empty()  # the finished answer is drawn below, with its figures
        st.session_state.pg_try = tried.result

    tried_now = st.button(
        "Try this row",
        key="pg_try_button",
        disabled=not (prompt_ok and rows),
        help="Sends the preview above to the model once and shows the answer as it is "
        "written; nothing is saved.",
    )
    if tried_now and rows:
        index = min(int(st.session_state.get("pg_preview_row", 1)), len(rows)) - 1
        _try_streamed(rows[index])
    tried = st.session_state.pg_try
    if tried is not None:
        if tried.error:
            st.error(tried.error)
        else:
            st.markdown("**Output**")
            st.info(tried.output or "(the model returned no text)")
        st.caption(
            f"{tried.latency_ms or 0:.0f} ms · {tried.prompt_tokens or 0} prompt tokens · "
            f"{tried.response_tokens or 0} response tokens"
        )

# -- generate --------------------------------------------------------------------------------


def _matching_version() -> int | None:
    """The selected variant's latest version id, if the editor still holds exactly it."""
    variant_id = st.session_state.pg_variant
    if variant_id == NEW_PROMPT:
        return None
    with studio_session() as session:
        latest = latest_version(session=session, variant_id=variant_id)
        return latest.id if version_config(latest) == current_config() else None


def _generate() -> None:
    try:
        config = current_config()
        run_config = RunConfig(
            model=config.model,
            prompt=config.prompt,
            parameters=config.parameter_dict(),
            concurrency=int(st.session_state.get("pg_concurrency", CONCURRENCY)),
            samples=int(st.session_state.get("pg_samples", 1)),
            use_cache=not st.session_state.get("pg_fresh", False),
            retrieval=config.retrieval,
        )
        with studio_session() as session:
            run = create_run(
                session=session,
                app_id=app.id,
                dataset_version_id=version_id,
                config=run_config,
                variant_version_id=_matching_version(),
            )
            run_id = run.id
        assert run_id is not None
        start_job(run_id)
    except Exception as exc:
        st.session_state.pg_flash_error = exc


st.divider()
st.subheader("Generate")
g1, g2, g3, g4 = st.columns([1, 1, 1, 2])
# These widgets take their defaults from `value`, not from presets in session state: a
# browser journey once saw "Parallel calls" drawn at its minimum after its preset was lost.
g1.number_input(
    "Parallel calls",
    1,
    128,
    value=CONCURRENCY,
    key="pg_concurrency",
    help="How many rows are sent at once.",
)
g2.number_input("Samples per row", 1, 20, value=1, key="pg_samples")
g3.checkbox(
    "Fresh samples",
    value=False,
    key="pg_fresh",
    help="Ask the model again even when an identical call was answered before.",
)
g4.button(
    f"Generate all {len(rows)} rows",
    key="pg_generate",
    type="primary",
    on_click=_generate,
    disabled=not (prompt_ok and rows),
    width="stretch",
)
concurrency_caption()  # says so when the connection's own limit caps "Parallel calls"

run_id = runs_picker(app.id)
if run_id is None:
    st.info("No runs yet. Press **Generate** to answer every row of the dataset.")
elif not progress_panel(run_id):
    results_panel(run_id)

# -- save ------------------------------------------------------------------------------------


def _save() -> None:
    name = str(st.session_state.get("pg_save_name", "")).strip()
    try:
        config = current_config()
        with studio_session() as session:
            existing = next((v for v in variants if v.name == name), None)
            if existing is not None:
                saved = save_version(
                    session=session,
                    variant_id=existing.id,
                    config=config,
                    note=st.session_state.pg_save_note,
                )
            else:
                saved = create_variant(
                    session=session,
                    app_id=app.id,
                    name=name,
                    config=config,
                    note=st.session_state.pg_save_note,
                )
            st.session_state.pg_variant = saved.variant_id
            st.session_state.pg_flash = f"Saved variant '{name}' version {saved.version}."
            st.session_state.pg_save_note = ""
    except Exception as exc:
        st.session_state.pg_flash_error = exc


st.divider()
st.subheader("Save as variant")
if "pg_save_name" not in st.session_state:
    st.session_state.pg_save_name = ""
s1, s2, s3 = st.columns([2, 3, 1], vertical_alignment="bottom")
s1.text_input(
    "Variant name",
    key="pg_save_name",
    placeholder="friendly tone",
    help="An existing name saves a new version of that variant.",
)
s2.text_input("Note (what changed)", key="pg_save_note")
s3.button("Save variant", key="pg_save", on_click=_save, width="stretch")
