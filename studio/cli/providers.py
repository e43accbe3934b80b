"""The ``studio`` commands for provider connections and the price table."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from pydantic import SecretStr

from studio.cli.output import JsonOpt, dump_row, print_json, table
from studio.cli.output import session as _session
from studio.core.errors import ConfigError
from studio.core.schemas import parse_document
from studio.models.connections import (
    ConnectionCreate,
    add_connection,
    get_provider,
    list_connections,
    remove_connection,
)
from studio.models.usage import list_prices, set_price

provider_app = typer.Typer(help="Provider connections (OpenAI-compatible, Anthropic, rerank).")
price_app = typer.Typer(help="The per-model price table used for cost.")


def register_provider_commands(app: typer.Typer) -> None:
    """Add the provider and price commands to the ``studio`` CLI."""
    app.add_typer(provider_app, name="provider")
    app.add_typer(price_app, name="price")


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
        rows = [dump_row(r) for r in list_prices(session=session)]
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
