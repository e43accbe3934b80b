"""Streamlit pieces of the Deploy page: gateway status, the deploy form, endpoints.

Every action is a button callback that calls one service and leaves a message
for the next run (:func:`notices`), so the page always shows the state after
the change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import pandas as pd
import streamlit as st

from studio.services.endpoints import (
    EndpointPublic,
    RevisionPublic,
    default_endpoint_name,
    deploy,
    endpoint_history,
    rollback,
    undeploy,
)
from studio.services.variants import history, list_variants
from studio.store.tables import VariantVersion
from studio.ui.common import show_error, studio_session
from studio.ui.pickers import link_to

__all__ = [
    "SELECTED",
    "deploy_form",
    "endpoint_panel",
    "endpoints_frame",
    "gateway_status",
    "notices",
    "notify",
]

SELECTED = "deploy_endpoint"
FLASH = "deploy_flash"
TIME_FORMAT = "%Y-%m-%d %H:%M UTC"
ACTIONS = {"deploy": "deployed", "rollback": "rolled back", "undeploy": "undeployed"}


# -- messages left by callbacks -------------------------------------------------------


def notify(where: str, message: str | BaseException, kind: str = "success") -> None:
    """Leave ``message`` (or an error) for the part of the page called ``where``."""
    st.session_state[FLASH] = (where, kind, message)


def notices(where: str) -> None:
    flash = st.session_state.get(FLASH)
    if not flash or flash[0] != where:
        return
    st.session_state[FLASH] = None
    _, kind, message = flash
    if isinstance(message, BaseException):
        show_error(message)
    elif kind == "info":
        st.info(message)
    else:
        st.success(message)


# -- the gateway ----------------------------------------------------------------------


@st.cache_data(ttl=3, show_spinner=False)
def _healthy(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/healthz", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def gateway_status(base_url: str) -> bool:
    """Say whether the gateway answers at ``base_url``, and how to start it if not."""
    if _healthy(base_url):
        st.caption(f":material/check_circle: The gateway is running at {base_url}.")
        return True
    st.warning(
        f"The gateway is not answering at {base_url}, so deployed endpoints cannot be called "
        "yet. Start it in a terminal with `studio serve` (same data directory or "
        "`DATABASE_URL` as this studio), or restart the studio with `streamlit run app.py`, "
        "which starts it for you."
    )
    return False


# -- deploy a variant -----------------------------------------------------------------


def version_label(version: VariantVersion, latest: int) -> str:
    label = f"v{version.version}" + (" (latest)" if version.version == latest else "")
    if version.note:
        label += f" · {version.note if len(version.note) <= 40 else version.note[:39] + '…'}"
    return label


def _do_deploy(app_id: int, variant_id: int, base_url: str) -> None:
    number = st.session_state.get(f"deploy_version_{variant_id}")
    name = (st.session_state.get("deploy_name") or "").strip() or None
    try:
        with studio_session() as session:
            row = deploy(session=session, app=app_id, variant=variant_id, version=number, name=name)
    except Exception as exc:
        notify("deploy", exc)
        return
    st.session_state[SELECTED] = row.name
    st.session_state["deploy_name"] = ""
    notify(
        "deploy",
        f"Deployed '{row.variant_name}' v{row.version} to endpoint '{row.name}'. It answers "
        f"now at {base_url}{row.path}: create an API key below and try a snippet.",
    )


def deploy_form(
    app_id: int, app_name: str, endpoints: Sequence[EndpointPublic], base_url: str
) -> None:
    """Pick a variant and a version, name the endpoint, deploy with one button."""
    with studio_session() as session:
        variants = list_variants(session=session, app_id=app_id)
    if not variants:
        st.info(
            f"'{app_name}' has no saved variant to deploy yet. Write a prompt in the "
            "Playground and save it under 'Save as variant', then come back here."
        )
        link_to("pages/playground.py", "Go to Playground", ":material/science:")
        return
    by_id = {v.id: v for v in variants}
    if st.session_state.get("deploy_variant") not in by_id:
        st.session_state["deploy_variant"] = variants[0].id
    if "deploy_name" not in st.session_state:
        st.session_state["deploy_name"] = ""
    left, middle, right = st.columns([2, 2, 3])
    with left:
        variant_id = st.selectbox(
            "Variant", list(by_id), key="deploy_variant", format_func=lambda i: by_id[i].name
        )
    variant = by_id[variant_id]
    with studio_session() as session:
        versions = history(session=session, variant_id=variant_id)
    numbers = {v.version: v for v in versions}
    version_key = f"deploy_version_{variant_id}"
    if st.session_state.get(version_key) not in numbers:
        st.session_state[version_key] = variant.latest_version
    with middle:
        st.selectbox(
            "Version",
            list(numbers),
            key=version_key,
            format_func=lambda n: version_label(numbers[n], variant.latest_version),
        )
    default = default_endpoint_name(app_name, variant.name)
    with right:
        st.text_input(
            "Endpoint name",
            key="deploy_name",
            placeholder=default,
            max_chars=100,
            help=f"Part of the URL. Leave empty for '{default}'. Lowercase letters, digits, "
            "'.', '-' and '_'.",
        )
    target = (st.session_state["deploy_name"] or default).strip().lower()
    existing = next((e for e in endpoints if e.name == target), None)
    chosen = st.session_state[version_key]
    if existing is not None and existing.active:
        if existing.variant_id == variant_id and existing.version == chosen:
            st.caption(f"'{target}' is live with this version already.")
        else:
            st.caption(
                f"'{target}' serves '{existing.variant_name}' v{existing.version} now: "
                f"deploying replaces it at once (you can roll back)."
            )
    st.button(
        f"Deploy to '{target}'",
        key="deploy_button",
        type="primary",
        icon=":material/rocket_launch:",
        on_click=_do_deploy,
        args=(app_id, variant_id, base_url),
    )
    notices("deploy")


# -- the app's endpoints ----------------------------------------------------------------


def endpoints_frame(endpoints: Sequence[EndpointPublic], base_url: str) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Endpoint": e.name,
                "Status": "live" if e.active else "off",
                "Variant": e.variant_name,
                "Version": e.version,
                "Model": e.model,
                "URL": base_url + e.path,
                "Last change": e.updated_at.strftime(TIME_FORMAT),
            }
            for e in endpoints
        ]
    )


def _history_frame(revisions: Sequence[RevisionPublic]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "When": r.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                "Change": ACTIONS.get(r.action, r.action),
                "Version": f"v{r.version}" if r.version is not None else "",
            }
            for r in revisions
        ]
    )


def _act(name: str, action: str, **kwargs: Any) -> None:
    try:
        with studio_session() as session:
            if action == "undeploy":
                row = undeploy(session=session, name=name)
            elif action == "rollback":
                row = rollback(session=session, name=name, **kwargs)
            else:
                row = deploy(session=session, name=name, **kwargs)
    except Exception as exc:
        notify("manage", exc)
        return
    if action == "undeploy":
        notify(
            "manage",
            f"Undeployed '{name}': calls to it now get 404 (not found). Its history is kept; "
            "deploy again to switch it back on.",
            "info",
        )
    elif action == "rollback":
        notify("manage", f"Rolled '{name}' back to v{row.version}. It serves that version now.")
    else:
        notify("manage", f"'{name}' serves v{row.version} of '{row.variant_name}' now.")


def endpoint_panel(endpoint: EndpointPublic, base_url: str) -> None:
    """URL and state of one endpoint; redeploy, roll back, undeploy; its history."""
    name, eid = endpoint.name, endpoint.id
    with studio_session() as session:
        revisions = endpoint_history(session=session, name=name)
        versions = (
            history(session=session, variant_id=endpoint.variant_id)
            if endpoint.variant_id is not None
            else []
        )
    state = "**live**" if endpoint.active else "**off** (calls get 404)"
    st.markdown(
        f"Serves '{endpoint.variant_name}' **v{endpoint.version}** on `{endpoint.model}` · {state}"
    )
    st.code(base_url + endpoint.path, language=None)
    notices("manage")
    current = endpoint.version or 0
    latest = versions[0].version if versions else current
    redeploy_col, rollback_col, off_col = st.columns(3, gap="medium")
    with redeploy_col, st.container(border=True):
        st.markdown("**Redeploy a newer version**")
        newer = [v for v in versions if v.version > current]
        if not newer:
            st.caption(
                f"v{current} is the newest version of '{endpoint.variant_name}'. Save a new "
                "version on the Variants page to deploy it here."
            )
        else:
            by_number = {v.version: v for v in newer}
            chosen = st.selectbox(
                "Version",
                list(by_number),
                key=f"deploy_newer_{eid}",
                format_func=lambda n: version_label(by_number[n], latest),
            )
            st.button(
                f"Deploy v{chosen}",
                key=f"deploy_redeploy_{eid}",
                type="primary",
                on_click=_act,
                args=(name, "deploy"),
                kwargs={"app": endpoint.app_id, "variant": endpoint.variant_id, "version": chosen},
            )
    with rollback_col, st.container(border=True):
        st.markdown("**Roll back**")
        served = {r.version for r in revisions if r.action != "undeploy" and r.version}
        can_go_back = bool(served - {current})
        st.button(
            "Roll back to the previous version",
            key=f"deploy_rollback_{eid}",
            disabled=not can_go_back,
            on_click=_act,
            args=(name, "rollback"),
        )
        if not can_go_back:
            st.caption(f"Nothing to roll back to yet: this endpoint has only served v{current}.")
        older = {v.version: v for v in versions if v.version < current}
        if older:
            target = st.selectbox(
                "Or pick an earlier version",
                list(older),
                key=f"deploy_rollback_version_{eid}",
                format_func=lambda n: version_label(older[n], latest),
            )
            st.button(
                f"Roll back to v{target}",
                key=f"deploy_rollback_to_{eid}",
                on_click=_act,
                args=(name, "rollback"),
                kwargs={"version": target},
            )
    with off_col, st.container(border=True):
        if endpoint.active:
            st.markdown("**Undeploy**")
            st.caption("The URL stops answering at once. History and keys are kept.")
            sure = st.checkbox("Yes, stop serving this endpoint", key=f"deploy_sure_{eid}")
            st.button(
                "Undeploy",
                key=f"deploy_undeploy_{eid}",
                disabled=not sure,
                on_click=_act,
                args=(name, "undeploy"),
            )
        else:
            st.markdown("**Switch back on**")
            st.caption(f"Serve v{current} again at the same URL.")
            st.button(
                f"Deploy v{current} again",
                key=f"deploy_again_{eid}",
                type="primary",
                on_click=_act,
                args=(name, "deploy"),
                kwargs={"app": endpoint.app_id, "variant": endpoint.variant_id, "version": current},
            )
    st.markdown("**History** (newest first)")
    st.dataframe(
        _history_frame(revisions), hide_index=True, width="stretch", key=f"deploy_history_{eid}"
    )
