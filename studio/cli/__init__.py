"""The command-line face: ``studio`` and its command groups (see :mod:`studio.cli.main`).

:func:`main` first offers the command to :mod:`studio.cli.quick` (``studio app list``
answered without the ORM), then runs it through the Typer app, imported only then.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    from studio.cli.quick import try_quick

    if try_quick(list(sys.argv[1:] if argv is None else argv)):
        return
    from studio.cli.main import main as full_main

    full_main(argv)


def __getattr__(name: str) -> Any:
    if name == "app":
        from studio.cli.main import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
