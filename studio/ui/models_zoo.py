"""Models page, "Model zoo" tab: every callable model, filterable by type and provider."""

from __future__ import annotations

import hashlib

import pandas as pd
import streamlit as st

from studio.core.errors import StudioError
from studio.core.settings import get_settings
from studio.models.connections import (
    BUILTIN_CONNECTION,
    ConnectionPublic,
    list_connection_models,
    list_connections,
)
from studio.models.zoo import ZooEntry, zoo_entries
from studio.providers import ModelInfo
from studio.ui.common import studio_session

__all__ = ["load_zoo", "render_zoo"]

TYPE_FILTER = "models_type_filter"
PROVIDER_FILTER = "models_provider_filter"


@st.cache_data(ttl=120, show_spinner=False)
def _offered(name: str, fingerprint: tuple[str, ...]) -> tuple[list[ModelInfo], str | None]:
    """What connection ``name`` offers; cached per configuration (never holds the key)."""
    del fingerprint  # part of the cache key only: a changed URL or key asks again
    try:
        with studio_session() as session:
            return list_connection_models(session=session, name=name, timeout_s=8), None
    except StudioError as exc:
        return [], str(exc)


def _fingerprint(conn: ConnectionPublic) -> tuple[str, ...]:
    database = hashlib.sha256(get_settings().resolved_database_url.encode()).hexdigest()
    return (database, conn.kind, conn.base_url or "", conn.api_key_env or "", conn.key_hint)


def load_zoo() -> tuple[list[ZooEntry], dict[str, str]]:
    """Zoo entries including connection models, and the connections that could not answer."""
    with studio_session() as session:
        conns = [c for c in list_connections(session=session) if c.name != BUILTIN_CONNECTION]
    offered: dict[str, list[ModelInfo]] = {}
    problems: dict[str, str] = {}
    if conns:
        with st.spinner("Asking your connections which models they offer…"):
            for conn in conns:
                infos, error = _offered(conn.name, _fingerprint(conn))
                offered[conn.name] = infos
                if error:
                    problems[conn.name] = error
    with studio_session() as session:
        return zoo_entries(session=session, connection_models=offered), problems


def refresh_connection_models() -> None:
    _offered.clear()


def _price(value: float | None) -> str:
    if value is None:
        return "unknown"
    return "free" if value == 0 else f"${value:g}"


def _row(e: ZooEntry) -> dict[str, object]:
    return {
        "Name": e.name,
        "Type": e.model_type,
        "Provider": e.provider,
        "Status": e.status,
        "Offline": "yes" if e.offline else "no",
        "Built-in": "yes" if e.builtin else "",
        "Context window": f"{e.context_window:,} tokens" if e.context_window else "not reported",
        "Input $/1M tokens": _price(e.input_per_mtok),
        "Output $/1M tokens": _price(e.output_per_mtok),
        "Group": e.group or "",
        "Description": e.description or e.status_reason or "",
    }


def render_zoo() -> None:
    entries, problems = load_zoo()
    st.write(
        "Every model the studio can call right now: the built-in offline models, the models "
        "you created, and the models your connections offer (called as `connection/model`)."
    )
    types = sorted({e.model_type for e in entries})
    providers = sorted({e.provider for e in entries})
    for key in (TYPE_FILTER, PROVIDER_FILTER):
        if key not in st.session_state:
            st.session_state[key] = []
    left, right, refresh = st.columns([3, 3, 1], vertical_alignment="bottom")
    chosen_types = left.multiselect(
        "Filter by type", types, key=TYPE_FILTER, placeholder="All model types"
    )
    chosen_providers = right.multiselect(
        "Filter by provider", providers, key=PROVIDER_FILTER, placeholder="All providers"
    )
    if refresh.button("Refresh", key="models_zoo_refresh", help="Ask the connections again"):
        refresh_connection_models()
        st.rerun()
    shown = [
        _row(e)
        for e in entries
        if (not chosen_types or e.model_type in chosen_types)
        and (not chosen_providers or e.provider in chosen_providers)
    ]
    if not shown:
        st.info("No models match these filters. Clear the filters to see every model.")
    else:
        st.dataframe(
            pd.DataFrame(shown),
            hide_index=True,
            width="stretch",
        )
        st.caption(
            f"{len(shown)} of {len(entries)} models. Prices are USD per million tokens from the "
            "price table (`studio price set MODEL --input X --output Y`); 'unknown' means no "
            "price is set, so cost is counted as zero."
        )
    for e in entries:
        if e.status == "FAILED":
            st.warning(f"{e.name} failed to deploy: {e.status_reason or 'no reason recorded'}")
    for name, error in problems.items():
        st.warning(
            f"Connection '{name}' did not list its models: {error} Check it in the Connections tab."
        )
