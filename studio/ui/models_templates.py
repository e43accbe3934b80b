"""Models page, "Templates" tab (administrators only): list, inspect and create model templates."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st

from studio.core.errors import FieldProblem, RequestValidationError, StudioError
from studio.core.schemas import ModelType, parse_document
from studio.models import registry
from studio.models.specs import RUNTIMES, TemplateCreate
from studio.ui.common import show_error, studio_session

__all__ = ["render_templates", "template_from_json"]

VIEW = "models_tpl_view"
NOTICE = "models_tpl_notice"
PARAMS = "models_tpl_params"
EMPTY_PARAMS = pd.DataFrame(
    {"name": ["model_path"], "type": ["str"], "description": [""], "required": [True]}
)


def template_from_json(text: str, source: str) -> TemplateCreate:
    """Parse a template document; JSON and schema problems become one clear error."""
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RequestValidationError(
            [FieldProblem(f"line {exc.lineno} column {exc.colno}", exc.msg)],
            what=f"JSON in {source}",
        ) from exc
    return parse_document(TemplateCreate, payload, "model template")


def _create(data: TemplateCreate) -> None:
    try:
        with studio_session() as session:
            row = registry.create_template(session=session, data=data, local=True)
    except StudioError as exc:
        show_error(exc)
        return
    st.session_state[NOTICE] = (
        f"Created template {row.name}. It is now offered in the Custom models tab."
    )
    st.rerun()


def _parameters(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for record in frame.to_dict("records"):
        name = str(record.get("name") or "").strip()
        if not name:
            continue
        out.append(
            {
                "name": name,
                "type": record.get("type") or "str",
                "description": str(record.get("description") or ""),
                "required": bool(record.get("required")),
            }
        )
    return out


def _form() -> None:
    defaults = {
        "models_tpl_name": "",
        "models_tpl_type": ModelType.CHAT_COMPLETION.value,
        "models_tpl_runtime": "llama-cpp",
        "models_tpl_config": "{}",
    }
    for key, value in defaults.items():
        if key not in st.session_state:
            st.session_state[key] = value
    with st.form("models_tpl_form"):
        st.text_input("Template name *", key="models_tpl_name")
        left, right = st.columns(2)
        left.selectbox("Model type", [t.value for t in ModelType], key="models_tpl_type")
        right.selectbox("Runtime", list(RUNTIMES), key="models_tpl_runtime")
        st.text_area(
            "Runtime configuration (JSON object, fixed for every model of this template)",
            key="models_tpl_config",
            height=80,
        )
        st.caption("Parameters a model must or may supply")
        params = st.data_editor(
            EMPTY_PARAMS,
            key=PARAMS,
            num_rows="dynamic",
            hide_index=True,
            width="stretch",
            column_config={
                "name": st.column_config.TextColumn("name", required=True),
                "type": st.column_config.SelectboxColumn(
                    "type", options=["str", "int", "float", "bool"], required=True
                ),
                "description": st.column_config.TextColumn("description"),
                "required": st.column_config.CheckboxColumn("required", default=False),
            },
        )
        submitted = st.form_submit_button("Create template", type="primary", key="models_tpl_save")
    if not submitted:
        return
    try:
        config = json.loads(st.session_state.models_tpl_config or "{}")
        data = parse_document(
            TemplateCreate,
            {
                "name": st.session_state.models_tpl_name.strip(),
                "model_type": st.session_state.models_tpl_type,
                "runtime": st.session_state.models_tpl_runtime,
                "runtime_config": config,
                "model_creation_parameters_schema": {"parameters": _parameters(params)},
            },
            "model template",
        )
    except json.JSONDecodeError as exc:
        show_error(
            RequestValidationError(
                [FieldProblem(f"line {exc.lineno} column {exc.colno}", exc.msg)],
                what="runtime configuration JSON",
            )
        )
        return
    except StudioError as exc:
        show_error(exc)
        return
    _create(data)


def _from_json() -> None:
    if "models_tpl_json" not in st.session_state:
        st.session_state.models_tpl_json = ""
    upload = st.file_uploader("Template JSON file", type=["json"], key="models_tpl_upload")
    st.text_area(
        "…or paste the JSON",
        key="models_tpl_json",
        height=160,
        placeholder='{"name": "my-template", "model_type": "CHAT_COMPLETION", '
        '"runtime": "llama-cpp", "model_creation_parameters_schema": {"parameters": '
        '[{"name": "model_path", "type": "str", "required": true}]}}',
    )
    if st.button("Create from JSON", key="models_tpl_json_create"):
        if upload is not None:
            text, source = upload.getvalue().decode("utf-8", errors="replace"), upload.name
        else:
            text, source = st.session_state.models_tpl_json, "the text box"
        if not text.strip():
            st.warning("Choose a JSON file or paste the template's JSON first.")
            return
        try:
            data = template_from_json(text, source)
        except StudioError as exc:
            show_error(exc)
            return
        _create(data)


def render_templates() -> None:
    if st.session_state.get(NOTICE):
        st.success(st.session_state[NOTICE])
        st.session_state[NOTICE] = None
    st.write(
        "Templates describe how a self-hosted model runs and which parameters a model made "
        "from it must supply. You see this tab because you are an administrator."
    )
    with studio_session() as session:
        templates = registry.list_templates(session=session)
    rows = [
        {
            "Name": t.name,
            "Type": t.model_type,
            "Runtime": t.runtime,
            "Parameters (* = required)": ", ".join(
                p["name"] + ("*" if p.get("required") else "")
                for p in t.model_creation_parameters_schema.get("parameters", [])
            ),
            "Ships with the studio": "yes" if t.is_system else "",
        }
        for t in templates
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    if templates:
        by_name = {t.name: t for t in templates}
        if st.session_state.get(VIEW) not in by_name:
            st.session_state[VIEW] = templates[0].name
        chosen = by_name[st.selectbox("View a template", list(by_name), key=VIEW)]
        left, right = st.columns(2)
        left.markdown("**Parameter schema** (`model_creation_parameters_schema`)")
        left.json(chosen.model_creation_parameters_schema)
        right.markdown("**Runtime configuration**")
        right.json(chosen.runtime_config or {})
    st.subheader("Create a template")
    form_tab, json_tab = st.tabs(  # tracked: a rerun keeps the form being filled in
        ["With a form", "From a JSON file"], key="template_tab", on_change="rerun"
    )
    with form_tab:
        _form()
    with json_tab:
        _from_json()
