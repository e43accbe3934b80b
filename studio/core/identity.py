"""Who is asking: the :class:`Actor` every service check reads, and the role rules that
need no database.

Each face says who is asking before it calls a service:

* the browser UI, once per script run, from the signed-in account
  (:func:`studio.ui.auth.gate`), or the single local user under ``STUDIO_AUTH=none``;
* the CLI, which runs with the database in reach, acts as the :data:`OPERATOR` (an
  administrator) and says so in its help;
* the gateway, per request, from the verified API key or personal token;
* job workers act as :data:`WORKER`: they carry out work a permitted actor enqueued.

The actor lives in a :class:`~contextvars.ContextVar`. Unset, it is :data:`ANONYMOUS`,
who may do nothing: deny by default. :func:`acting_as` sets it for a block; threads a
service starts must copy the context (``contextvars.copy_context().run``).

Roles: ``admin`` (users, connections, model templates, prices, every app), ``member``
(the apps they belong to: datasets, variants, runs, evaluations, deploy, keys),
``reviewer`` (only their review queues). App membership needs the database and is
checked in :mod:`studio.services.members`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field, replace
from typing import Literal

from studio.core.errors import PermissionDeniedError

__all__ = [
    "ANONYMOUS",
    "OPERATOR",
    "ROLES",
    "SCOPES",
    "WORKER",
    "Actor",
    "ActorKind",
    "Role",
    "acting_as",
    "current_actor",
    "parse_scopes",
    "require_admin",
    "require_role",
    "reset_actor",
    "set_actor",
]

Role = Literal["admin", "member", "reviewer"]
ROLES: tuple[Role, ...] = ("admin", "member", "reviewer")
ActorKind = Literal["anonymous", "operator", "user", "key"]

# API key scopes: invoke (this app's endpoints), models (raw models through the OpenAI
# routes and the Models API execute), manage (create, update, delete models, deployments
# and templates; only an administrator may make such a key).
SCOPES: tuple[str, ...] = ("invoke", "models", "manage")


@dataclass(frozen=True)
class Actor:
    """One caller. ``name`` is what the audit log shows (never a secret)."""

    kind: ActorKind
    name: str
    role: Role | None = None
    user_id: int | None = None
    key_id: int | None = None
    app_id: int | None = None  # an app key's app
    scopes: frozenset[str] = field(default_factory=frozenset)
    origin: str = ""  # "ui 10.0.0.7", "cli", "gateway 10.0.0.9", "worker"

    @property
    def is_admin(self) -> bool:
        return self.kind == "operator" or self.role == "admin"

    @property
    def signed_in(self) -> bool:
        return self.kind != "anonymous"

    def at(self, origin: str) -> Actor:
        """The same actor, seen from ``origin``."""
        return replace(self, origin=origin)

    def describe(self) -> str:
        """A short sentence fragment: ``ada (admin)``, ``API key 3``, ``local operator``."""
        if self.kind == "user":
            return f"{self.name} ({self.role})"
        return self.name


ANONYMOUS = Actor(kind="anonymous", name="nobody")
OPERATOR = Actor(kind="operator", name="local operator", role="admin", origin="cli")
WORKER = Actor(kind="operator", name="studio worker", role="admin", origin="worker")

_current: ContextVar[Actor] = ContextVar("studio_actor", default=ANONYMOUS)


def current_actor() -> Actor:
    """Who is asking in this context (:data:`ANONYMOUS` when no face said so)."""
    return _current.get()


def set_actor(actor: Actor) -> Token[Actor]:
    """Make ``actor`` the caller for the rest of this context (a script run, a CLI
    process); :func:`reset_actor` with the token undoes it."""
    return _current.set(actor)


def reset_actor(token: Token[Actor]) -> None:
    _current.reset(token)


@contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    """``with acting_as(actor):`` every service call in the block is ``actor``'s."""
    token = _current.set(actor)
    try:
        yield actor
    finally:
        _current.reset(token)


def _refuse(action: str, needed: str) -> PermissionDeniedError:
    actor = current_actor()
    if not actor.signed_in:
        return PermissionDeniedError(
            f"Sign in to {action}.", hint="Open the studio and sign in, or use the CLI."
        )
    return PermissionDeniedError(
        f"Only {needed} can {action}.",
        hint="Ask an administrator of this studio to do it, or to change your role.",
    )


def require_role(*roles: Role, action: str) -> Actor:
    """The current actor if it is the operator or has one of ``roles``; otherwise a
    :class:`PermissionDeniedError` saying who may ``action`` (e.g. "create apps")."""
    actor = current_actor()
    # an administrative API key's actor has the admin role (kind "key"); app keys have none
    if actor.kind == "operator" or (actor.kind in ("user", "key") and actor.role in roles):
        return actor
    needed = " or ".join(f"{r}s" for r in roles) if roles else "administrators"
    raise _refuse(action, needed.replace("admins", "administrators"))


def require_admin(action: str) -> Actor:
    """The current actor if it is an administrator (or the operator); else refused."""
    return require_role("admin", action=action)


def parse_scopes(value: str | list[str] | tuple[str, ...] | None) -> frozenset[str]:
    """``"invoke,models"`` → ``{"invoke", "models"}``; empty → ``{"invoke"}`` (the default).
    An unknown scope is a :class:`ValueError` naming the ones there are."""
    if value is None:
        return frozenset({"invoke"})
    parts = value.split(",") if isinstance(value, str) else list(value)
    scopes = {p.strip().lower() for p in parts if p and p.strip()}
    unknown = sorted(scopes - set(SCOPES))
    if unknown:
        raise ValueError(
            f"Unknown scope {', '.join(repr(u) for u in unknown)}; the scopes are "
            f"{', '.join(SCOPES)}."
        )
    return frozenset(scopes or {"invoke"})
