"""The ``studio`` command line: one Typer app, one module per command group.

Human output is tables; ``--json`` prints JSON for scripts. Any error prints
one line, ``error: <what is wrong> <how to fix it>``, and exits non-zero.

Start-up is kept short: the command groups are listed in :data:`COMMANDS`, so
``studio --help`` imports none of them, and ``studio app list`` imports only
:mod:`studio.cli.apps`. ``tests/test_cli_startup.py`` checks the list matches the
modules.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any, NamedTuple

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

from studio.core.errors import StudioError
from studio.core.identity import OPERATOR, set_actor

__all__ = ["COMMANDS", "app", "main"]


class Entry(NamedTuple):
    module: str
    help: str


_MODELS, _PROVIDERS = "studio.cli.models", "studio.cli.providers"
_APPS, _GATEWAY = "studio.cli.apps", "studio.cli.gateway"
_JOBS = "studio.cli.jobs"
_EVALS = "studio.cli.evals"
_COMPARE = "studio.cli.compare"
_USERS = "studio.cli.users"
_REVIEWS = "studio.cli.reviews"
_KNOWLEDGE = "studio.cli.knowledge"
_FINETUNE = "studio.cli.finetune"

#: Every top-level command: the module that registers it, and its help line (as listed).
COMMANDS: dict[str, Entry] = {
    "deploy": Entry(
        _GATEWAY, "Deploy a variant version to an endpoint (redeploys when the endpoint exists)."
    ),
    "serve": Entry(
        _GATEWAY, "Run the gateway in the foreground (several workers may share one database)."
    ),
    "model-template": Entry(_MODELS, "Model templates (creating them needs an administrator)."),
    "model": Entry(_MODELS, "Models: create, inspect, validate requests, execute, usage."),
    "model-group": Entry(_MODELS, "Model groups (namespaces for models)."),
    "provider": Entry(_PROVIDERS, "Provider connections (OpenAI-compatible, Anthropic, rerank)."),
    "price": Entry(_PROVIDERS, "The per-model price table used for cost."),
    "app": Entry(_APPS, "Apps: one per use case."),
    "dataset": Entry(_APPS, "Datasets of an app (CSV or JSON Lines)."),
    "variant": Entry(_APPS, "Variants: versioned prompt configurations."),
    "run": Entry(_APPS, "Run a variant over a dataset (`studio run --app ... `), or resume a run."),
    "job": Entry(
        _JOBS, "Jobs: long work (runs) executed by workers, or by the process that started it."
    ),
    "worker": Entry(
        _JOBS, "Execute job parts from the queue (PostgreSQL) until SIGTERM or Ctrl-C."
    ),
    "eval": Entry(_EVALS, "Evaluations: score runs with evaluators; a CI gate with --fail-under."),
    "compare": Entry(_COMPARE, "Compare variants and models on one dataset, with paired tests."),
    "endpoint": Entry(_GATEWAY, "Deployed endpoints: list, history, rollback, undeploy."),
    "key": Entry(
        _GATEWAY,
        "API keys of the gateway (one app each, or administrative with --admin; shown once).",
    ),
    "token": Entry(_GATEWAY, "Personal access tokens: act with a user's role on a gateway."),
    "user": Entry(_USERS, "Studio accounts: create, list, set roles, disable, reset passwords."),
    "audit": Entry(_USERS, "The audit log: who changed users, keys, models and endpoints."),
    "review": Entry(_REVIEWS, "Human reviews: criteria, raters, agreement, CSV export and import."),
    "kb": Entry(_KNOWLEDGE, "Knowledge bases: documents chunked and embedded, searched by query."),
    "chunks": Entry(
        _KNOWLEDGE, "Rank chunks for a query (reranking model, embedding similarity or BM25)."
    ),
    "finetune": Entry(
        _FINETUNE, "Fine-tuning jobs: a dataset version and a base model make a new model."
    ),
}

#: The function each command module adds its commands with.
REGISTER: dict[str, str] = {
    _MODELS: "register_model_commands",
    _PROVIDERS: "register_provider_commands",
    _APPS: "register_app_commands",
    _GATEWAY: "register_gateway_commands",
    _JOBS: "register_job_commands",
    _EVALS: "register_eval_commands",
    _COMPARE: "register_compare_commands",
    _USERS: "register_user_commands",
    _REVIEWS: "register_review_commands",
    _KNOWLEDGE: "register_knowledge_commands",
    _FINETUNE: "register_finetune_commands",
}


def module_commands(module: str) -> dict[str, Any]:
    """The click commands ``module`` registers, by name (imports the module)."""
    sub = typer.Typer()
    getattr(importlib.import_module(module), REGISTER[module])(sub)
    return dict(typer.main.get_group(sub).commands)


class _LazyCommands(TyperGroup):
    """The root group: lists :data:`COMMANDS`; imports a command's module only to run it."""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        if self._listing:  # the help screen needs names and help lines only
            return TyperCommand(name=cmd_name, help=entry.help)
        if cmd_name not in self.commands:
            self.commands.update(module_commands(entry.module))
        return self.commands[cmd_name]

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="studio",
    cls=_LazyCommands,
    help="Prompt Studio: model templates, models, deployments, execute, usage. The CLI acts "
    "as the local operator (an administrator), since it runs with the database in reach.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Nothing to do before a command; the commands are listed in :data:`COMMANDS`."""


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the app and turns every error into one line and a non-zero exit.

    The CLI runs with the database in reach, so it acts as the local operator (an
    administrator); the audit log records its changes as "local operator" from "cli"."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    set_actor(OPERATOR)
    try:
        # Without standalone mode click returns typer.Exit's code instead of exiting.
        code = app(args=argv, prog_name="studio", standalone_mode=False)
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
        # Recent Typer raises its own copy of click's exceptions (typer._click), older Typer
        # click's own: either way a usage error shows its usage line and message.
        show = getattr(exc, "show", None)
        if type(exc).__module__.startswith(("click.", "typer.")) and callable(show):
            show()
            sys.exit(getattr(exc, "exit_code", 2))
        typer.echo(f"error: unexpected {type(exc).__name__}: {exc}", err=True)
        sys.exit(2)
