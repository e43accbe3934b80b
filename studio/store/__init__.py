"""Persistence: tables, the engine and sessions, migrations."""

from __future__ import annotations

from studio.store.db import get_engine, init_db, reset_engine, session_scope

__all__ = ["get_engine", "init_db", "reset_engine", "session_scope"]
