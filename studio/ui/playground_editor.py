"""The Playground's editor: model choice, sampling parameters and the prompt template.

The editor's state lives in ``st.session_state`` under ``pg_*`` keys so that
picking a variant can load its configuration into every widget at once
(:func:`load_config`), and :func:`current_config` can read the edited
configuration back as a :class:`~studio.services.variants.VariantConfig`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import streamlit as st

from studio.core.errors import StudioError
from studio.core.schemas import ModelType
from studio.core.templates import PromptTemplate, render_preview
from studio.models import registry
from studio.models.connections import BUILTIN_CONNECTION, get_provider, list_connections
from studio.services.retrieval_spec import check_prompt_columns, require_prompt_columns
from studio.services.variants import VariantConfig, VariantParameters, parse_config
from studio.ui.common import show_error, studio_session
from studio.ui.playground_retrieval import (
    current_retrieval,
    init_retrieval,
    load_retrieval,
    retrieval_preview,
)

__all__ = [
    "DEFAULT_MODEL",
    "connection_models",
    "current_config",
    "init_editor",
    "load_config",
    "model_picker",
    "parameters_editor",
    "prompt_editor",
    "variables_panel",
]

log = logging.getLogger(__name__)

DEFAULT_MODEL = "builtin/smollm2-135m-instruct"
TEXT_TYPES = {ModelType.CHAT_COMPLETION.value, ModelType.COMPLETION.value}
ROLES = ["user", "assistant", "system"]
DEFAULTS: dict[str, Any] = {
    "pg_kind": "Completion",
    "pg_template": "",
    "pg_system": "",
    "pg_msg_count": 1,
    "pg_model": DEFAULT_MODEL,
    "pg_temperature": 0.2,
    "pg_max_tokens": 128,
    "pg_top_p": 1.0,
    "pg_stop": "",
}


def init_editor() -> None:
    for key, value in DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = value
    init_retrieval()


def load_config(config: VariantConfig) -> None:
    """Put a saved configuration into the editor's widgets."""
    prompt, params = config.prompt, config.parameters
    state = st.session_state
    state.pg_kind = "Chat" if prompt.kind == "chat" else "Completion"
    state.pg_template = prompt.template
    state.pg_system = prompt.system
    state.pg_msg_count = max(1, len(prompt.messages))
    for i, message in enumerate(prompt.messages):
        state[f"pg_msg_role_{i}"] = message.role
        state[f"pg_msg_content_{i}"] = message.content
    state.pg_model = config.model
    state.pg_temperature = params.temperature if params.temperature is not None else 0.2
    state.pg_max_tokens = params.max_tokens or DEFAULTS["pg_max_tokens"]
    state.pg_top_p = params.top_p if params.top_p is not None else 1.0
    state.pg_stop = "\n".join(params.stop_sequences or [])
    load_retrieval(config.retrieval)


def _messages() -> list[dict[str, str]]:
    state = st.session_state
    return [
        {
            "role": state.get(f"pg_msg_role_{i}", "user"),
            "content": state.get(f"pg_msg_content_{i}", ""),
        }
        for i in range(state.pg_msg_count)
    ]


def _prompt() -> PromptTemplate:
    state = st.session_state
    if state.pg_kind == "Chat":
        return PromptTemplate.chat(_messages(), system=state.pg_system)
    return PromptTemplate.completion(state.pg_template)


def current_config() -> VariantConfig:
    """The edited configuration; raises a clear error when something is missing or invalid."""
    state = st.session_state
    stops = [s for s in str(state.pg_stop).splitlines() if s.strip()]
    parameters: dict[str, Any] = {
        "temperature": float(state.pg_temperature),
        "max_tokens": int(state.pg_max_tokens),
        "stop_sequences": stops or None,
    }
    if float(state.pg_top_p) < 1.0:
        parameters["top_p"] = float(state.pg_top_p)
    try:
        prompt = _prompt()
    except ValueError as exc:
        raise StudioError(
            "The chat prompt needs at least one message.", hint="Add a user message."
        ) from exc
    config = parse_config(
        {
            "model": state.pg_model,
            "prompt": prompt.model_dump(),
            "parameters": VariantParameters.model_validate(parameters).model_dump(
                exclude_none=True
            ),
            "retrieval": current_retrieval(),
        }
    )
    if not any(source.strip() for _label, source in prompt.parts()):
        raise StudioError(
            "The prompt is empty.", hint="Write a prompt that uses the columns, e.g. {{question}}."
        )
    return config


# -- model ---------------------------------------------------------------------------------


@st.cache_data(ttl=60, show_spinner="Asking the connected providers for their models…")
def connection_models(names: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(``connection/model`` names of text models, connections that did not answer)."""
    found: list[str] = []
    failed: list[str] = []
    for name in names:
        try:
            with studio_session() as session:
                provider = get_provider(session=session, name=name)
            infos = asyncio.run(provider.list_models())
        except Exception:
            log.warning("could not list the models of connection %s", name)
            failed.append(name)
            continue
        found += [f"{name}/{i.id}" for i in infos if i.model_type.value in TEXT_TYPES]
    return found, failed


def model_picker() -> None:
    """Every text model: built-ins, custom models, and the models of each connection."""
    with studio_session() as session:
        registered = [
            m.name
            for m in registry.model_overview(session=session)
            if m.model_type in TEXT_TYPES and m.status == "READY"
        ]
        connections = tuple(
            c.name for c in list_connections(session=session) if c.name != BUILTIN_CONNECTION
        )
    remote, failed = connection_models(connections) if connections else ([], [])
    options = registered + [m for m in remote if m not in registered]
    if st.session_state.pg_model not in options:
        options.append(st.session_state.pg_model)  # a saved variant's model stays selectable
    st.selectbox(
        "Model",
        options,
        key="pg_model",
        help="Built-in models run offline. Connect providers on the Models page.",
    )
    if failed:
        st.caption(f"Could not list the models of: {', '.join(failed)} (is the server up?).")


def parameters_editor() -> None:
    c1, c2, c3 = st.columns(3)
    c1.slider(
        "Temperature",
        0.0,
        1.0,
        value=DEFAULTS["pg_temperature"],
        step=0.05,
        key="pg_temperature",
        help="0 gives the most likely answer every time; higher is more varied.",
    )
    c2.number_input(
        "Max tokens", 1, 8192, value=DEFAULTS["pg_max_tokens"], step=16, key="pg_max_tokens"
    )
    c3.slider(
        "Top p",
        0.05,
        1.0,
        value=DEFAULTS["pg_top_p"],
        step=0.05,
        key="pg_top_p",
        help="1.0 leaves it to the model.",
    )
    st.text_area(
        "Stop sequences (one per line, up to 4)",
        key="pg_stop",
        height=68,
        help="The model stops writing when it produces one of these.",
    )


# -- prompt --------------------------------------------------------------------------------


def _add_message() -> None:
    count = st.session_state.pg_msg_count
    previous = st.session_state.get(f"pg_msg_role_{count - 1}", "assistant")
    st.session_state[f"pg_msg_role_{count}"] = "assistant" if previous == "user" else "user"
    st.session_state[f"pg_msg_content_{count}"] = ""
    st.session_state.pg_msg_count = count + 1


def _remove_message() -> None:
    st.session_state.pg_msg_count = max(1, st.session_state.pg_msg_count - 1)


def prompt_editor(columns: list[str]) -> None:
    hint = ", ".join("{{" + c + "}}" for c in columns) or "no columns yet"
    st.radio(
        "Prompt kind",
        ["Completion", "Chat"],
        key="pg_kind",
        horizontal=True,
        help="Completion: one text. Chat: a system prompt and a list of messages.",
    )
    if st.session_state.pg_kind == "Completion":
        st.text_area(
            "Prompt template",
            key="pg_template",
            height=160,
            placeholder="Write an email about {{event}} for {{demographic}} of size {{size}}",
            help="Use {{column}} for a dataset column. Jinja2 filters and {% if %} work.",
        )
    else:
        st.text_area("System prompt (optional)", key="pg_system", height=90)
        for i in range(st.session_state.pg_msg_count):
            role_col, text_col = st.columns([1, 5])
            if f"pg_msg_role_{i}" not in st.session_state:
                st.session_state[f"pg_msg_role_{i}"] = "user"
            role_col.selectbox("Role", ROLES, key=f"pg_msg_role_{i}")
            text_col.text_area(f"Message {i + 1}", key=f"pg_msg_content_{i}", height=90)
        add, remove, _ = st.columns([1, 1, 3])
        add.button("Add message", key="pg_msg_add", on_click=_add_message)
        remove.button(
            "Remove last",
            key="pg_msg_remove",
            on_click=_remove_message,
            disabled=st.session_state.pg_msg_count <= 1,
        )
    if st.session_state.get("pg_rag_on"):
        hint += "; from retrieval: {{context}} (the chunks' text) and {{chunks}} (to loop over)"
    st.caption(f"Columns you can use: {hint}")


def variables_panel(columns: list[str], rows: list[dict[str, str]]) -> bool:
    """Which columns the prompt uses and lacks, and a preview for a chosen row (with the
    chunks it retrieves, when retrieval is on); True if ok."""
    try:
        prompt = _prompt()
        spec = current_retrieval()
        check = check_prompt_columns(prompt, spec, columns)
    except (StudioError, ValueError) as exc:
        if isinstance(exc, StudioError):
            show_error(exc)
        else:
            st.info("Add a message to the chat prompt.")
        return False
    if check.used:
        st.markdown("**Uses:** " + ", ".join(f"`{c}`" for c in check.used))
    else:
        st.caption("The prompt uses no columns yet, so every row gets the same prompt.")
    if spec is not None or check.missing:  # the query template's columns too
        try:
            require_prompt_columns(prompt, spec, columns)
        except StudioError as exc:  # the sentence names each column, with a did-you-mean
            show_error(exc)
            return False
    if not rows:
        return True
    if not 1 <= st.session_state.get("pg_preview_row", 0) <= len(rows):
        st.session_state.pg_preview_row = 1
    st.number_input(f"Preview row (1 to {len(rows)})", 1, len(rows), step=1, key="pg_preview_row")
    index = min(int(st.session_state.pg_preview_row), len(rows)) - 1
    values: dict[str, object] = dict(rows[index])
    if spec is not None:
        added = retrieval_preview(spec, rows[index])
        if added is None:
            return False
        values.update(added)
    result, error = render_preview(prompt, values)
    if error:
        st.error(error)
        return False
    if isinstance(result, str):
        st.code(result or " ", language=None, wrap_lines=True)
    elif result is not None:
        for message in result:
            st.markdown(f"**{message.role}**")
            st.code(message.content or " ", language=None, wrap_lines=True)
    return True
