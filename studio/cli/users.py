"""The ``studio user`` and ``studio audit`` commands: studio accounts and the audit log.

The CLI runs with the database in reach, so it acts as the local operator (an
administrator): it may create accounts, change roles, disable and enable people, reset
passwords and read the audit log; each change is in the audit log as "local operator"
from "cli". A password is read from standard input (``--password-stdin``), or generated
and printed once: it is never stored in clear, so it cannot be shown again.
"""

from __future__ import annotations

import secrets
from typing import Annotated

import typer

from studio.cli.output import JsonOpt, out, print_json, session, table
from studio.core.errors import ConfigError

__all__ = ["register_user_commands"]

# The help lines are the ones listed in studio.cli.main.COMMANDS (tests/test_cli_startup.py).
user_app = typer.Typer(
    help="Studio accounts: create, list, set roles, disable, reset passwords.",
    no_args_is_help=True,
)
audit_app = typer.Typer(
    help="The audit log: who changed users, keys, models and endpoints.",
    no_args_is_help=True,
)

RoleArg = Annotated[str, typer.Argument(help="admin, member or reviewer.")]
PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from the first line of standard input (else one is "
        "generated and printed once).",
    ),
]


def register_user_commands(app: typer.Typer) -> None:
    """Add the ``user`` and ``audit`` commands to the ``studio`` CLI."""
    app.add_typer(user_app, name="user")
    app.add_typer(audit_app, name="audit")


def _password(from_stdin: bool) -> tuple[str, bool]:
    """(the password, whether it was generated here)."""
    if not from_stdin:
        return secrets.token_urlsafe(15), True
    line = typer.get_text_stream("stdin").readline().rstrip("\r\n")
    if not line:
        raise ConfigError(
            "No password on standard input.",
            hint="Pipe it in, e.g. `printf '%s\\n' \"$PASSWORD\" | studio user create ...`, "
            "or leave out --password-stdin to have one generated.",
        )
    return line, False


def _show_password(name: str, password: str) -> None:
    typer.echo(password)
    out.print(
        f"The password of {name}. Copy it now: it is not shown again.",
        style="yellow",
    )


@user_app.command("create")
def user_create(
    name: str,
    role: Annotated[str, typer.Option("--role", help="admin, member or reviewer.")] = "member",
    password_stdin: PasswordStdin = False,
    as_json: JsonOpt = False,
) -> None:
    """Create an account; its password is read from stdin, or generated and printed once."""
    from studio.services.users import create_user

    password, generated = _password(password_stdin)
    with session() as db:
        made = create_user(session=db, name=name, password=password, role=role)
    if as_json:
        print_json(
            {**made.model_dump(mode="json"), **({"password": password} if generated else {})}
        )
        return
    out.print(f"Created {made.name} ({made.role}).")
    if generated:
        _show_password(made.name, password)


@user_app.command("list")
def user_list(as_json: JsonOpt = False) -> None:
    """Every account with its role, state and apps."""
    from studio.services.users import list_users

    with session() as db:
        users = list_users(session=db)
    if as_json:
        print_json(users)
        return
    table(
        "Users",
        ["id", "name", "role", "state", "apps", "last sign-in"],
        [
            [
                u.id,
                u.name,
                u.role,
                "disabled" if u.disabled else "active",
                ", ".join(str(a) for a in u.apps),
                u.last_sign_in_at.isoformat(timespec="seconds") if u.last_sign_in_at else "never",
            ]
            for u in users
        ],
    )


@user_app.command("set-role")
def user_set_role(name: str, role: RoleArg, as_json: JsonOpt = False) -> None:
    """Change an account's role (the last administrator stays one)."""
    from studio.services.users import set_role

    with session() as db:
        changed = set_role(session=db, ref=name, role=role)
    print_json(changed) if as_json else out.print(f"{changed.name} is now {changed.role}.")


@user_app.command("disable")
def user_disable(name: str, as_json: JsonOpt = False) -> None:
    """Disable an account: it cannot sign in, its sessions end and its tokens are revoked."""
    from studio.services.users import set_disabled

    with session() as db:
        changed = set_disabled(session=db, ref=name, disabled=True)
    if as_json:
        print_json(changed)
        return
    out.print(f"{changed.name} is disabled; their sessions ended and their tokens are revoked.")


@user_app.command("enable")
def user_enable(name: str, as_json: JsonOpt = False) -> None:
    """Enable a disabled account again."""
    from studio.services.users import set_disabled

    with session() as db:
        changed = set_disabled(session=db, ref=name, disabled=False)
    print_json(changed) if as_json else out.print(f"{changed.name} may sign in again.")


@user_app.command("reset-password")
def user_reset_password(
    name: str, password_stdin: PasswordStdin = False, as_json: JsonOpt = False
) -> None:
    """Set a new password (from stdin, or generated and printed once); signs the account
    out of every browser."""
    from studio.services.users import reset_password

    password, generated = _password(password_stdin)
    with session() as db:
        changed = reset_password(session=db, ref=name, password=password)
    if as_json:
        print_json(
            {**changed.model_dump(mode="json"), **({"password": password} if generated else {})}
        )
        return
    out.print(f"New password set for {changed.name}; their browser sessions ended.")
    if generated:
        _show_password(changed.name, password)


@audit_app.command("list")
def audit_list(
    actor: Annotated[
        str | None, typer.Option("--actor", help="Part of the actor's name, e.g. ada.")
    ] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="create, update, delete, set-role, ...")
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="What changed: user, connection, model, endpoint, ..."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=5000, help="At most.")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """The newest audit events first: who did what, to what, from where."""
    from studio.services.audit_log import list_audit

    with session() as db:
        events = list_audit(session=db, actor=actor, action=action, target_kind=kind, limit=limit)
    if as_json:
        print_json(events)
        return
    table(
        "Audit log",
        ["at", "actor", "from", "action", "what", "details"],
        [
            [
                e.at.isoformat(timespec="seconds"),
                e.actor,
                e.origin,
                e.action,
                f"{e.target_kind} {e.target_name or e.target_id}".strip(),
                ", ".join(f"{k}={v}" for k, v in e.details.items()),
            ]
            for e in events
        ],
    )
