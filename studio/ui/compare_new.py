"""The "New comparison" form: a dataset version, the contenders, evaluators and a baseline.

Contenders are saved variant versions (a multiselect), and "this prompt on other
models": one model multiselect of every text model (as the Playground lists them),
each model with optional temperatures (one contender per temperature) and max
tokens. Pressing **Compare** stores the comparison, starts its missing runs as jobs
and selects it below; :mod:`studio.ui.compare_progress` follows them.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import streamlit as st

from studio.core.errors import ConfigError, ConflictError, StudioError
from studio.core.settings import DEFAULT_CONCURRENCY
from studio.core.templates import PromptTemplate
from studio.models import registry
from studio.models.connections import BUILTIN_CONNECTION, list_connections
from studio.services.comparisons import (
    MAX_CONTENDERS,
    ContenderSpec,
    add_contender,
    create_comparison,
)
from studio.services.datasets import DatasetSummary
from studio.services.jobs import enqueue_evaluation, enqueue_run
from studio.services.variants import VariantSummary, get_version, history, version_config
from studio.store.tables import Comparison, DatasetVersion
from studio.ui.common import show_error, studio_session
from studio.ui.evaluations_options import catalogue_picker, chosen_configs, option_forms, ticked
from studio.ui.pickers import pick_dataset_version
from studio.ui.playground_editor import TEXT_TYPES, connection_models

__all__ = [
    "add_contender_form",
    "clear_flash",
    "flash_messages",
    "new_comparison_form",
    "start_comparison",
    "text_models",
    "variant_versions",
]

ACTOR = "ui"
SELECTED = "cmp_selected"
FLASH = "cmp_flash"
FLASH_ERROR = "cmp_flash_error"


def text_models() -> list[str]:
    """Every text model: built-ins, custom models, and each connection's models."""
    with studio_session() as session:
        registered = [
            m.name
            for m in registry.model_overview(session=session)
            if m.model_type in TEXT_TYPES and m.status == "READY"
        ]
        connections = tuple(
            c.name for c in list_connections(session=session) if c.name != BUILTIN_CONNECTION
        )
    remote, _failed = connection_models(connections) if connections else ([], [])
    return list(dict.fromkeys(registered + remote))


def variant_versions(variants: list[VariantSummary]) -> dict[str, tuple[int, str]]:
    """``"NAME@N"`` -> (version id, ``"NAME vN"``), newest versions first."""
    refs: dict[str, tuple[int, str]] = {}
    with studio_session() as session:
        for variant in variants:
            for version in history(session=session, variant_id=variant.id):
                assert version.id is not None
                refs[f"{variant.name}@{version.version}"] = (
                    version.id,
                    f"{variant.name} v{version.version}",
                )
    return refs


def _slug(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", model)


def _temperatures(text: str, model: str) -> list[float | None]:
    """ "0, 0.7" -> [0.0, 0.7]; empty -> [None] (the prompt's own temperature)."""
    parts = [p.strip() for p in re.split(r"[,;\s]+", text or "") if p.strip()]
    if not parts:
        return [None]
    out: list[float | None] = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            raise ConfigError(
                f"'{part}' in the temperatures of {model} is not a number.",
                hint="Write numbers between 0 and 1, separated by commas, e.g. 0, 0.7.",
            ) from None
        if not 0 <= value <= 1:
            raise ConfigError(f"The temperature {value} of {model} is not between 0 and 1.")
        out.append(value)
    return list(dict.fromkeys(out))


def _model_contenders(models: list[str], prompt: PromptTemplate | None) -> list[ContenderSpec]:
    specs = []
    for model in models:
        slug = _slug(model)
        max_tokens = st.session_state.get(f"cmp_max_{slug}")
        for temperature in _temperatures(str(st.session_state.get(f"cmp_temps_{slug}", "")), model):
            parameters: dict[str, Any] = {}
            if temperature is not None:
                parameters["temperature"] = temperature
            if max_tokens:
                parameters["max_tokens"] = int(max_tokens)
            specs.append(ContenderSpec(model=model, parameters=parameters, prompt=prompt))
    return specs


def _spec_label(spec: ContenderSpec) -> str:
    if spec.variant:
        name, _, number = spec.variant.rpartition("@")
        return f"{name} v{number}"
    params = ", ".join(f"{k}={v}" for k, v in sorted(spec.parameters.items()))
    return f"{spec.model}" + (f" ({params})" if params else "")


def _model_rows(models: list[str], default_max: int) -> None:
    """Per chosen model: its temperatures (one contender each) and max tokens."""
    for model in models:
        slug = _slug(model)
        if f"cmp_max_{slug}" not in st.session_state:
            st.session_state[f"cmp_max_{slug}"] = default_max
        left, right = st.columns([3, 1])
        left.text_input(
            f"Temperatures for {model}",
            key=f"cmp_temps_{slug}",
            placeholder="e.g. 0, 0.7: one contender each (empty: the prompt's own)",
            help="0 gives the most likely answer every time; higher is more varied.",
        )
        right.number_input("Max tokens", 1, 8192, step=16, key=f"cmp_max_{slug}")


def _contenders(variants: list[VariantSummary]) -> tuple[list[ContenderSpec], str | None]:
    """The contenders the form describes, and a problem sentence (None when fine)."""
    refs = variant_versions(variants)
    if "cmp_variants" not in st.session_state:
        st.session_state.cmp_variants = [f"{v.name}@{v.latest_version}" for v in variants[:1]]
    st.session_state.cmp_variants = [r for r in st.session_state.cmp_variants if r in refs]
    chosen = st.multiselect(
        "Saved variant versions",
        list(refs),
        key="cmp_variants",
        format_func=lambda r: refs[r][1],
        help="Each is run over the dataset version, unless it has a finished run of it already.",
    )
    st.markdown("**This prompt on other models**: the same template, other models or settings.")
    if st.session_state.get("cmp_prompt_from") not in refs:
        st.session_state.cmp_prompt_from = chosen[0] if chosen else next(iter(refs), None)
    prompt = None
    if refs:
        source = st.selectbox(
            "Prompt for the models",
            list(refs),
            key="cmp_prompt_from",
            format_func=lambda r: refs[r][1],
            help="The model contenders answer this variant version's prompt.",
        )
        with studio_session() as session:
            config = version_config(get_version(session=session, version_id=refs[source][0]))
        prompt = config.prompt
        default_max = config.parameters.max_tokens or 128
    else:
        default_max = 128
    models = st.multiselect(
        "Models",
        text_models(),
        key="cmp_models",
        placeholder="Choose one or more models",
        help="Built-in models run offline. Connect providers on the Models page.",
        disabled=not refs,
    )
    _model_rows(models, default_max)
    specs: list[ContenderSpec] = [ContenderSpec(variant=r) for r in chosen]
    try:
        specs += _model_contenders(models, prompt)
    except StudioError as exc:
        return specs, exc.message
    return specs, None


def start_comparison(comparison: Comparison, missing: list[int]) -> None:
    """Run the missing outputs as jobs; score at once when nothing is missing."""
    for run_id in missing:
        with contextlib.suppress(ConflictError):  # another tab started it: follow that job
            enqueue_run(run_id=run_id, actor=ACTOR)
    if not missing and comparison.evaluation_id is not None:
        with contextlib.suppress(ConflictError):
            enqueue_evaluation(
                evaluation_id=comparison.evaluation_id,
                actor=ACTOR,
                concurrency=int(st.session_state.get("cmp_parallel", DEFAULT_CONCURRENCY)),
            )


def _compare(app_id: int, version: DatasetVersion, specs: list[ContenderSpec]) -> None:
    try:
        configs = chosen_configs(list(version.columns))
        assert version.id is not None
        with studio_session() as session:
            comparison, missing = create_comparison(
                session=session,
                app_id=app_id,
                dataset_version_id=version.id,
                contenders=specs,
                evaluators=configs,
                baseline=int(st.session_state.get("cmp_baseline", 0) or 0),
                concurrency=int(st.session_state.get("cmp_parallel", DEFAULT_CONCURRENCY)),
                name=str(st.session_state.get("cmp_name", "")),
                actor=ACTOR,
            )
        start_comparison(comparison, missing)
    except Exception as exc:
        st.session_state[FLASH_ERROR] = exc
        return
    st.session_state[SELECTED] = comparison.id
    st.session_state.cmp_name = ""
    reused = len(specs) - len(missing)
    st.session_state[FLASH] = (
        f"Started comparison {comparison.id}: {len(missing)} contender(s) are generating their "
        f"outputs" + (f", {reused} reuse a finished run" if reused else "") + ". Progress, then "
        "the summary and the grid, are shown below."
    )


def new_comparison_form(
    app_id: int, datasets: list[DatasetSummary], variants: list[VariantSummary]
) -> None:
    """The form; pressing Compare stores the comparison, starts its runs and selects it."""
    version = pick_dataset_version(datasets, "cmp")
    st.markdown(f"**Contenders**: 2 to {MAX_CONTENDERS} things to compare on the same rows.")
    specs, problem = _contenders(variants)
    st.markdown(
        "**Evaluators** (optional): tick the checks that decide pass or fail for every output."
    )
    catalogue_picker()
    option_forms(version.expected_column, list(version.columns))
    if not ticked():
        st.caption(
            "Without evaluators you still see every output, latency and cost side by side, "
            "but no pass rates or tests: pass rates need evaluators."
        )
    labels = [_spec_label(s) for s in specs]
    if len(st.session_state.get("cmp_baseline_labels", [])) != len(labels) or (
        st.session_state.get("cmp_baseline_labels") != labels
    ):
        st.session_state.cmp_baseline_labels = labels
        st.session_state.cmp_baseline = 0
    c1, c2, c3, c4 = st.columns([2, 2, 1, 1], vertical_alignment="bottom")
    c1.selectbox(
        "Baseline",
        list(range(len(labels))),
        key="cmp_baseline",
        format_func=lambda i: labels[i] if i < len(labels) else "",
        help="Every other contender is tested against this one, on the rows they share.",
        disabled=not labels,
    )
    c2.text_input(
        "Name (optional)",
        key="cmp_name",
        max_chars=200,
        placeholder="e.g. smaller model before launch",
    )
    c3.number_input(
        "Parallel calls",
        1,
        128,
        value=DEFAULT_CONCURRENCY,
        key="cmp_parallel",
        help="How many model calls at once, for the runs and model-backed evaluators.",
    )
    missing = []
    if len(specs) < 2:
        missing.append(f"at least two contenders (now {len(specs)})")
    if len(specs) > MAX_CONTENDERS:
        missing.append(f"at most {MAX_CONTENDERS} contenders (now {len(specs)})")
    c4.button(
        "Compare",
        key="cmp_compare",
        type="primary",
        width="stretch",
        disabled=bool(missing or problem),
        on_click=_compare,
        args=(app_id, version, specs),
    )
    if problem:
        st.error(problem)
    if missing:
        st.caption(f"To compare, choose {' and '.join(missing)}.")
    else:
        st.caption(f"{len(specs)} contenders: {', '.join(labels)}.")


def _add(comparison_id: int, spec: ContenderSpec) -> None:
    try:
        with studio_session() as session:
            comparison, missing = add_contender(
                session=session,
                comparison_id=comparison_id,
                contender=spec,
                concurrency=int(st.session_state.get("cmp_parallel", DEFAULT_CONCURRENCY)),
            )
        start_comparison(comparison, missing)
    except Exception as exc:
        st.session_state[FLASH_ERROR] = exc
        return
    added = comparison.contenders[-1]
    st.session_state[FLASH] = (
        f"Added {added['key']}: {added['label']}. Its outputs are generated and scored; the "
        "other contenders' runs, scores and preferences are kept."
    )


def add_contender_form(comparison: Comparison, variants: list[VariantSummary]) -> None:
    """One more contender: a saved variant version, or the comparison's prompt on a model."""
    assert comparison.id is not None
    if len(comparison.contenders) >= MAX_CONTENDERS:
        st.caption(f"This comparison has {MAX_CONTENDERS} contenders, the most it can hold.")
        return
    refs = variant_versions(variants)
    kind = st.radio(
        "Add",
        ["A saved variant version", "The same prompt on a model"],
        key="cmp_add_kind",
        horizontal=True,
    )
    spec: ContenderSpec | None = None
    if kind == "A saved variant version":
        ref = st.selectbox(
            "Variant version", list(refs), key="cmp_add_variant", format_func=lambda r: refs[r][1]
        )
        spec = ContenderSpec(variant=ref) if ref else None
    else:
        c1, c2, c3 = st.columns([3, 1, 1])
        model = c1.selectbox("Model", text_models(), key="cmp_add_model")
        temperature = c2.number_input(
            "Temperature",
            0.0,
            1.0,
            value=None,
            step=0.1,
            key="cmp_add_temperature",
            placeholder="the prompt's",
        )
        max_tokens = c3.number_input(
            "Max tokens",
            1,
            8192,
            value=None,
            step=16,
            key="cmp_add_max_tokens",
            placeholder="the model's",
        )
        parameters: dict[str, Any] = {}
        if temperature is not None:
            parameters["temperature"] = float(temperature)
        if max_tokens:
            parameters["max_tokens"] = int(max_tokens)
        spec = ContenderSpec(model=model, parameters=parameters) if model else None
    st.button(
        "Add contender",
        key="cmp_add",
        disabled=spec is None,
        on_click=_add,
        args=(comparison.id, spec),
        icon=":material/add:",
    )


def flash_messages() -> None:
    """What the last action did, or why it failed, as sentences (kept until
    :func:`clear_flash`: a progress panel may rerun the page before it ends)."""
    message = st.session_state.get(FLASH)
    if message:
        st.success(message)
    error = st.session_state.get(FLASH_ERROR)
    if error is not None:
        show_error(error)


def clear_flash() -> None:
    """At the end of a page run that drew the messages."""
    st.session_state.pop(FLASH, None)
    st.session_state.pop(FLASH_ERROR, None)
