"""Streamlit pieces of the Variants page: tables, a configuration viewer, a diff, an editor.

The page stays thin: it picks the app and the variant and calls one service per
action; what a version looks like on screen, and how the edit form turns back
into a :class:`VariantConfig`, lives here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from studio.core.errors import FieldProblem, RequestValidationError, StudioError
from studio.models.registry import ModelOverview
from studio.services.knowledge import get_knowledge_base
from studio.services.variants import VariantConfig, VariantSummary, parse_config
from studio.store.tables import VariantVersion
from studio.ui.common import studio_session

__all__ = [
    "config_editor",
    "config_from_state",
    "model_choices",
    "parameters_text",
    "readable_error",
    "show_config",
    "show_diff",
    "variants_frame",
    "version_label",
    "versions_frame",
]

PROMPT_MODEL_TYPES = ("COMPLETION", "CHAT_COMPLETION")
ROLES = ["user", "assistant", "system"]
TIME_FORMAT = "%Y-%m-%d %H:%M UTC"

PARAMETER_LABELS = {
    "temperature": "Temperature",
    "max_tokens": "Max tokens",
    "top_p": "Top p",
    "stop_sequences": "Stop sequences",
}
FIELD_LABELS = {"model": "Model", "prompt": "Prompt", "name": "Name", "note": "Note"}


# -- tables ---------------------------------------------------------------------------


def parameters_text(params: dict[str, Any]) -> str:
    """``{"temperature": 0.2, "max_tokens": 80}`` → ``Temperature 0.2 · Max tokens 80``."""
    if not params:
        return "model defaults"
    parts = []
    order = [
        *(k for k in PARAMETER_LABELS if k in params),
        *(k for k in params if k not in PARAMETER_LABELS),
    ]
    for key in order:
        value, label = params[key], PARAMETER_LABELS.get(key, key)
        shown = ", ".join(json.dumps(s) for s in value) if isinstance(value, list) else value
        parts.append(f"{label} {shown}")
    return " · ".join(parts)


def variants_frame(variants: Iterable[VariantSummary], *, with_status: bool) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Name": v.name,
                "Latest version": v.latest_version,
                "Model": v.model,
                "Last saved": v.last_saved.strftime(TIME_FORMAT),
                **({"Status": "archived" if v.archived else "active"} if with_status else {}),
            }
            for v in variants
        ]
    )


def versions_frame(versions: Iterable[VariantVersion]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Version": v.version,
                "Note": v.note,
                "Saved": v.created_at.strftime(TIME_FORMAT),
                "Model": v.model,
                "Parameters": parameters_text(v.parameters),
            }
            for v in versions
        ]
    )


def version_label(version: VariantVersion, *, latest: int) -> str:
    label = f"v{version.version}"
    if version.version == latest:
        label += " (latest)"
    if version.note:
        note = version.note if len(version.note) <= 50 else version.note[:49] + "…"
        label += f" · {note}"
    return label


# -- viewing --------------------------------------------------------------------------


def show_config(config: VariantConfig) -> None:
    """The model, the parameters and the prompt of one version, readably."""
    st.markdown(f"**Model:** `{config.model}`")
    params = config.parameter_dict()
    st.markdown(
        "**Parameters:** "
        + " · ".join(
            f"{label}: {_param_value(key, params.get(key))}"
            for key, label in PARAMETER_LABELS.items()
        )
    )
    _show_retrieval(config)
    prompt = config.prompt
    if prompt.kind == "completion":
        st.markdown("**Prompt** (completion: the model continues this text)")
        st.code(prompt.template or "(empty)", language=None, wrap_lines=True)
        return
    st.markdown("**Prompt** (chat: the model answers the last message)")
    if prompt.system:
        with st.chat_message("system", avatar=":material/settings:"):
            st.caption("System prompt")
            st.text(prompt.system)
    for message in prompt.messages:
        with st.chat_message(message.role):
            st.caption(message.role.capitalize())
            st.text(message.content)


def _show_retrieval(config: VariantConfig) -> None:
    step = config.retrieval
    if step is None:
        st.markdown("**Retrieval:** none (the prompt sees the dataset's columns only)")
        return
    name = f"knowledge base {step.kb_id}"
    try:
        with studio_session() as session:
            name = f"knowledge base '{get_knowledge_base(session=session, ref=step.kb_id).name}'"
    except StudioError:
        name += " (deleted, or of an app you cannot see)"
    extras = [f"reranker `{step.reranker}`"] if step.reranker else []
    extras += ["hybrid (BM25 + vectors)"] if step.hybrid else []
    st.markdown(
        f"**Retrieval:** the top {step.top_k} chunks of {name} for "
        f"`{step.query_template}` go into {{{{context}}}}"
        + (" · " + " · ".join(extras) if extras else "")
    )


def _param_value(key: str, value: Any) -> str:
    if value is None:
        return "none" if key == "stop_sequences" else "model default"
    if isinstance(value, list):
        return ", ".join(f"`{json.dumps(s)}`" for s in value)
    return f"**{value}**"


def show_diff(diff: str, *, older: str, newer: str) -> None:
    if not diff:
        st.info(f"{older} and {newer} are identical: same model, parameters and prompt.")
        return
    st.caption(
        f"Lines starting with **-** are only in {older}; lines starting with **+** are only "
        f"in {newer}. Unchanged lines around each change are shown for context."
    )
    st.code(_readable_diff(diff), language="diff")


def _readable_diff(diff: str) -> str:
    """Drop the file headers (the pickers name the versions); hunk headers become "…"."""
    lines = [line for line in diff.splitlines() if not line.startswith(("--- ", "+++ "))]
    hunks = sum(1 for line in lines if line.startswith("@@"))
    out = [("…" if hunks > 1 else None) if line.startswith("@@") else line for line in lines]
    return "\n".join(line for line in out if line is not None)


# -- editing --------------------------------------------------------------------------


def model_choices(models: Iterable[ModelOverview], current: str) -> list[str]:
    """Text-generating models by name, with the version's own model first."""
    names = [m.name for m in models if m.model_type in PROMPT_MODEL_TYPES]
    return [current, *(n for n in names if n != current)]


def _escape(stop: str) -> str:
    return stop.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")


def _unescape(line: str) -> str:
    out, i = [], 0
    while i < len(line):
        if line[i] == "\\" and i + 1 < len(line) and line[i + 1] in "nt\\":
            out.append({"n": "\n", "t": "\t", "\\": "\\"}[line[i + 1]])
            i += 2
        else:
            out.append(line[i])
            i += 1
    return "".join(out)


def _default(key: str, value: Any) -> None:
    if key not in st.session_state:
        st.session_state[key] = value


def config_editor(prefix: str, base: VariantConfig, models: Sequence[str]) -> None:
    """Widgets (inside a form) holding an editable copy of ``base``; keys start with ``prefix``."""
    params = base.parameters
    prompt = base.prompt
    _default(f"{prefix}_model", base.model)
    st.selectbox(
        "Model",
        list(models),
        key=f"{prefix}_model",
        accept_new_options=True,
        help="A built-in or created model, or type any model name, e.g. local/my-model "
        "for a model of the connection 'local'.",
    )
    if prompt.kind == "completion":
        _default(f"{prefix}_template", prompt.template)
        st.text_area(
            "Prompt template",
            key=f"{prefix}_template",
            height=140,
            help="Write {{column}} where a dataset column's value goes.",
        )
    else:
        _default(f"{prefix}_system", prompt.system)
        st.text_area("System prompt (optional)", key=f"{prefix}_system", height=80)
        rows = [*prompt.messages, None]
        for i, message in enumerate(rows):
            _default(f"{prefix}_role_{i}", message.role if message else "user")
            _default(f"{prefix}_content_{i}", message.content if message else "")
            role_col, text_col = st.columns([1, 5])
            role_col.selectbox("Role", ROLES, key=f"{prefix}_role_{i}")
            text_col.text_area(
                f"Message {i + 1}" if message else "Add a message (optional)",
                key=f"{prefix}_content_{i}",
                height=80,
            )
        st.caption("Clear a message's text to remove it. Use {{column}} for dataset values.")
    _default(f"{prefix}_temperature", params.temperature)
    _default(f"{prefix}_max_tokens", params.max_tokens)
    _default(f"{prefix}_top_p", params.top_p)
    _default(f"{prefix}_stops", "\n".join(_escape(s) for s in params.stop_sequences or []))
    cols = st.columns(3)
    cols[0].number_input(
        "Temperature",
        min_value=0.0,
        max_value=1.0,
        step=0.05,
        value=params.temperature,
        key=f"{prefix}_temperature",
        placeholder="model default",
        help="0 always picks the most likely word; higher values vary the answers more.",
    )
    cols[1].number_input(
        "Max tokens",
        min_value=1,
        step=10,
        value=params.max_tokens,
        key=f"{prefix}_max_tokens",
        placeholder="model default",
        help="The longest answer, in tokens (about 3/4 of a word each).",
    )
    cols[2].number_input(
        "Top p",
        min_value=0.0,
        max_value=1.0,
        step=0.05,
        value=params.top_p,
        key=f"{prefix}_top_p",
        placeholder="model default",
        help="Sample only from the most likely words that together have this probability.",
    )
    st.text_area(
        "Stop sequences (one per line, up to 4)",
        key=f"{prefix}_stops",
        height=80,
        help=r"The answer ends before any of these. Write \n for a line break.",
    )
    st.text_input(
        "Note", key=f"{prefix}_note", placeholder="What changed, e.g. 'shorter, friendlier'"
    )


def config_from_state(prefix: str, base: VariantConfig) -> VariantConfig:
    """The configuration the editor's widgets hold; problems raise RequestValidationError."""
    state = st.session_state
    problems: list[FieldProblem] = []
    model = str(state.get(f"{prefix}_model") or "").strip()
    if not model:
        problems.append(FieldProblem("model", "must not be empty: pick a model"))
    prompt: dict[str, Any]
    if base.prompt.kind == "completion":
        template = str(state.get(f"{prefix}_template") or "")
        if not template.strip():
            problems.append(FieldProblem("prompt", "must not be empty"))
        prompt = {"kind": "completion", "template": template}
    else:
        messages = []
        for i in range(len(base.prompt.messages) + 1):
            content = str(state.get(f"{prefix}_content_{i}") or "")
            if content.strip():
                messages.append({"role": state.get(f"{prefix}_role_{i}"), "content": content})
        if not messages:
            problems.append(FieldProblem("prompt", "needs at least one message"))
        prompt = {
            "kind": "chat",
            "system": state.get(f"{prefix}_system") or "",
            "messages": messages,
        }
    if problems:
        raise RequestValidationError(problems, what="variant configuration")
    stops = [_unescape(line) for line in str(state.get(f"{prefix}_stops") or "").splitlines()]
    stops = [s for s in stops if s]
    max_tokens = state.get(f"{prefix}_max_tokens")
    parameters = {
        "temperature": state.get(f"{prefix}_temperature"),
        "max_tokens": int(max_tokens) if max_tokens is not None else None,
        "top_p": state.get(f"{prefix}_top_p"),
        "stop_sequences": stops or None,
    }
    return parse_config(
        {
            "model": model,
            "prompt": prompt,
            "parameters": {k: v for k, v in parameters.items() if v is not None},
            # The retrieval step is edited in the Playground; an edit here keeps it.
            "retrieval": base.retrieval,
        }
    )


def readable_error(exc: BaseException, labels: dict[str, str] | None = None) -> BaseException:
    """Field-by-field problems as sentences with the labels the page shows (``labels`` wins)."""
    if not isinstance(exc, RequestValidationError):
        return exc
    sentences = []
    for problem in exc.problems:
        head = problem.field.split(".")
        if head[0] == "parameters" and len(head) > 1:
            label = PARAMETER_LABELS.get(head[1], head[1])
        else:
            label = {**FIELD_LABELS, **(labels or {})}.get(head[0], problem.field)
        rule = problem.rule
        joiner = " " if rule.startswith(("must ", "needs ")) else ": "
        sentences.append(f"{label}{joiner}{rule}.")
    return StudioError(" ".join(sentences), hint=exc.hint)
