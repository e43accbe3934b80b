"""``studio app member add|remove|list``: who may use an app.

Administrators use every app; a member uses the apps they were added to; reviewers use
none. The CLI acts as the local operator (an administrator), so it may add and remove
anyone; each change is in the audit log.
"""

from __future__ import annotations

import typer

from studio.cli.output import JsonOpt, out, print_json, session, table

__all__ = ["member_app"]

member_app = typer.Typer(
    help="Who may use an app: add, remove and list its members.", no_args_is_help=True
)


@member_app.command("add")
def member_add(app: str, user: str) -> None:
    """Make USER a member of APP (by name or id)."""
    from studio.services.members import add_member

    with session() as db:
        add_member(session=db, app=app, user=user)
    out.print(f"{user} is a member of {app!r}.")


@member_app.command("remove")
def member_remove(app: str, user: str) -> None:
    """Take USER out of APP; they no longer see its datasets, runs and endpoints."""
    from studio.services.members import remove_member

    with session() as db:
        remove_member(session=db, app=app, user=user)
    out.print(f"{user} is no longer a member of {app!r}.")


@member_app.command("list")
def member_list(app: str, as_json: JsonOpt = False) -> None:
    """The members of APP (administrators use every app without being listed)."""
    from studio.services.members import app_members

    with session() as db:
        names = app_members(session=db, app=app)
    if as_json:
        print_json(names)
        return
    if not names:
        out.print(f"{app!r} has no members yet; administrators use it anyway.")
        return
    table(f"Members of {app}", ["name"], [[n] for n in names])
