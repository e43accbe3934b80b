"""The evaluator catalogue as tick boxes, and one small form per ticked evaluator.

Each form is drawn from the evaluator's pydantic ``Options`` model, so the page,
the CLI's ``id:key=value`` parsing and a YAML file share one set of rules: a
``str`` is a text box, a ``bool`` a check box, numbers are number inputs with
the field's bounds, a ``Literal`` is a select box, a ``list[str]`` is one value
per line and a ``dict`` is JSON. Each option's description is its help text. An
option marked as naming a dataset column (``json_schema_extra={"dataset_column":
True}``: the RAG evaluators' expected document) is a pick of the dataset's columns,
stored as ``{{column}}``.
The values are read back with :func:`chosen_configs`, which validates them
through the evaluator's own ``Options`` (the error is the sentence it raises).
"""

from __future__ import annotations

import json
import types
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
import streamlit as st
from pydantic.fields import FieldInfo

from studio.core.errors import FieldProblem, RequestValidationError
from studio.evaluators import Evaluator, build, catalogue
from studio.evaluators.base import columns_in
from studio.models import registry
from studio.models.connections import BUILTIN_CONNECTION, list_connections
from studio.services.evaluations import EvaluatorConfig
from studio.ui.common import studio_session
from studio.ui.playground_editor import TEXT_TYPES, connection_models

__all__ = ["FAMILIES", "catalogue_picker", "chosen_configs", "option_forms", "ticked"]

FAMILIES = {
    "text": "Text checks",
    "json": "JSON",
    "metrics": "Metrics and labels",
    "model": "Model-backed",
    "cost": "Speed and cost",
    "rag": "Retrieval (RAG)",
}
LONG_TEXT = 1_000  # a required text option this long (a rubric) gets a text area
COLUMN_HINTS = ("expected_document", "document", "source", "doc", "file", "chunk")


def _tick_key(evaluator_id: str) -> str:
    return f"ev_use_{evaluator_id}"


def _option_key(evaluator_id: str, name: str) -> str:
    return f"ev_opt_{evaluator_id}_{name}"


def ticked() -> list[str]:
    """The ids of the evaluators ticked, in catalogue order."""
    return [i for i in catalogue() if st.session_state.get(_tick_key(i))]


def catalogue_picker() -> None:
    """Tick boxes grouped by family (one tab each), each with its description."""
    by_family: dict[str, list[type[Evaluator]]] = {}
    for cls in catalogue().values():
        by_family.setdefault(cls.family, []).append(cls)
    families = list(by_family)
    tabs = st.tabs(  # tracked: ticking a box in a later family keeps that family open
        [FAMILIES.get(f, f.capitalize()) for f in families],
        key="evaluator_family_tab",
        on_change="rerun",
    )
    for tab, family in zip(tabs, families, strict=True):
        with tab:
            left, right = st.columns(2, gap="medium")
            for i, cls in enumerate(by_family[family]):
                with left if i % 2 == 0 else right:
                    st.checkbox(
                        cls.name + (" (calls a model)" if cls.uses_model else ""),
                        key=_tick_key(cls.id),
                    )
                    st.caption(f"`{cls.id}`: {cls.description}")


# -- option forms ----------------------------------------------------------------------------


def _plain(annotation: Any) -> tuple[Any, bool]:
    """The annotation without ``| None``, and whether None is allowed."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return (args[0] if len(args) == 1 else annotation), len(args) < len(get_args(annotation))
    return annotation, False


def _bounds(field: FieldInfo) -> dict[str, float]:
    out: dict[str, float] = {}
    for rule in field.metadata:
        if isinstance(rule, annotated_types.Ge):
            out["min_value"] = float(rule.ge)  # type: ignore[arg-type]
        elif isinstance(rule, annotated_types.Le):
            out["max_value"] = float(rule.le)  # type: ignore[arg-type]
    return out


def _max_length(field: FieldInfo) -> int | None:
    for rule in field.metadata:
        if isinstance(rule, annotated_types.MaxLen):
            return int(rule.max_length)
    return None


def _default(field: FieldInfo) -> Any:
    return None if field.is_required() else field.get_default(call_default_factory=True)


def _label(name: str, field: FieldInfo, how: str = "") -> str:
    """``Labels, one per line (required)``."""
    words = field.title or name.replace("_", " ")  # a field's title, when it has one
    return words[:1].upper() + words[1:] + how + (" (required)" if field.is_required() else "")


def _models_like(default: str) -> list[str]:
    """Models of the same type as ``default`` (chat models for a judge, embeddings...);
    for a text model, the connected providers' text models too (as the Playground lists)."""
    with studio_session() as session:
        models = registry.model_overview(session=session)
        connections = tuple(
            c.name for c in list_connections(session=session) if c.name != BUILTIN_CONNECTION
        )
    kind = next((m.model_type for m in models if m.name == default), None)
    names = [m.name for m in models if kind is None or m.model_type == kind]
    if kind in TEXT_TYPES and connections:
        names += connection_models(connections)[0]
    return list(dict.fromkeys([default, *names]))


def _is_wide(field: FieldInfo) -> bool:
    """Drawn as a text area across the form (lists, JSON, a long required text)."""
    annotation, _ = _plain(field.annotation)
    if get_origin(annotation) in (list, dict) or annotation is dict:
        return True
    return annotation is str and field.is_required() and (_max_length(field) or 0) >= LONG_TEXT


def _names_column(field: FieldInfo) -> bool:
    extra = field.json_schema_extra
    return isinstance(extra, dict) and bool(extra.get("dataset_column"))


def _column_guess(default: Any, columns: list[str]) -> str | None:
    """The column a ``{{column}}`` default names, else one whose name says document or
    source; None when nothing fits (the user picks)."""
    named = columns_in(default) if isinstance(default, str) else set()
    for column in columns:
        if column in named:
            return column
    for hint in COLUMN_HINTS:
        for column in columns:
            if hint in column.casefold():
                return column
    return None


def _column_widget(key: str, label: str, field: FieldInfo, columns: list[str]) -> None:
    drawn_for = f"{key}__columns"  # guess once per set of columns; a cleared pick stays clear
    if st.session_state.get(drawn_for) != columns or st.session_state.get(key) not in (
        *columns,
        None,
    ):
        st.session_state[drawn_for] = list(columns)
        st.session_state.pop(key, None)  # another dataset version's column, or none yet
        guess = _column_guess(_default(field), columns)
        if guess is not None:
            st.session_state[key] = guess
    st.selectbox(
        label,
        columns,
        index=None,
        key=key,
        help=field.description,
        placeholder="choose the column",
    )


def _widget(
    evaluator_id: str, name: str, field: FieldInfo, columns: list[str] | None = None
) -> None:
    key = _option_key(evaluator_id, name)
    if columns is not None and _names_column(field):
        _column_widget(key, _label(name, field), field, columns)
        return
    annotation, optional = _plain(field.annotation)
    default = _default(field)
    label = _label(name, field)
    if get_origin(annotation) is list:
        label = _label(name, field, ", one per line")
    elif get_origin(annotation) is dict or annotation is dict:
        label = _label(name, field, " as JSON")
    help_text = field.description
    origin = get_origin(annotation)
    if annotation is bool:
        st.checkbox(label, value=bool(default), key=key, help=help_text)
    elif annotation in (int, float):
        bounds = _bounds(field)
        number: dict[str, Any] = {"key": key, "help": help_text}
        if annotation is int:
            number.update({k: int(v) for k, v in bounds.items()}, step=1)
            number["value"] = None if default is None else int(default)
        else:
            small = bounds.get("max_value", 2.0) <= 1.0
            number.update(bounds, step=0.05 if small else 1.0, format="%.2f")
            if isinstance(default, float) and 0 < default < 1 and not small:
                number.update(step=0.001, format="%.4f")
            number["value"] = None if default is None else float(default)
        if optional:
            number["placeholder"] = "no limit"
        st.number_input(label, **number)
    elif origin is Literal:
        choices = list(get_args(annotation))
        st.selectbox(
            label, choices, index=choices.index(default) if default in choices else 0, key=key,
            help=help_text,
        )  # fmt: skip
    elif origin is list:
        st.text_area(
            label,
            value="\n".join(str(v) for v in default or []),
            key=key,
            help=help_text,
            height=100,
        )
    elif origin is dict or annotation is dict:
        st.text_area(
            label,
            value=json.dumps(default, indent=2) if default else "",
            key=key,
            help=help_text,
            height=120,
            placeholder='{"type": "object", "required": ["answer"]}',
        )
    elif name == "model" and isinstance(default, str):
        st.selectbox(
            label,
            _models_like(default),
            key=key,
            help=(help_text or "") + " Type another model's name to use it.",
            accept_new_options=True,
        )
    elif field.is_required() and (_max_length(field) or 0) >= LONG_TEXT:
        st.text_area(label, value=default or "", key=key, help=help_text, height=100)
    else:
        st.text_input(label, value="" if default is None else str(default), key=key, help=help_text)


def option_forms(expected_column: str | None, columns: list[str] | None = None) -> None:
    """One bordered form per ticked evaluator, defaults filled in; ``columns`` (the
    dataset's) are the choices of options that name a column."""
    chosen = ticked()
    if not chosen:
        st.info("Tick at least one evaluator above: each checks every output and says why.")
        return
    classes = catalogue()
    if all(classes[i].family == "rag" for i in chosen):
        reference = (
            "The retrieval evaluators compare each row's retrieved chunks with the document a "
            "column of the dataset names (file names such as billing.md, or chunk ids; several "
            "separated by ; or |)."
        )
    elif expected_column:
        reference = (
            f"An empty reference (value, expected, reference) means this dataset's expected-output "
            f"column, **{expected_column}**."
        )
    else:
        reference = (
            "This dataset version has **no expected-output column**, so options that compare "
            "with a reference need one written here; or choose the column on the Datasets page "
            "(it makes a new version)."
        )
    st.caption(
        "Option values may name the row's columns, like `{{column}}`: each row's value is put "
        f"in its place. {reference}"
    )
    for evaluator_id in chosen:
        cls = classes[evaluator_id]
        with st.container(border=True):
            st.markdown(f"**{cls.name}** · `{cls.id}`")
            fields = cls.Options.model_fields
            if not fields:
                st.caption("No options.")
            if cls.family == "rag":
                st.caption(
                    "Judges the chunks each row's retrieval step found: evaluate a run of a "
                    "variant with retrieval switched on (Playground); rows of other runs are "
                    "reported as evaluator errors, not failures."
                )
            wide = {n: f for n, f in fields.items() if _is_wide(f)}
            for name, field in wide.items():
                _widget(evaluator_id, name, field, columns)
            short = [(n, f) for n, f in fields.items() if n not in wide]
            halves = st.columns(2, gap="medium") if short else []
            for i, (name, field) in enumerate(short):
                with halves[i % 2]:
                    _widget(evaluator_id, name, field, columns)


def _value(evaluator_id: str, name: str, field: FieldInfo) -> Any:
    key = _option_key(evaluator_id, name)
    if _names_column(field):
        column = str(st.session_state.get(key) or "").strip()
        if "{{" in column:
            return column  # typed in a text box (a form drawn without the dataset's columns)
        if not column:
            raise RequestValidationError(
                [FieldProblem(name, "needs a column: choose the dataset column that names each "
                              "row's expected document")],
                what=f"options for {evaluator_id}",
            )  # fmt: skip
        return "{{" + column + "}}"
    raw = st.session_state.get(key, _default(field))
    annotation, _ = _plain(field.annotation)
    origin = get_origin(annotation)
    if origin is list and isinstance(raw, str):
        return [line.strip() for line in raw.splitlines() if line.strip()]
    if (origin is dict or annotation is dict) and isinstance(raw, str):
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise RequestValidationError(
                [FieldProblem(name, f"is not JSON ({exc.msg}, line {exc.lineno})")],
                what=f"options for {evaluator_id}",
            ) from exc
    return raw


def chosen_configs(columns: list[str]) -> list[EvaluatorConfig]:
    """The ticked evaluators with their options, validated; raises the first problem as a
    :class:`~studio.core.errors.StudioError` whose message is the sentence to show."""
    classes = catalogue()
    configs = []
    for evaluator_id in ticked():
        fields = classes[evaluator_id].Options.model_fields
        options = {
            name: value
            for name, field in fields.items()
            if (value := _value(evaluator_id, name, field)) is not None or not field.is_required()
        }
        evaluator = build(evaluator_id, options)  # the Options model's own rules
        missing = sorted(evaluator.columns() - set(columns))
        if missing:
            raise RequestValidationError(
                [
                    FieldProblem(
                        "columns",
                        f"names {', '.join(missing)}, which this dataset does not have "
                        f"(its columns: {', '.join(columns)})",
                    )
                ],
                what=f"options for {evaluator_id}",
            )
        configs.append(
            EvaluatorConfig(id=evaluator_id, options=evaluator.options.model_dump(mode="json"))
        )
    return configs
