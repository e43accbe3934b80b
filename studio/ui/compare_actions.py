"""After comparing: Save as variant, Deploy the winner, and the two CSV downloads.

A contender that is a saved variant version is deployed as it is (the Deploy page's
service, :func:`studio.services.endpoints.deploy`). An unsaved model contender is
first saved as a variant (:func:`studio.services.variants.create_variant`, under the
name typed), then deployed. Every outcome is said in a sentence.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from studio.core.templates import PromptTemplate
from studio.services.comparison_export import export_comparison_rows, export_comparison_summary
from studio.services.comparison_summary import ComparisonSummary
from studio.services.endpoints import default_endpoint_name, deploy
from studio.services.variants import (
    VariantConfig,
    VariantParameters,
    create_variant,
    get_version,
)
from studio.store.tables import Comparison, Variant
from studio.ui.common import csv_buttons, show_error, studio_session
from studio.ui.pickers import link_to

__all__ = ["downloads", "ship_panel"]

SAVED = "cmp_saved"  # "comparison:key" -> variant version id saved from that contender
NOTICE = "cmp_ship_notice"


def _csv(comparison_id: int, what: str) -> bytes:
    with studio_session() as session:
        if what == "rows":
            return export_comparison_rows(session=session, comparison_id=comparison_id)
        return export_comparison_summary(session=session, comparison_id=comparison_id)


def downloads(comparison_id: int) -> None:
    csv_buttons(
        [
            (
                "Download rows (CSV)",
                lambda: _csv(comparison_id, "rows"),
                f"comparison-{comparison_id}-rows.csv",
                "cmp_download_rows",
            ),
            (
                "Download summary and tests (CSV)",
                lambda: _csv(comparison_id, "summary"),
                f"comparison-{comparison_id}-summary.csv",
                "cmp_download_summary",
            ),
        ]
    )
    st.caption(
        "Rows: one line per dataset row with its inputs, then each contender's output, "
        "latency, tokens, cost and verdict, and the preferred output. Summary: one line per "
        "contender with its figures and its test against the baseline (p-values, interval, "
        "the sentence)."
    )


def _version_of(comparison: Comparison, contender: dict[str, Any]) -> int | None:
    saved = st.session_state.get(SAVED, {}).get(f"{comparison.id}:{contender['key']}")
    return contender.get("variant_version_id") or saved


def _config(contender: dict[str, Any]) -> VariantConfig:
    config = contender["config"]
    return VariantConfig(
        model=config["model"],
        prompt=PromptTemplate.model_validate(config["prompt"]),
        parameters=VariantParameters.model_validate(config.get("parameters") or {}),
    )


def _save(comparison: Comparison, contender: dict[str, Any], name: str) -> int:
    """Save a model contender as a variant; its version id."""
    with studio_session() as session:
        version = create_variant(
            session=session,
            app_id=comparison.app_id,
            name=name,
            config=_config(contender),
            note=f"Saved from comparison {comparison.id} ({contender['key']})",
        )
        assert version.id is not None
        version_id = version.id
    st.session_state.setdefault(SAVED, {})[f"{comparison.id}:{contender['key']}"] = version_id
    return version_id


def _deploy(comparison: Comparison, version_id: int, endpoint: str) -> str:
    with studio_session() as session:
        version = get_version(session=session, version_id=version_id)
        row = deploy(
            session=session,
            app=comparison.app_id,
            variant=version.variant_id,
            version=version.version,
            name=endpoint.strip() or None,
        )
    return (
        f"Deployed '{row.variant_name}' v{row.version} to endpoint '{row.name}': it answers "
        f"now at {row.path} on the gateway. Create an API key on the Deploy page to call it."
    )


def _act(comparison: Comparison, key: str, action: str) -> None:
    contender = next(c for c in comparison.contenders if c["key"] == key)
    name = str(st.session_state.get("cmp_variant_name", "")).strip()
    endpoint = str(st.session_state.get("cmp_endpoint", ""))
    try:
        version_id = _version_of(comparison, contender)
        said = []
        if version_id is None:
            if not name:
                st.session_state[NOTICE] = ("error", "Type a name for the new variant first.")
                return
            version_id = _save(comparison, contender, name)
            said.append(f"Saved {key} ({contender['label']}) as variant '{name}' v1.")
        if action == "deploy":
            said.append(_deploy(comparison, version_id, endpoint))
    except Exception as exc:
        st.session_state[NOTICE] = ("exception", exc)
        return
    st.session_state[NOTICE] = ("success", " ".join(said))


def _best(summary: ComparisonSummary) -> str:
    """The contender with the highest pass rate (ties: the cheaper, then the first)."""
    judged = [f for f in summary.contenders if f["pass_rate"]]
    if not judged:
        return summary.comparison.baseline
    best = max(
        judged,
        key=lambda f: (f["pass_rate"]["estimate"], -(f["cost_per_1000_rows"] or 0.0)),
    )
    return str(best["key"])


def _variant_name(version_id: int) -> str:
    with studio_session() as session:
        version = get_version(session=session, version_id=version_id)
        variant = session.get(Variant, version.variant_id)
        return f"{variant.name if variant else '?'} v{version.version}"


def ship_panel(summary: ComparisonSummary, app_name: str) -> None:
    """Pick the contender to ship; save it as a variant and/or deploy it."""
    comparison = summary.comparison
    labels = {c["key"]: c["label"] for c in comparison.contenders}
    keys = list(labels)
    best = _best(summary)  # followed until the user picks another (verdicts arrive late)
    if st.session_state.get("cmp_ship") not in keys or (
        st.session_state.get("cmp_ship") == st.session_state.get("cmp_ship_auto")
    ):
        st.session_state.cmp_ship = st.session_state.cmp_ship_auto = best
    c1, c2 = st.columns(2)
    key = c1.selectbox(
        "Contender to ship",
        keys,
        key="cmp_ship",
        format_func=lambda k: f"{k} · {labels[k]}",
        help="Starts on the highest pass rate; choose another if the tests or your "
        "preferences say so.",
    )
    contender = next(c for c in comparison.contenders if c["key"] == key)
    version_id = _version_of(comparison, contender)
    if version_id is None:
        c2.text_input(
            "Variant name",
            key="cmp_variant_name",
            placeholder="e.g. sentiment on the small model",
            help="This contender is a prompt on a model, not saved yet: it is saved as a new "
            "variant under this name first.",
        )
        variant_name = str(st.session_state.get("cmp_variant_name", "")).strip() or "?"
    else:
        variant_name = _variant_name(version_id)
        c2.markdown(f"Saved variant: **{variant_name}**")
    default = default_endpoint_name(app_name, variant_name.rsplit(" v", 1)[0])
    st.text_input(
        "Endpoint name",
        key="cmp_endpoint",
        placeholder=default,
        help=f"Empty: {default}. An existing endpoint of this app is redeployed.",
    )
    b1, b2, _ = st.columns([1, 1, 2])
    b1.button(
        "Save as variant",
        key="cmp_save_variant",
        on_click=_act,
        args=(comparison, key, "save"),
        disabled=version_id is not None,
        help="Already saved." if version_id is not None else "Saves this configuration.",
    )
    b2.button(
        "Deploy the winner",
        key="cmp_deploy",
        type="primary",
        on_click=_act,
        args=(comparison, key, "deploy"),
        icon=":material/rocket_launch:",
    )
    if version_id is None:
        st.caption(
            f"{key} is not a saved variant yet: Deploy the winner saves it under the name above, "
            "then deploys it."
        )
    notice = st.session_state.pop(NOTICE, None)
    if notice is not None:
        kind, body = notice
        if kind == "success":
            st.success(body)
            link_to("pages/deploy.py", "Go to Deploy", ":material/rocket_launch:")
        elif kind == "error":
            st.error(body)
        else:
            show_error(body)
