"""Persistence: tables, the engine and sessions, migrations.

The engine functions are imported on first use (module ``__getattr__``), so that
:mod:`studio.store.quick` can be imported without SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from studio.store.db import get_engine, init_db, reset_engine, session_scope

__all__ = ["get_engine", "init_db", "reset_engine", "session_scope"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from studio.store import db

        return getattr(db, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
