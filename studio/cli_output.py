"""Output helpers shared by the ``studio`` commands: JSON for scripts, tables for people."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

__all__ = ["JsonOpt", "out", "print_json", "table"]

# Pipes and CI logs get wide tables instead of 80-column wrapping.
out = Console(width=None if sys.stdout.isatty() else 200)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _plain(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, list):
        return [_plain(o) for o in obj]
    return obj


def print_json(obj: Any) -> None:
    typer.echo(json.dumps(_plain(obj), indent=2, default=str))


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    grid = Table(title=title, title_justify="left")
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*["" if v is None else str(v) for v in row])
    out.print(grid)
