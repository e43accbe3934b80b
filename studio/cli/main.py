"""The ``studio`` command line: one Typer app, one module per command group.

Human output is tables; ``--json`` prints JSON for scripts. Any error prints
one line, ``error: <what is wrong> <how to fix it>``, and exits non-zero.
"""

from __future__ import annotations

import logging
import sys

import typer

from studio.cli.apps import register_app_commands
from studio.cli.gateway import register_gateway_commands
from studio.cli.models import register_model_commands
from studio.cli.providers import register_provider_commands
from studio.core.errors import StudioError

__all__ = ["app", "main"]

app = typer.Typer(
    name="studio",
    help="Prompt Studio: model templates, models, deployments, execute, usage.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
register_model_commands(app)
register_provider_commands(app)
register_app_commands(app)
register_gateway_commands(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the app and turns every error into one line and a non-zero exit."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        # Without standalone mode click returns typer.Exit's code instead of exiting.
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except StudioError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("error: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # click usage errors and anything unexpected
        from click.exceptions import ClickException

        if isinstance(exc, ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        typer.echo(f"error: unexpected {type(exc).__name__}: {exc}", err=True)
        sys.exit(2)
