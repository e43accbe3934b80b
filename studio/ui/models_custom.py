"""Models page, "Custom models" tab: create a model from a template, then manage it.

The creation form is drawn from the template's ``model_creation_parameters_schema``:
required parameters are marked with ``*``; ``int`` and ``float`` become number
inputs, ``bool`` a checkbox, ``str`` a text box. The deployment's progress
(PENDING → READY, or FAILED with the reason) shows in an ``st.status`` box.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from studio.core.errors import RequestValidationError, StudioError
from studio.core.schemas import parse_document
from studio.models import registry
from studio.models.specs import ModelCreate, ParameterSchema, ParameterSchemaField
from studio.store.tables import ModelTemplate
from studio.ui.common import show_error, studio_session

__all__ = ["parameter_widget", "render_custom_models"]

TEMPLATE = "models_custom_template"
OUTCOME = "models_custom_outcome"  # (ok, text) of the last creation, shown until the next
MANAGED = "models_custom_manage"
CONFIRM = "models_custom_confirm_delete"


def _param_key(template: str, name: str) -> str:
    return f"models_custom_p_{template}_{name}"


def parameter_widget(template: str, spec: ParameterSchemaField) -> Any:
    """One input for one parameter; returns its value, or None when left empty."""
    key = _param_key(template, spec.name)
    label = spec.name + (" *" if spec.required else "")
    help_text = spec.description or None
    if spec.type == "bool":
        if key not in st.session_state:
            st.session_state[key] = False
        return st.checkbox(label, key=key, help=help_text)
    if spec.type in ("int", "float"):
        if key not in st.session_state:
            st.session_state[key] = None
        if spec.type == "int":
            whole = st.number_input(label, key=key, step=1, help=help_text, placeholder="number")
            return None if whole is None else int(whole)
        number = st.number_input(
            label, key=key, step=0.1, format="%g", help=help_text, placeholder="number"
        )
        return None if number is None else float(number)
    if key not in st.session_state:
        st.session_state[key] = ""
    text = st.text_input(label, key=key, help=help_text)
    return text.strip() or None


def _problems_text(exc: RequestValidationError) -> str:
    parts = []
    for p in exc.problems:
        field = p.field.removeprefix("model_creation_parameters.")
        if p.rule.startswith("required"):
            detail = p.rule.removeprefix("required").strip()
            parts.append(f"'{field}' is required{' ' + detail if detail else ''}")
        else:
            parts.append(f"'{field}' {p.rule}")
    return "The model was not created: " + "; ".join(parts) + "."


def _deploy(name: str, data: ModelCreate) -> tuple[bool, str]:
    """Create the model, then deploy it while an ``st.status`` box tells what happens."""
    with st.status(f"Creating {name}…", expanded=True) as status:
        try:
            with studio_session() as session:
                model = registry.create_model(session=session, data=data, deploy=False, local=True)
            status.write(
                f"Deployment of {name} is **PENDING**: loading the model and sending it "
                "one test request…"
            )
            status.update(label=f"{name}: PENDING")
            with studio_session() as session:
                dep = registry.deploy_model(session=session, ref=model.id)
        except RequestValidationError as exc:
            status.update(label=f"{name} was not created", state="error")
            return False, _problems_text(exc)
        except StudioError as exc:
            status.update(label=f"{name} was not created", state="error")
            return False, str(exc)
        if dep.status == "READY":
            status.write(f"Deployment of {name} is **READY**.")
            status.update(label=f"{name}: READY", state="complete")
            return True, f"{name} is READY. Try it in the Try it tab, or call it as `{name}`."
        status.write(f"Deployment of {name} **FAILED**: {dep.status_reason}")
        status.update(label=f"{name}: FAILED", state="error")
        return False, (
            f"{name} FAILED to deploy: {dep.status_reason} Fix the parameters: delete the "
            "model below and create it again, or press Redeploy once the cause is fixed."
        )


def _create_form(templates: list[ModelTemplate]) -> None:
    st.subheader("Create a model from a template")
    by_name = {t.name: t for t in templates}
    if st.session_state.get(TEMPLATE) not in by_name:
        st.session_state[TEMPLATE] = templates[0].name
    tpl = by_name[
        st.selectbox(
            "Template",
            list(by_name),
            key=TEMPLATE,
            format_func=lambda n: f"{n}  ·  {by_name[n].model_type} on {by_name[n].runtime}",
        )
    ]
    schema = ParameterSchema.model_validate(tpl.model_creation_parameters_schema)
    for key, default in (("models_custom_name", ""), ("models_custom_group", "")):
        if key not in st.session_state:
            st.session_state[key] = default
    with st.form("models_custom_form"):
        st.text_input("Model name *", key="models_custom_name", placeholder="my-llama")
        st.text_input(
            "Group (optional)",
            key="models_custom_group",
            help="A namespace for related models; created if it does not exist.",
        )
        st.caption("Parameters of this template (* = required)")
        values = {p.name: parameter_widget(tpl.name, p) for p in schema.parameters}
        submitted = st.form_submit_button(
            "Create and deploy", type="primary", key="models_custom_create"
        )
    if not submitted:
        return
    name = st.session_state.models_custom_name.strip()
    payload = {
        "name": name,
        "model_template_id": tpl.name,
        "model_creation_parameters": {k: v for k, v in values.items() if v is not None},
        "model_group": st.session_state.models_custom_group.strip() or None,
    }
    if not name:
        ok, text = False, "Give the model a name first: it is how you will call it."
    else:
        try:
            data = parse_document(ModelCreate, payload, "model")
        except StudioError as exc:
            ok, text = False, str(exc)
        else:
            ok, text = _deploy(name, data)
    (st.success if ok else st.error)(text)


def _manage() -> None:
    with studio_session() as session:
        models = [m for m in registry.list_models(session=session) if not m.is_builtin]
        overview = {o.name: o for o in registry.model_overview(session=session)}
        groups = {g.id: g.name for g in registry.list_model_groups(session=session)}
        templates = {t.id: t.name for t in registry.list_templates(session=session)}
    st.subheader("Your models")
    if not models:
        st.info("No custom models yet. Create one from a template above.")
        return
    rows = [
        {
            "Name": m.name,
            "Type": m.model_type,
            "Made from": templates.get(m.model_template_id or "", "")
            or f"connection {m.connection}",
            "Group": groups.get(m.model_group_id or "", ""),
            "Status": overview[m.name].status if m.name in overview else "N/A",
            "Reason": (overview[m.name].status_reason or "") if m.name in overview else "",
        }
        for m in models
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    names = [m.name for m in models]
    if st.session_state.get(MANAGED) not in names:
        st.session_state[MANAGED] = names[0]
    name = st.selectbox("Manage a model", names, key=MANAGED)
    rename_col, group_col = st.columns(2)
    with rename_col.form("models_custom_rename_form", border=False):
        st.text_input("New name", key="models_custom_new_name", placeholder=name)
        if st.form_submit_button("Rename", key="models_custom_rename"):
            _act(
                lambda s: registry.rename_model(
                    session=s, ref=name, new_name=st.session_state.models_custom_new_name
                ),
                "Renamed {name} to {new}.",
                name,
            )
    with group_col.form("models_custom_group_form", border=False):
        st.text_input(
            "Group",
            key="models_custom_set_group",
            placeholder="empty = no group",
            help="Existing groups: " + (", ".join(sorted(groups.values())) or "none yet"),
        )
        if st.form_submit_button("Set group", key="models_custom_set_group_btn"):
            _act(
                lambda s: registry.set_model_group(
                    session=s, ref=name, group=st.session_state.models_custom_set_group
                ),
                "Updated the group of {name}.",
                name,
            )
    redeploy, delete = st.columns(2)
    if redeploy.button("Redeploy", key="models_custom_redeploy"):
        with st.spinner(f"Deploying {name}…"), studio_session() as session:
            dep = registry.deploy_model(session=session, ref=name)
        ok = dep.status == "READY"
        reason = "" if ok else f" ({dep.status_reason})"
        st.session_state[OUTCOME] = (ok, f"{name}: {dep.status}{reason}")
        st.rerun()
    if st.session_state.get(CONFIRM) != name:
        if delete.button("Delete…", key="models_custom_delete"):
            st.session_state[CONFIRM] = name
            st.rerun()
        return
    st.warning(f"Delete {name} and its deployment? Its usage history stays.")
    yes, no = st.columns(2)
    if yes.button(f"Yes, delete {name}", key="models_custom_delete_yes", type="primary"):
        st.session_state[CONFIRM] = None
        _act(lambda s: registry.delete_model(session=s, ref=name), "Deleted {name}.", name)
    if no.button("Cancel", key="models_custom_delete_no"):
        st.session_state[CONFIRM] = None
        st.rerun()


def _act(action: Any, done: str, name: str) -> None:
    try:
        with studio_session() as session:
            result = action(session)
    except Exception as exc:
        show_error(exc)
        return
    new = getattr(result, "name", name)
    st.session_state[OUTCOME] = (True, done.format(name=name, new=new))
    st.rerun()


def render_custom_models() -> None:
    outcome = st.session_state.get(OUTCOME)
    if outcome:
        ok, text = outcome
        (st.success if ok else st.error)(text)
        st.session_state[OUTCOME] = None
    with studio_session() as session:
        templates = registry.list_templates(session=session)
    if not templates:
        st.info("There are no model templates yet. An admin can add them in the Templates tab.")
    else:
        _create_form(templates)
    _manage()
