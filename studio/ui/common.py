"""Page plumbing: database start-up once per process, the sign-in gate, sessions, readable
errors, the sidebar."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st
from sqlmodel import Session

from studio.core.errors import StudioError
from studio.core.identity import Actor, acting_as, current_actor, set_actor
from studio.core.settings import get_settings
from studio.store import get_engine, session_scope

if TYPE_CHECKING:
    from streamlit.navigation.page import StreamlitPage

__all__ = [
    "as_caller",
    "csv_buttons",
    "db_ready",
    "gateway_url",
    "open_database",
    "page_header",
    "show_error",
    "sidebar_account",
    "sidebar_navigation",
    "studio_session",
]

log = logging.getLogger(__name__)


@st.cache_resource(show_spinner="Opening the studio database…")
def _engine_once() -> str:
    engine = get_engine()
    return engine.url.get_backend_name()


@st.cache_resource(show_spinner=False)
def gateway_url() -> str:
    """The gateway's base URL; starts it inside this process when enabled and not running."""
    from studio.gateway.server import base_url, ensure_embedded_gateway

    if not get_settings().embedded_gateway:
        return base_url()
    try:
        return ensure_embedded_gateway()
    except Exception:  # the UI works without it; deploy pages say the gateway is down
        log.exception("the embedded gateway could not start")
        return base_url()


def db_ready() -> bool:
    """Open (and migrate) the database, sign the visitor in and set the actor for this run;
    on failure, or on a page the visitor's role may not open, show why and stop the page.

    Which roles may open the calling page comes from
    :data:`studio.ui.auth.PAGE_ROLES`, by the calling file's name."""
    from studio.ui import auth

    open_database()
    caller = sys._getframe(1).f_code.co_filename
    auth.gate(auth.page_roles(Path(caller).stem))
    return True


def open_database() -> None:
    """Open (and migrate) the database once per process; on failure show why and stop."""
    try:
        _engine_once()
    except StudioError as exc:
        st.error(f"The studio cannot open its database. {exc}")
        st.stop()


@contextmanager
def studio_session() -> Iterator[Session]:
    """A database session for a page or a widget callback. Callbacks run before the page's
    gate, so the person at the browser is restored here when no actor is set yet."""
    if not current_actor().signed_in:
        from studio.ui.auth import resolve_actor

        actor = resolve_actor()
        if actor is not None:
            set_actor(actor)
    with session_scope() as session:
        yield session


def show_error(exc: BaseException) -> None:
    """Show an error as a sentence, never as a traceback or a raw dict."""
    if isinstance(exc, StudioError):
        st.error(exc.message)
        if exc.hint:
            st.caption(exc.hint)
    else:
        log.exception("unexpected error in a page")
        st.error(
            f"Something went wrong ({type(exc).__name__}). The details are in the studio's log."
        )


def sidebar_navigation(pages: Sequence[StreamlitPage]) -> None:
    """The studio's own navigation: one link per page, in the sidebar, labelled by title."""
    with st.sidebar:
        for page in pages:
            st.page_link(page, label=page.title, icon=page.icon or None)


def sidebar_account(actor: Actor) -> None:
    """Who is signed in, and a Sign out button (none without sign-in)."""
    from studio.ui import auth

    with st.sidebar:
        st.divider()
        if actor.kind == "operator":
            st.caption(
                "Sign-in is off (STUDIO_AUTH=none): you are the local administrator of this "
                "machine's studio."
            )
            return
        st.caption(f"Signed in as **{actor.name}**, {auth.a_role(actor.role)}.")
        if st.button("Sign out", key="studio_sign_out", icon=":material/logout:"):
            auth.sign_out()
            st.rerun()


def _hand_over_to_app() -> None:
    """Rerun through app.py when Streamlit ran a ``pages/`` file on its own.

    Until app.py has called ``st.navigation`` once in the process, Streamlit treats the
    ``pages/`` folder as an old-style multipage app: a bookmark opened first (``/models``)
    runs ``pages/models.py`` by itself, without the studio's navigation or start-up.
    Turning that mode off and rerunning sends the same page through app.py.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a Streamlit without the old mode
        return
    if getattr(PagesManager, "uses_pages_directory", None) is True:
        PagesManager.uses_pages_directory = False
        st.rerun()


def page_header(title: str, caption: str) -> None:
    _hand_over_to_app()
    st.title(title)
    st.caption(caption)


def as_caller(build: Callable[[], bytes]) -> Callable[[], bytes]:
    """``build`` made to run as the person at the browser now. A download button's data
    callable runs later, when the file is fetched, outside the script run (no session
    state, so no way to find the signed-in person then): it would act as nobody."""
    actor = current_actor()

    def run() -> bytes:
        with acting_as(actor):
            return build()

    return run


def csv_buttons(buttons: Sequence[tuple[str, Callable[[], bytes], str, str]]) -> None:
    """CSV download buttons side by side: ``(label, build, file name, key)`` each; ``build``
    runs only when its button is clicked, as the person who saw the button."""
    for column, (label, build, file_name, key) in zip(
        st.columns(len(buttons)), buttons, strict=True
    ):
        column.download_button(
            label,
            as_caller(build),
            on_click="ignore",
            file_name=file_name,
            mime="text/csv",
            key=key,
            icon=":material/download:",
            width="stretch",
        )
