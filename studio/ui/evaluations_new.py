"""The "New evaluation" form: a dataset version, contenders, evaluators and their options."""

from __future__ import annotations

import streamlit as st

from studio.core.settings import DEFAULT_CONCURRENCY
from studio.evaluators import catalogue
from studio.services.datasets import DatasetSummary
from studio.services.evaluation_runs import without_retrieval
from studio.services.run_results import list_runs
from studio.services.variants import VariantSummary, history
from studio.store.tables import DatasetVersion
from studio.ui.common import show_error, studio_session
from studio.ui.evaluations_options import catalogue_picker, chosen_configs, option_forms, ticked
from studio.ui.evaluations_run import start_evaluation
from studio.ui.pickers import link_to, pick_dataset_version

__all__ = ["new_evaluation", "no_contenders"]


def _variant_versions(variants: list[VariantSummary]) -> dict[str, tuple[int, str]]:
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


def _contenders(
    app_id: int, version: DatasetVersion, variants: list[VariantSummary]
) -> tuple[list[str], list[int]]:
    refs = _variant_versions(variants)
    names = {vid: label for vid, label in refs.values()}
    with studio_session() as session:
        runs = [
            r
            for r in list_runs(session=session, app_id=app_id, limit=200)
            if r.dataset_version_id == version.id and r.status == "done" and r.id is not None
        ]
    if "ev_variants" not in st.session_state:
        st.session_state.ev_variants = [f"{v.name}@{v.latest_version}" for v in variants[:1]]
    st.session_state.ev_variants = [r for r in st.session_state.ev_variants if r in refs]
    chosen_variants = st.multiselect(
        "Variant versions",
        list(refs),
        key="ev_variants",
        format_func=lambda r: refs[r][1],
        help="Each is run over the dataset version first, unless it already has a finished run "
        "of it (that run is reused).",
    )
    runs_by_id = {r.id: r for r in runs}

    def run_label(run_id: int) -> str:
        r = runs_by_id[run_id]
        what = names.get(r.variant_version_id or -1, "unsaved prompt")
        return f"Run {r.id} · {what} · {r.model} · {r.created_at:%Y-%m-%d %H:%M} UTC"

    st.session_state.ev_runs = [r for r in st.session_state.get("ev_runs", []) if r in runs_by_id]
    chosen_runs = st.multiselect(
        "Finished runs of this dataset version",
        list(runs_by_id),
        key="ev_runs",
        format_func=run_label,
        placeholder="none" if runs else "no finished runs of this version yet",
        help="Outputs already generated, e.g. from the Playground (prompts you did not save).",
    )
    return list(chosen_variants), [int(r) for r in chosen_runs if r is not None]


def _evaluate(
    app_id: int, version: DatasetVersion, variants: list[str], run_ids: list[int]
) -> None:
    try:
        configs = chosen_configs(list(version.columns))
        assert version.id is not None
        evaluation_id = start_evaluation(
            app_id=app_id,
            dataset_version_id=version.id,
            variants=variants,
            run_ids=run_ids,
            evaluators=configs,
            name=str(st.session_state.get("ev_name", "")),
            concurrency=int(st.session_state.get("ev_parallel", DEFAULT_CONCURRENCY)),
        )
    except Exception as exc:
        st.session_state.ev_new_error = exc
        return
    st.session_state.ev_selected = evaluation_id
    st.session_state.ev_name = ""
    st.session_state.ev_flash = (
        f"Started evaluation {evaluation_id}. Its progress and then its report card are "
        "shown below."
    )


def new_evaluation(
    app_id: int, datasets: list[DatasetSummary], variants: list[VariantSummary]
) -> None:
    """The form; pressing Evaluate starts the evaluation and selects it below."""
    version = pick_dataset_version(datasets, "ev")
    st.markdown("**Contenders**: what to evaluate on this dataset version.")
    variant_refs, run_ids = _contenders(app_id, version, variants)
    st.markdown("**Evaluators**: tick the checks to run on every output.")
    catalogue_picker()
    option_forms(version.expected_column, list(version.columns))
    _retrieval_warning(app_id, variant_refs, run_ids)
    c1, c2, c3 = st.columns([2, 1, 1], vertical_alignment="bottom")
    c1.text_input(
        "Name (optional)",
        key="ev_name",
        placeholder="e.g. friendly email v3 before launch",
        max_chars=200,
    )
    c2.number_input(
        "Parallel calls",
        1,
        128,
        value=DEFAULT_CONCURRENCY,
        key="ev_parallel",
        help="How many model calls at once, for missing runs and for model-backed evaluators.",
    )
    missing = []
    if not variant_refs and not run_ids:
        missing.append("a variant version or a finished run")
    if not ticked():
        missing.append("an evaluator")
    c3.button(
        "Evaluate",
        key="ev_evaluate",
        type="primary",
        disabled=bool(missing),
        on_click=_evaluate,
        args=(app_id, version, variant_refs, run_ids),
        width="stretch",
    )
    if missing:
        st.caption(f"To evaluate, pick {' and '.join(missing)}.")
    error = st.session_state.pop("ev_new_error", None)
    if error is not None:
        show_error(error)


def _retrieval_warning(app_id: int, variants: list[str], run_ids: list[int]) -> None:
    """Say before Evaluate when a retrieval evaluator is ticked for a contender that has no
    retrieval step (its rows would all be evaluator errors)."""
    classes = catalogue()
    if not any(classes[i].family == "rag" for i in ticked()):
        return
    with studio_session() as session:
        missing = without_retrieval(
            session=session, app_id=app_id, variants=variants, run_ids=run_ids
        )
    if missing:
        st.warning(
            f"{', '.join(missing)} retrieved nothing (no retrieval step), so the retrieval "
            "evaluators will report each of its rows as an evaluator error. Switch retrieval on "
            "for the variant in the Playground, save it as a new version, and evaluate that."
        )


def no_contenders(app_name: str) -> None:
    """The empty state when the app has nothing to evaluate yet."""
    st.info(
        f"'{app_name}' has no saved variants and no finished runs yet, so there is nothing to "
        "evaluate. In the Playground, write a prompt, press Generate, and save it as a variant; "
        "then come back here."
    )
    link_to("pages/playground.py", "Go to Playground", ":material/science:")
