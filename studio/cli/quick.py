"""``studio app list`` without the ORM: the same table and JSON, started in a fraction of
the time (see :mod:`studio.store.quick`). Anything it cannot answer exactly (other options,
a database not ready) goes the ordinary way through :mod:`studio.cli.main`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

__all__ = ["try_quick"]

_FLAGS = {"--archived": ("archived", True), "--no-archived": ("archived", False)}


def _json_time(moment: datetime) -> str:
    """A UTC time as pydantic writes it in JSON (``...Z``)."""
    return moment.isoformat().replace("+00:00", "Z")


def try_quick(argv: list[str]) -> bool:
    """Answer ``argv`` here and return True, or return False to take the ordinary path."""
    if argv[:2] != ["app", "list"]:
        return False
    archived, as_json = False, False
    for arg in argv[2:]:
        if arg == "--json":
            as_json = True
        elif arg in _FLAGS:
            archived = _FLAGS[arg][1]
        else:
            return False
    from studio.store.quick import app_summaries

    rows = app_summaries(include_archived=archived)
    if rows is None:
        return False
    if as_json:
        plain: list[dict[str, Any]] = [
            {k: _json_time(v) if isinstance(v, datetime) else v for k, v in r.items()} for r in rows
        ]
        print(json.dumps(plain, indent=2, default=str))
        return True
    from studio.cli.output import table

    table(
        "Apps",
        ["id", "name", "variants", "datasets", "runs", "last activity", "description"],
        [
            [
                r["id"],
                r["name"],
                r["variants"],
                r["datasets"],
                r["runs"],
                f"{r['last_activity']:%Y-%m-%d %H:%M}",
                r["description"],
            ]
            for r in rows
        ],
    )
    return True
