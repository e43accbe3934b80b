"""Audit log: who created, changed or removed what, and from where (administrators only)."""

from __future__ import annotations

from studio.ui import db_ready, page_header
from studio.ui.audit_log import audit_filters, audit_table

page_header(
    "Audit log",
    "Every change to people, roles, provider connections, model templates, models, "
    "endpoints, deployments and keys, newest first.",
)
db_ready()

audit_table(audit_filters())
