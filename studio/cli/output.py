"""Helpers shared by the ``studio`` commands: a session, JSON files in, JSON for scripts and
tables for people out."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from studio.core.errors import ConfigError, FieldProblem, RequestValidationError

# rich, pydantic and the store are imported when first used, so that a command that needs
# none of them starts quickly (see tests/test_cli_startup.py).
if TYPE_CHECKING:
    from rich.console import Console
    from sqlmodel import Session, SQLModel

    out: Console  # made on first use by __getattr__ below

__all__ = ["JsonOpt", "dump_row", "fields", "out", "print_json", "read_json", "session", "table"]


@cache
def console() -> Console:
    """The console tables print to; pipes and CI logs get wide tables, not 80 columns."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 200)


def __getattr__(name: str) -> Any:
    if name == "out":  # `from studio.cli.output import out` still works, made on first use
        return console()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _plain(obj: Any) -> Any:
    from pydantic import BaseModel

    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, list):
        return [_plain(o) for o in obj]
    return obj


def print_json(obj: Any) -> None:
    typer.echo(json.dumps(_plain(obj), indent=2, default=str))


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.table import Table

    grid = Table(title=title, title_justify="left")
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*["" if v is None else str(v) for v in row])
    console().print(grid)


@contextmanager
def session() -> Iterator[Session]:
    """A database session that commits on success (:func:`studio.store.session_scope`)."""
    from studio.store import session_scope

    with session_scope() as db:
        yield db


def fields(title: str, data: dict[str, Any]) -> None:
    rows = [
        [k, json.dumps(v, indent=2, default=str) if isinstance(v, dict | list) else v]
        for k, v in data.items()
    ]
    table(title, ["field", "value"], rows)


def read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"File not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read {path}: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RequestValidationError(
            [FieldProblem(f"line {exc.lineno} column {exc.colno}", exc.msg)],
            what=f"JSON in {path.name}",
        ) from exc


def dump_row(row: SQLModel) -> dict[str, Any]:
    return row.model_dump(mode="json")
