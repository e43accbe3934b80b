"""Read-only answers straight from the database driver, for commands that must start fast.

``studio app list`` is what people type to see whether the studio is there. Through the
ORM it pays for SQLAlchemy, SQLModel, pydantic and the table classes (about 0.6 s)
before it reads a few rows. :func:`app_summaries` reads the same figures with the
standard library's ``sqlite3`` (or ``psycopg`` on PostgreSQL) and nothing else.

It answers only when it can answer exactly as :func:`studio.services.apps.list_apps`
does (``tests/test_cli_quick.py`` compares the two on SQLite and PostgreSQL); otherwise
it returns ``None`` and the caller takes the ordinary path, which also creates and
migrates the database: no database yet, one that is not at the newest migration, a URL
of another kind, or any error at all.

Where the database is comes from ``DATABASE_URL`` and ``STUDIO_HOME``, read the way
:class:`studio.core.settings.Settings` reads them (the environment first, then a
``.env`` file in the working directory, through the same ``python-dotenv``).
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["app_summaries", "database_target", "head_revision"]

_VERSIONS = Path(__file__).resolve().parent / "migrations" / "versions"

# The app's own row, and per app the count and newest creation time of what it holds,
# as list_apps computes them (archived datasets are neither counted nor active).
_APPS = "SELECT id, name, description, archived, created_at, updated_at FROM app"
_GROUPED = {
    "variants": "SELECT app_id, count(id), max(created_at) FROM variant GROUP BY app_id",
    "variant_versions": (
        "SELECT v.app_id, count(vv.id), max(vv.created_at) FROM variant v "
        "JOIN variantversion vv ON vv.variant_id = v.id GROUP BY v.app_id"
    ),
    "datasets": (
        "SELECT app_id, count(id), max(created_at) FROM dataset WHERE NOT archived GROUP BY app_id"
    ),
    "dataset_versions": (
        "SELECT d.app_id, count(dv.id), max(dv.created_at) FROM dataset d "
        "JOIN datasetversion dv ON dv.dataset_id = d.id GROUP BY d.app_id"
    ),
    "runs": "SELECT app_id, count(id), max(created_at) FROM run GROUP BY app_id",
}


def head_revision() -> str:
    """The newest migration's revision (the files are numbered ``0001_...``)."""
    numbers = [p.name.split("_", 1)[0] for p in _VERSIONS.glob("[0-9]*_*.py")]
    return max(numbers)


def _setting(name: str) -> str | None:
    for key, value in os.environ.items():  # pydantic-settings matches names in any case
        if key.upper() == name:
            return value
    env_file = Path(".env")
    if env_file.is_file():
        from dotenv import dotenv_values

        for key, found in dotenv_values(env_file).items():
            if key.upper() == name and found is not None:
                return found
    return None


def database_target() -> tuple[str, str] | None:
    """``("sqlite", path)`` or ``("postgresql", url)`` for the studio's database, or
    ``None`` for a URL this module does not read."""
    url = _setting("DATABASE_URL")
    if not url:
        home = _setting("STUDIO_HOME")
        base = Path(home).expanduser() if home else Path.home() / ".studio"
        return ("sqlite", str(base / "studio.db"))
    if url.startswith("sqlite:///"):
        return ("sqlite", url[len("sqlite:///") :]) if "?" not in url else None
    match = re.match(r"^(postgres|postgresql)(\+psycopg)?://", url)
    if match:
        return ("postgresql", "postgresql://" + url[match.end() :])
    return None


def _connect(kind: str, where: str) -> Any:
    if kind == "sqlite":
        import sqlite3

        if not Path(where).is_file():
            return None
        conn = sqlite3.connect(where, timeout=5)
        return conn
    import psycopg

    return psycopg.connect(where, connect_timeout=5, autocommit=True)


def _moment(value: Any) -> datetime:
    """Drivers hand back naive UTC times (SQLite as text): aware UTC datetimes."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def app_summaries(*, include_archived: bool = False) -> list[dict[str, Any]] | None:
    """The apps list as :func:`~studio.services.apps.list_apps` returns it (as dicts with
    the same fields, in the same order), or ``None`` when the ordinary path must answer."""
    try:
        target = database_target()
        if target is None:
            return None
        conn = _connect(*target)
        if conn is None:
            return None
        try:
            return _read(conn, include_archived)
        finally:
            conn.close()
    except Exception:  # whatever went wrong, the ordinary path answers (and explains)
        return None


def _read(conn: Any, include_archived: bool) -> list[dict[str, Any]] | None:
    cur = conn.cursor()
    cur.execute("SELECT version_num FROM alembic_version")
    versions = [row[0] for row in cur.fetchall()]
    if versions != [head_revision()]:
        return None
    cur.execute(_APPS if include_archived else _APPS + " WHERE NOT archived")
    apps = cur.fetchall()
    if not apps:
        return []
    grouped: dict[str, dict[int, tuple[int, Any]]] = {}
    for name, sql in _GROUPED.items():
        cur.execute(sql)
        grouped[name] = {int(r[0]): (int(r[1]), r[2]) for r in cur.fetchall()}
    rows: list[dict[str, Any]] = []
    for app_id, name, description, archived, created_at, updated_at in apps:
        moments = [_moment(updated_at), _moment(created_at)]
        for table in grouped.values():
            newest = table.get(int(app_id), (0, None))[1]
            if newest is not None:
                moments.append(_moment(newest))
        rows.append(
            {
                "id": int(app_id),
                "name": name,
                "description": description,
                "archived": bool(archived),
                "variants": grouped["variants"].get(int(app_id), (0, None))[0],
                "datasets": grouped["datasets"].get(int(app_id), (0, None))[0],
                "runs": grouped["runs"].get(int(app_id), (0, None))[0],
                "created_at": _moment(created_at),
                "last_activity": max(moments),
            }
        )
    rows.sort(key=lambda r: (r["last_activity"], r["id"]), reverse=True)
    return rows
