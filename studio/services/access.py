"""Who may do what on the gateway, in one place: every route calls these functions.

The caller is the verified :class:`~studio.services.api_keys.KeyIdentity`: an app key
(its app and scopes), an administrative key (no app, every scope), or a personal
access token (its person's current role, and for a member their apps, read with the
key). The decision table, ``yes`` meaning allowed (else 403, with a sentence naming
the missing scope or role):

===============================  ===============  ==========  =========  ===========  ========
action                           app key of app   admin key   admin      member       reviewer
                                 A, by scope                  token      token        token
===============================  ===============  ==========  =========  ===========  ========
call an endpoint of app A        ``invoke``       yes         yes        member of A  no
call a raw model (OpenAI routes, ``models``       yes         yes        yes          no
Models API execute, embeddings)
list ``/v1/models``              what it may      all         all        its apps'    no
                                 call                                    + raw models
Models API reads (models,        ``models`` or    yes         yes        yes          no
deployments, usage, validate)    ``manage``
Models API writes, templates     ``manage``       yes         yes        no           no
model schemas (documentation)    any scope        yes         yes        yes          no
monitoring, usage, requests,     app A only,      all apps    all apps   their apps   no
evaluations (reads)              any scope
rank chunks (``/chunks/rank``)   ``models``       yes         yes        yes          no
query a knowledge base of app A  any scope        yes         yes        member of A  no
===============================  ===============  ==========  =========  ===========  ========

No key, an unknown key and a revoked key are refused before any of this (401, in
:mod:`studio.services.api_keys`). A key of a deleted app has no app: it reads no
traffic and calls no endpoint (only raw models or the Models API, if its scopes say).
Deny by default: a check that does not positively allow refuses.

Reads of one thing that belongs to an app the caller may not read (a logged request,
an evaluation, a knowledge base) answer 404, as for a thing that does not exist, so its
existence is not told; naming such an app or endpoint in a filter is refused (403).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from sqlmodel import Session, col, select

from studio.core.errors import NotFoundError, PermissionDeniedError
from studio.core.identity import acting_as, current_actor
from studio.services.api_keys import KeyIdentity
from studio.services.apps import get_app
from studio.store.tables import Endpoint, Evaluation, KnowledgeBase

__all__ = [
    "MAX_ROW_ID",
    "evaluations_scope",
    "managing",
    "may_call_models",
    "may_invoke",
    "readable_app_ids",
    "readable_evaluation",
    "readable_knowledge_base",
    "require_caller",
    "require_invoke",
    "require_manage",
    "require_models",
    "require_models_read",
    "require_readable_app",
    "visible_endpoint_ids",
]

MAX_ROW_ID = 2**31 - 1  # PostgreSQL's INTEGER

_KEY_HINT = (
    "Ask an administrator, or a member of the app, for a key made with "
    "`studio key create --app APP --scope {scope}`."
)
_ROLE_HINT = "Ask an administrator of this studio to change your role."


def _refused(message: str, hint: str) -> PermissionDeniedError:
    return PermissionDeniedError(message, hint=hint)


def _no_scope(scope: str, action: str) -> PermissionDeniedError:
    return _refused(
        f"This API key lacks the '{scope}' scope, which is needed to {action}.",
        _KEY_HINT.format(scope=scope),
    )


def require_caller(key: KeyIdentity) -> None:
    """Refuse a reviewer's token: reviewers use only their review queues, not the gateway."""
    if key.is_token and key.role not in ("admin", "member"):
        raise _refused(
            "Reviewers' tokens may not use the gateway; reviewers see only their review "
            "queues in the studio.",
            _ROLE_HINT,
        )


# -- endpoints -------------------------------------------------------------------------


def may_invoke(key: KeyIdentity, app_id: int | None) -> bool:
    """True when ``key`` may call the endpoints of app ``app_id``."""
    if key.is_admin:
        return True
    if key.is_token:
        if key.role == "admin":
            return True
        return key.role == "member" and app_id is not None and app_id in key.member_apps
    return "invoke" in key.scopes and app_id is not None and key.app_id == app_id


def require_invoke(key: KeyIdentity, app_id: int | None) -> None:
    """Refuse unless ``key`` may call an endpoint of app ``app_id``."""
    if may_invoke(key, app_id):
        return
    require_caller(key)
    if key.is_token:
        raise _refused(
            "You are not a member of this endpoint's app, so your token may not call it.",
            "Ask an administrator to add you to the app.",
        )
    if key.app_id is None or key.app_id != app_id:
        raise _refused(
            "This API key belongs to another app.",
            "Use a key created for the endpoint's app (`studio key create --app APP`).",
        )
    raise _no_scope("invoke", "call this app's endpoints")


# -- raw models and the Models API -------------------------------------------------------


def may_call_models(key: KeyIdentity) -> bool:
    """True when ``key`` may call raw models (on the studio's provider credit)."""
    if key.is_admin:
        return True
    if key.is_token:
        return key.role in ("admin", "member")
    return "models" in key.scopes


def require_models(key: KeyIdentity) -> None:
    """Refuse unless ``key`` may call raw models (OpenAI routes, execute, embeddings)."""
    if may_call_models(key):
        return
    require_caller(key)
    raise _no_scope("models", "call raw models (only endpoints of its app)")


def require_models_read(key: KeyIdentity) -> None:
    """Refuse unless ``key`` may read models, deployments and their usage."""
    if key.is_admin or (not key.is_token and key.scopes & {"models", "manage"}):
        return
    require_caller(key)
    if key.is_token:
        return  # an administrator's or a member's token
    raise _no_scope("models", "read the Models API")


def require_manage(key: KeyIdentity) -> None:
    """Refuse unless ``key`` may create, change and delete models, deployments and templates."""
    if key.is_admin or (not key.is_token and "manage" in key.scopes):
        return
    require_caller(key)
    if key.is_token:
        if key.role == "admin":
            return
        raise _refused(
            "Only administrators can create, change or delete models, deployments and "
            "model templates; your token acts as a member.",
            _ROLE_HINT,
        )
    raise _no_scope("manage", "create, change or delete models, deployments and templates")


@contextmanager
def managing(key: KeyIdentity) -> Iterator[None]:
    """For a Models API write :func:`require_manage` allowed: a key with the ``manage``
    scope acts as an administrator of models in the service's own checks (the audit
    log still names the key). Everyone else acts as they are."""
    require_manage(key)
    actor = current_actor()
    if actor.kind == "key" and actor.role != "admin":
        with acting_as(replace(actor, role="admin", app_id=None)):
            yield
        return
    yield


# -- reads of an app's traffic and evaluations ------------------------------------------------


def readable_app_ids(key: KeyIdentity) -> frozenset[int] | None:
    """The apps whose traffic and evaluations ``key`` may read: ``None`` means every app."""
    require_caller(key)
    if key.is_admin or (key.is_token and key.role == "admin"):
        return None
    if key.is_token:
        return key.member_apps
    if key.app_id is None:
        raise _refused(
            "This API key's app no longer exists, so there is no traffic it may read.",
            "Create a key for an existing app (`studio key create --app APP`).",
        )
    return frozenset({key.app_id})


def require_readable_app(key: KeyIdentity, app_id: int | None) -> None:
    """Refuse (403) naming an app, or an endpoint of an app, ``key`` may not read."""
    readable = readable_app_ids(key)
    if readable is None or (app_id is not None and app_id in readable):
        return
    if key.is_token:
        raise _refused(
            "You are not a member of that app, so your token may not read its traffic.",
            "Ask an administrator to add you to the app.",
        )
    raise _refused(
        "This API key belongs to another app; it reads only its own app's traffic.",
        "Use a key created for that app (`studio key create --app APP`).",
    )


def visible_endpoint_ids(*, session: Session, key: KeyIdentity) -> list[int] | None:
    """The endpoints whose traffic ``key`` may read: ``None`` (all), or the ids of the
    endpoints of its readable apps."""
    readable = readable_app_ids(key)
    if readable is None:
        return None
    if not readable:
        return []
    stmt = select(Endpoint.id).where(col(Endpoint.app_id).in_(sorted(readable)))
    return [int(i) for i in session.exec(stmt.order_by(col(Endpoint.id))).all() if i is not None]


def evaluations_scope(*, session: Session, key: KeyIdentity, app: str | None) -> list[int] | None:
    """The apps whose evaluations ``key`` lists: ``app`` (a name or id) when it may read it
    (another app's: refused), else every app it may read (``None``: all)."""
    if app is not None and app.strip():
        found = get_app(session=session, ref=app)
        require_readable_app(key, found.id)
        assert found.id is not None
        return [found.id]
    readable = readable_app_ids(key)
    return None if readable is None else sorted(readable)


def readable_evaluation(*, session: Session, key: KeyIdentity, evaluation_id: int) -> Evaluation:
    """Evaluation ``evaluation_id`` if ``key`` may read it. Another app's evaluation is not
    found (404), as another app's logged request is: its existence is not told."""
    readable = readable_app_ids(key)
    # an id no table can hold (SQLite: 64 bits, PostgreSQL: 32) is simply not found
    in_range = 1 <= evaluation_id <= MAX_ROW_ID
    evaluation = session.get(Evaluation, evaluation_id) if in_range else None
    if evaluation is None or (readable is not None and evaluation.app_id not in readable):
        raise NotFoundError(
            f"No evaluation {evaluation_id}.",
            hint="List the evaluations this key may read with GET /api/v1/evaluations.",
        )
    return evaluation


def readable_knowledge_base(*, session: Session, key: KeyIdentity, kb_id: int) -> KnowledgeBase:
    """Knowledge base ``kb_id`` if ``key`` may query it (a key of its app, any scope; a
    member's token of its app; administrators). Another app's is not found (404)."""
    readable = readable_app_ids(key)
    found = session.get(KnowledgeBase, kb_id) if 1 <= kb_id <= MAX_ROW_ID else None
    if found is None or (readable is not None and found.app_id not in readable):
        raise NotFoundError(
            f"No knowledge base {kb_id}.",
            hint="Ask a member of the app for the id of one of its knowledge bases.",
        )
    return found
