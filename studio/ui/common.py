"""Page plumbing: database start-up once per process, sessions, readable errors."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import streamlit as st
from sqlmodel import Session

from studio.core.errors import StudioError
from studio.core.settings import get_settings
from studio.store import get_engine, session_scope

if TYPE_CHECKING:
    from streamlit.navigation.page import StreamlitPage

__all__ = [
    "csv_buttons",
    "db_ready",
    "gateway_url",
    "page_header",
    "show_error",
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
    """Open (and migrate) the database; on failure show why and stop the page."""
    try:
        _engine_once()
    except StudioError as exc:
        st.error(f"The studio cannot open its database. {exc}")
        st.stop()
        return False
    return True


@contextmanager
def studio_session() -> Iterator[Session]:
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


def csv_buttons(buttons: Sequence[tuple[str, Callable[[], bytes], str, str]]) -> None:
    """CSV download buttons side by side: ``(label, build, file name, key)`` each; ``build``
    runs only when its button is clicked."""
    for column, (label, build, file_name, key) in zip(
        st.columns(len(buttons)), buttons, strict=True
    ):
        column.download_button(
            label,
            build,
            on_click="ignore",
            file_name=file_name,
            mime="text/csv",
            key=key,
            icon=":material/download:",
            width="stretch",
        )
