"""Monitoring: placeholder while the page is being built."""

from __future__ import annotations

from studio.ui import db_ready, page_header

page_header("Monitoring", "Coming in this change.")
db_ready()
