"""``studio deploy``, ``studio endpoint``, ``studio key``, ``studio token`` and ``studio serve``.

A key's or token's plaintext is printed once, by ``studio key create`` or ``studio token
create``; nothing prints it again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from studio.cli.output import JsonOpt, out, print_json, table
from studio.store import session_scope

# Each command imports the service it calls: `studio key list` needs neither the endpoint
# services nor the template engine they bring (tests/test_cli_startup.py).
if TYPE_CHECKING:
    from studio.services import endpoints

__all__ = ["register_gateway_commands"]

endpoint_app = typer.Typer(help="Deployed endpoints: list, history, rollback, undeploy.")
key_app = typer.Typer(
    help="API keys of the gateway (one app each, or administrative with --admin; shown once)."
)
token_app = typer.Typer(help="Personal access tokens: act with a user's role on a gateway.")

AppOpt = Annotated[str, typer.Option("--app", help="App name or id.")]


def register_gateway_commands(app: typer.Typer) -> None:
    """Add deploy, endpoint, key, token and serve to the ``studio`` CLI."""
    app.command("deploy")(deploy)
    app.command("serve")(serve)
    app.add_typer(endpoint_app, name="endpoint")
    app.add_typer(key_app, name="key")
    app.add_typer(token_app, name="token")


def _url(name: str) -> str:
    from studio.gateway.server import base_url

    return f"{base_url()}/v1/endpoints/{name}/generate"


def _show(row: endpoints.EndpointPublic, verb: str) -> None:
    state = "live" if row.active else "off"
    typer.echo(
        f"{verb} endpoint '{row.name}': {row.variant_name} v{row.version} ({row.model}), {state}."
    )
    if row.active:
        typer.echo(f"URL: {_url(row.name)}")


def deploy(
    app: AppOpt,
    variant: Annotated[str, typer.Option("--variant", help="Variant name or id.")],
    version: Annotated[int | None, typer.Option("--version", help="Default: latest.")] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Endpoint name (default: app-variant).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Deploy a variant version to an endpoint (redeploys when the endpoint exists)."""
    from studio.services import endpoints

    with session_scope() as session:
        row = endpoints.deploy(
            session=session, app=app, variant=variant, version=version, name=name
        )
    if as_json:
        print_json(row)
        return
    _show(row, "Deployed")
    typer.echo(f"Create a key with: studio key create --app {app!r}")


@endpoint_app.command("list")
def endpoint_list(
    app: Annotated[str | None, typer.Option("--app", help="Only this app's endpoints.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List endpoints with their deployed version."""
    from studio.services import endpoints

    with session_scope() as session:
        rows = endpoints.list_endpoints(session=session, app=app)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("No endpoints yet. Deploy one: studio deploy --app APP --variant NAME")
        return
    table(
        "Endpoints",
        ["name", "app", "variant", "version", "model", "state", "updated"],
        [
            [
                r.name,
                r.app_name,
                r.variant_name,
                r.version,
                r.model,
                "live" if r.active else "off",
                r.updated_at.strftime("%Y-%m-%d %H:%M"),
            ]
            for r in rows
        ],
    )


@endpoint_app.command("history")
def endpoint_history(name: str, as_json: JsonOpt = False) -> None:
    """Every deploy, rollback and undeploy of an endpoint, newest first."""
    from studio.services import endpoints

    with session_scope() as session:
        rows = endpoints.endpoint_history(session=session, name=name)
    if as_json:
        print_json(rows)
        return
    table(
        f"History of {name}",
        ["when", "action", "version"],
        [[r.created_at.strftime("%Y-%m-%d %H:%M:%S"), r.action, r.version] for r in rows],
    )


@endpoint_app.command("rollback")
def endpoint_rollback(
    name: str,
    version: Annotated[
        int | None, typer.Option("--version", help="Default: the previous version.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Go back to the previously deployed version (or --version N)."""
    from studio.services import endpoints

    with session_scope() as session:
        row = endpoints.rollback(session=session, name=name, version=version)
    print_json(row) if as_json else _show(row, "Rolled back")


@endpoint_app.command("undeploy")
def endpoint_undeploy(name: str, as_json: JsonOpt = False) -> None:
    """Switch an endpoint off (deploy again to switch it back on)."""
    from studio.services import endpoints

    with session_scope() as session:
        row = endpoints.undeploy(session=session, name=name)
    print_json(row) if as_json else _show(row, "Undeployed")


@key_app.command("create")
def key_create(
    app: Annotated[str | None, typer.Option("--app", help="App name or id (an app key).")] = None,
    admin: Annotated[
        bool,
        typer.Option(
            "--admin",
            help="An administrative key: no app; may use the Models API and call raw models.",
        ),
    ] = False,
    name: Annotated[str, typer.Option("--name", help="What the key is for.")] = "default",
    rate_limit: Annotated[
        int | None, typer.Option("--rate-limit", help="Requests per minute (default: none).")
    ] = None,
    scope: Annotated[
        str | None,
        typer.Option(
            "--scope",
            help="Comma-separated scopes of an app key: invoke (call the app's endpoints; "
            "the default), models (call raw models), manage (create, change and delete "
            "models, deployments and templates).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key (--app APP [--scope ...], or --admin); it is printed this once and
    never again."""
    from studio.services import api_keys

    if admin == (app is not None):
        raise typer.BadParameter(
            "give --app APP for an app key, or --admin for an administrative key (not both)"
        )
    if admin and scope is not None:
        raise typer.BadParameter("an administrative key has every scope; leave out --scope")
    with session_scope() as session:
        created = api_keys.create_key(
            session=session,
            app=app,
            admin=admin,
            name=name,
            rate_limit_per_minute=rate_limit,
            scopes=scope,
        )
    if as_json:
        print_json({**created.key.model_dump(mode="json"), "key": created.secret})
        return
    typer.echo(created.secret)
    owner = (
        "an ADMINISTRATIVE key (all apps, the Models API, raw models)"
        if admin
        else f"for app '{created.key.app_name}' with scopes {','.join(created.key.scopes)}"
    )
    out.print(
        f"Key {created.key.id} ('{created.key.name}') {owner}. Copy it now: it is not shown again.",
        style="yellow",
    )


@key_app.command("list")
def key_list(
    app: Annotated[str | None, typer.Option("--app", help="Only this app's keys.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List keys (prefix, name, scopes, created, last used, revoked); never the keys
    themselves."""
    from studio.services import api_keys

    with session_scope() as session:
        rows = api_keys.list_keys(session=session, app=app)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("No API keys yet. Create one: studio key create --app APP (or --admin)")
        return

    def when(value: object) -> str:
        return value.strftime("%Y-%m-%d %H:%M") if value is not None else ""  # type: ignore[attr-defined]

    table(
        "API keys",
        ["id", "app", "name", "prefix", "scopes", "limit/min", "created", "last used", "revoked"],
        [
            [
                r.id,
                "(admin)" if r.is_admin else r.app_name,
                r.name,
                r.prefix + "…",
                ",".join(r.scopes),
                r.rate_limit_per_minute or "",
                when(r.created_at),
                when(r.last_used_at),
                when(r.revoked_at),
            ]
            for r in rows
        ],
    )


@key_app.command("revoke")
def key_revoke(key_id: int) -> None:
    """Revoke a key by id; the gateway refuses it within a second."""
    from studio.services import api_keys

    with session_scope() as session:
        row = api_keys.revoke_key(session=session, key_id=key_id, token=False)
    typer.echo(f"Revoked key {row.id} ('{row.name}', {row.prefix}…).")


UserOpt = Annotated[str | None, typer.Option("--user", help="User name or id.")]


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option("--user", help="The user the token acts as.")],
    name: Annotated[str, typer.Option("--name", help="What the token is for.")] = "default",
    as_json: JsonOpt = False,
) -> None:
    """Create a personal access token for a user; it is printed this once and never again.
    On a gateway it acts with the user's role at the time of each call."""
    from studio.services import api_tokens

    with session_scope() as session:
        created = api_tokens.create_token(session=session, user=user, name=name)
    if as_json:
        print_json({**created.key.model_dump(mode="json"), "token": created.secret})
        return
    typer.echo(created.secret)
    out.print(
        f"Token {created.key.id} ('{created.key.name}') of {created.key.user_name}: it acts "
        "with their role. Copy it now: it is not shown again.",
        style="yellow",
    )


@token_app.command("list")
def token_list(user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """List personal access tokens (everyone's, or --user NAME's); never the tokens."""
    from studio.services import api_tokens

    with session_scope() as session:
        rows = api_tokens.list_tokens(session=session, user=user)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("No personal access tokens yet. Create one: studio token create --user NAME")
        return

    def when(value: object) -> str:
        return value.strftime("%Y-%m-%d %H:%M") if value is not None else ""  # type: ignore[attr-defined]

    table(
        "Personal access tokens",
        ["id", "user", "name", "prefix", "created", "last used", "revoked"],
        [
            [
                r.id,
                r.user_name,
                r.name,
                r.prefix + "…",
                when(r.created_at),
                when(r.last_used_at),
                when(r.revoked_at),
            ]
            for r in rows
        ],
    )


@token_app.command("revoke")
def token_revoke(token_id: int) -> None:
    """Revoke a personal access token by id; the gateway refuses it within a second."""
    from studio.services import api_keys

    with session_scope() as session:
        row = api_keys.revoke_key(session=session, key_id=token_id, token=True)
    typer.echo(f"Revoked token {row.id} ('{row.name}', {row.prefix}…).")


def serve(
    host: Annotated[str | None, typer.Option(help="Default: STUDIO_GATEWAY_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Default: STUDIO_GATEWAY_PORT.")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
) -> None:
    """Run the gateway in the foreground (several workers may share one database)."""
    from studio.gateway.server import base_url
    from studio.gateway.server import serve as run
    from studio.store import get_engine

    get_engine()  # migrate once, before the workers start
    typer.echo(f"Gateway on {base_url(host, port)} (docs at /docs); Ctrl-C stops it.")
    run(host=host, port=port, workers=workers)
