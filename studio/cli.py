"""The ``studio`` command line: the Models API and connections, for people and scripts.

Human output is tables; ``--json`` prints JSON for scripts. Any error prints
one line, ``error: <what is wrong> <how to fix it>``, and exits non-zero.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import SecretStr
from sqlmodel import Session, SQLModel

from studio import registry
from studio.cli_apps import register_app_commands
from studio.cli_gateway import register_gateway_commands
from studio.cli_output import JsonOpt, out, print_json, table
from studio.connections import (
    ConnectionCreate,
    add_connection,
    get_provider,
    list_connections,
    remove_connection,
)
from studio.errors import ConfigError, FieldProblem, RequestValidationError, StudioError
from studio.model_specs import ModelCreate, TemplateCreate
from studio.schemas import model_schemas, parse_document
from studio.store import session_scope
from studio.usage import list_prices, set_price, usage_statistics

__all__ = ["app", "main"]

app = typer.Typer(
    name="studio",
    help="Prompt Studio: model templates, models, deployments, execute, usage.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
template_app = typer.Typer(help="Model templates (creating them needs admin mode).")
model_app = typer.Typer(help="Models: create, inspect, validate requests, execute, usage.")
provider_app = typer.Typer(help="Provider connections (OpenAI-compatible, Anthropic, rerank).")
price_app = typer.Typer(help="The per-model price table used for cost.")
group_app = typer.Typer(help="Model groups (namespaces for models).")
app.add_typer(template_app, name="model-template")
app.add_typer(model_app, name="model")
app.add_typer(provider_app, name="provider")
app.add_typer(price_app, name="price")
app.add_typer(group_app, name="model-group")
register_app_commands(app)
register_gateway_commands(app)


@contextmanager
def _session() -> Iterator[Session]:
    with session_scope() as session:
        yield session


def _fields(title: str, data: dict[str, Any]) -> None:
    rows = [
        [k, json.dumps(v, indent=2, default=str) if isinstance(v, dict | list) else v]
        for k, v in data.items()
    ]
    table(title, ["field", "value"], rows)


def _read_json(path: Path) -> Any:
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


def _dump_row(row: SQLModel) -> dict[str, Any]:
    return row.model_dump(mode="json")


# -- model templates ----------------------------------------------------------------------


@template_app.command("list")
def template_list(as_json: JsonOpt = False) -> None:
    """List model templates."""
    with _session() as session:
        rows = registry.list_templates(session=session)
        if as_json:
            print_json([_dump_row(r) for r in rows])
            return
        table(
            "Model templates",
            ["id", "name", "model_type", "runtime", "parameters", "system"],
            [
                [
                    r.id,
                    r.name,
                    r.model_type,
                    r.runtime,
                    ", ".join(
                        p["name"] + ("*" if p.get("required") else "")
                        for p in r.model_creation_parameters_schema.get("parameters", [])
                    ),
                    "yes" if r.is_system else "",
                ]
                for r in rows
            ],
        )
        out.print("* required parameter")


@template_app.command("create")
def template_create(file: Path, as_json: JsonOpt = False) -> None:
    """Create a model template from a JSON file (admin mode: STUDIO_ADMIN=1)."""
    data = parse_document(TemplateCreate, _read_json(file), "model template")
    with _session() as session:
        row = registry.create_template(session=session, data=data)
        print_json(_dump_row(row)) if as_json else _fields(
            "Output of model-template create", _dump_row(row)
        )


@template_app.command("get")
def template_get(ref: str, as_json: JsonOpt = False) -> None:
    """Show one model template (by id or name)."""
    with _session() as session:
        row = registry.get_template(session=session, ref=ref)
        print_json(_dump_row(row)) if as_json else _fields("Model template", _dump_row(row))


@template_app.command("delete")
def template_delete(ref: str) -> None:
    """Delete a model template no model uses (admin mode)."""
    with _session() as session:
        registry.delete_template(session=session, ref=ref)
    typer.echo(f"Deleted model template {ref}.")


@template_app.command("show-model-schemas")
def show_model_schemas() -> None:
    """Print the JSON Schemas of every model type's request and response."""
    print_json(model_schemas())


# -- models ---------------------------------------------------------------------------------


def _model_row(session: Session, ref: str) -> dict[str, Any]:
    resolved = registry.resolve_model(session=session, ref=ref)
    data = _dump_row(resolved.model)
    dep = resolved.deployment
    data["status"] = dep.status if dep else "N/A"
    data["deployment_id"] = dep.id if dep else None
    if dep and dep.status_reason:
        data["status_reason"] = dep.status_reason
    return data


@model_app.command("list")
def model_list(as_json: JsonOpt = False) -> None:
    """List built-in and custom models with their deployment status."""
    with _session() as session:
        rows = [r.model_dump() for r in registry.model_overview(session=session)]
        if as_json:
            print_json(rows)
            return
        table(
            "Models",
            ["name", "type", "status", "context", "id"],
            [[r["name"], r["model_type"], r["status"], r["context_window"], r["id"]] for r in rows],
        )


@model_app.command("create")
def model_create(
    file: Path,
    model_template_id: Annotated[
        str | None, typer.Option("--model-template-id", help="Template id or name.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a model from a JSON file; its deployment starts at once."""
    payload = _read_json(file)
    if model_template_id and isinstance(payload, dict):
        payload["model_template_id"] = model_template_id
    data = parse_document(ModelCreate, payload, "model")
    with _session() as session:
        model = registry.create_model(session=session, data=data)
        info = _model_row(session, model.id)
    if as_json:
        print_json(info)
        return
    _fields("Output of model create", info)
    if info["status"] == "FAILED":
        raise typer.Exit(code=1)


@model_app.command("get")
def model_get(ref: str, as_json: JsonOpt = False) -> None:
    """Show a model's status (id, name or deployment)."""
    with _session() as session:
        info = _model_row(session, ref)
    if as_json:
        print_json(info)
        return
    keys = ["id", "name", "model_type", "status", "status_reason", "deployment_id"]
    _fields("Model", {k: info[k] for k in keys if k in info})


@model_app.command("describe")
def model_describe(ref: str, as_json: JsonOpt = False) -> None:
    """Show everything about a model, its template and deployments."""
    with _session() as session:
        info = _model_row(session, ref)
        if info.get("model_template_id"):
            tpl = registry.get_template(session=session, ref=info["model_template_id"])
            info["template"] = {"name": tpl.name, "runtime": tpl.runtime}
        info["deployments"] = [
            {"id": d.id, "name": d.name, "status": d.status, "builtin": d.is_builtin}
            for d in registry.list_deployments(session=session, model_id=info["id"])
        ]
    print_json(info) if as_json else _fields("Model", info)


@model_app.command("deploy")
def model_deploy(ref: str, as_json: JsonOpt = False) -> None:
    """(Re)start a model's deployment and report READY or FAILED with the reason."""
    with _session() as session:
        dep = registry.deploy_model(session=session, ref=ref)
        data = _dump_row(dep)
    print_json(data) if as_json else _fields("Deployment", data)
    if dep.status == "FAILED":
        raise typer.Exit(code=1)


@model_app.command("validate-request")
def model_validate_request(ref: str, file: Path) -> None:
    """Check a request file against the model type's schema without calling the model."""
    payload = _read_json(file)
    with _session() as session:
        req = registry.validate_model_request(session=session, ref=ref, payload=payload)
    typer.echo(f"Request is valid ({type(req).__name__}).")


@model_app.command("execute")
def model_execute(ref: str, file: Path, as_json: JsonOpt = False) -> None:
    """Execute a request file against a model (id, name, or connection/model)."""
    payload = _read_json(file)
    with _session() as session:
        response = registry.execute(session=session, ref=ref, payload=payload, source="cli")
    if as_json:
        print_json(response)
        return
    _print_human_response(response.model_dump(mode="json"))


def _print_human_response(data: dict[str, Any]) -> None:
    if "embeddings" in data:
        rows = [
            [text[:60], len(vec), ", ".join(f"{x:.4f}" for x in vec[:4]) + ", ..."]
            for text, vec in data["embeddings"]
        ]
        table("Embeddings", ["text", "dimensions", "first values"], rows)
        out.print(f"tokens used: {data.get('tokens_used')}")
        return
    print_json(data)


@model_app.command("delete")
def model_delete(ref: str) -> None:
    """Delete a custom model and its deployment (built-ins cannot be deleted)."""
    with _session() as session:
        registry.delete_model(session=session, ref=ref)
    typer.echo(f"Deleted model {ref}.")


@model_app.command("usage")
def model_usage(
    ref: str,
    by: Annotated[
        str, typer.Option(help="Aggregate by 'deployment' or by model 'name'.")
    ] = "deployment",
    as_json: JsonOpt = False,
) -> None:
    """Usage statistics by day: requests, tokens, errors, cost, latency."""
    with _session() as session:
        if by not in ("deployment", "name"):
            raise ConfigError("--by must be 'deployment' or 'name'.")
        try:
            resolved = registry.resolve_model(session=session, ref=ref)
            name, dep = resolved.model.name, resolved.deployment
        except StudioError:
            if by != "name":
                raise
            name, dep = ref, None
        stats = (
            usage_statistics(session=session, deployment_id=dep.id if dep else "-")
            if by == "deployment"
            else usage_statistics(session=session, model_name=name)
        )
    if as_json:
        print_json(stats)
        return
    table(
        f"Usage of {name} (by {by})",
        ["day", "requests", "errors", "prompt tok", "response tok", "cost $", "avg ms", "max ms"],
        [
            [
                d.day,
                d.requests,
                d.errors,
                d.prompt_tokens,
                d.response_tokens,
                f"{d.cost:.6f}",
                d.avg_latency_ms,
                d.max_latency_ms,
            ]
            for d in stats.by_day
        ],
    )
    out.print(
        f"total: {stats.requests} requests, {stats.errors} errors, "
        f"{stats.prompt_tokens + stats.response_tokens} tokens, ${stats.cost:.6f}"
    )


# -- providers ----------------------------------------------------------------------------------


@provider_app.command("add")
def provider_add(
    name: str,
    kind: Annotated[str, typer.Option(help="openai | anthropic | rerank")],
    base_url: Annotated[str | None, typer.Option(help="Server URL, e.g. http://host/v1")] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="Environment variable that holds the key.")
    ] = None,
    api_key_stdin: Annotated[
        bool, typer.Option(help="Read the key from standard input; stored encrypted.")
    ] = False,
    concurrency: Annotated[int | None, typer.Option(help="Calls in flight at once.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Per-call timeout in seconds.")] = None,
) -> None:
    """Add a connection. Its models are then called as NAME/model."""
    key = sys.stdin.readline().strip() if api_key_stdin else None
    if api_key_stdin and not key:
        raise ConfigError("No key was given on standard input.")
    options: dict[str, Any] = {}
    if concurrency is not None:
        options["concurrency"] = concurrency
    if timeout is not None:
        options["timeout_s"] = timeout
    data = parse_document(
        ConnectionCreate,
        {
            "name": name,
            "kind": kind,
            "base_url": base_url,
            "api_key_env": api_key_env,
            "api_key": SecretStr(key) if key else None,
            "options": options,
        },
        "connection",
    )
    with _session() as session:
        conn = add_connection(session=session, data=data)
    typer.echo(f"Added connection '{conn.name}' ({conn.kind}). Call its models as {name}/MODEL.")


@provider_app.command("list")
def provider_list(as_json: JsonOpt = False) -> None:
    """List connections (keys are never shown)."""
    with _session() as session:
        conns = list_connections(session=session)
    if as_json:
        print_json(conns)
        return
    table(
        "Connections",
        ["name", "kind", "base_url", "key", "source"],
        [
            [
                c.name,
                c.kind,
                c.base_url or "",
                (f"${c.api_key_env}" if c.api_key_env else "stored")
                if c.has_key or c.api_key_env
                else "none",
                c.source,
            ]
            for c in conns
        ],
    )


@provider_app.command("remove")
def provider_remove(name: str) -> None:
    """Remove a stored connection."""
    with _session() as session:
        remove_connection(session=session, name=name)
    typer.echo(f"Removed connection '{name}'.")


@provider_app.command("models")
def provider_models(name: str, as_json: JsonOpt = False) -> None:
    """List the models a connection offers (asks the server)."""
    import asyncio

    with _session() as session:
        provider = get_provider(session=session, name=name)
    infos = asyncio.run(provider.list_models())
    if as_json:
        print_json(infos)
        return
    table(
        f"Models of {name}",
        ["name", "type", "context", "offline"],
        [[f"{name}/{i.id}", i.model_type.value, i.context_window, i.offline] for i in infos],
    )


# -- prices, groups ------------------------------------------------------------------------------


@price_app.command("list")
def price_list(as_json: JsonOpt = False) -> None:
    """Show prices in USD per million tokens."""
    with _session() as session:
        rows = [_dump_row(r) for r in list_prices(session=session)]
    if as_json:
        print_json(rows)
        return
    table(
        "Prices (USD per million tokens)",
        ["model", "input", "output"],
        [[r["model"], r["input_per_mtok"], r["output_per_mtok"]] for r in rows],
    )


@price_app.command("set")
def price_set(
    model: str,
    input_price: Annotated[float, typer.Option("--input", help="USD per million input tokens")],
    output_price: Annotated[float, typer.Option("--output", help="USD per million output tokens")],
) -> None:
    """Set the price of a model (its full name or the provider's model id)."""
    with _session() as session:
        set_price(
            session=session, model=model, input_per_mtok=input_price, output_per_mtok=output_price
        )
    typer.echo(f"Price of {model}: ${input_price}/M input, ${output_price}/M output tokens.")


@group_app.command("list")
def group_list(as_json: JsonOpt = False) -> None:
    """List model groups."""
    with _session() as session:
        rows = [_dump_row(g) for g in registry.list_model_groups(session=session)]
    if as_json:
        print_json(rows)
        return
    table(
        "Model groups",
        ["id", "name", "description"],
        [[r["id"], r["name"], r["description"]] for r in rows],
    )


@group_app.command("create")
def group_create(name: str, description: str = "") -> None:
    """Create a model group."""
    with _session() as session:
        row = registry.create_model_group(session=session, name=name, description=description)
    typer.echo(f"Created model group '{row.name}' ({row.id}).")


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
