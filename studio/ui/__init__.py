"""Streamlit helpers shared by the pages: the only place in studio/ that imports streamlit."""

from __future__ import annotations

from studio.ui.common import db_ready, gateway_url, page_header, show_error, studio_session

__all__ = ["db_ready", "gateway_url", "page_header", "show_error", "studio_session"]
