"""Who may read and who may change the model layer's objects.

* Reading models, deployments, connections (never their keys), prices, templates and
  usage, and calling models from the studio: administrators and members.
* Changing connections, templates, models, deployments and prices: administrators.
* Reviewers and anonymous callers: nothing.
* An API key (the gateway): the gateway checks its scopes itself; an administrative key
  acts as an administrator.

The low-level call path (prepare, execute, providers) checks nothing: it is reached only
through the services and routes that checked, and the gateway's hot path must not pay
for a check per call.
"""

from __future__ import annotations

from studio.core.identity import Actor, current_actor, require_admin, require_role

__all__ = ["require_model_admin", "require_model_reader"]


def require_model_reader(action: str) -> Actor:
    """Administrators, members and API keys may ``action`` ("list models"); else refused."""
    actor = current_actor()
    if actor.kind == "key":
        return actor
    return require_role("admin", "member", action=action)


def require_model_admin(action: str) -> Actor:
    """Administrators (and the local operator) may ``action``; everyone else is refused."""
    return require_admin(action)
