"""Who may create, list and revoke which API keys, and the audit events they leave."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, col, select

from studio.core.errors import NotFoundError, PermissionDeniedError, RequestValidationError
from studio.core.identity import Actor, acting_as
from studio.services import api_keys, api_tokens, members, users
from studio.services.apps import create_app
from studio.store.tables import AuditEvent


def _apps(session: Session) -> tuple[int, int]:
    a, b = create_app(session=session, name="Shop"), create_app(session=session, name="Blog")
    session.commit()
    assert a.id is not None and b.id is not None
    return a.id, b.id


def _person(session: Session, name: str, role: str, apps: tuple[int, ...] = ()) -> Actor:
    user = users.create_user(session=session, name=name, password="a long password 1", role=role)
    for app_id in apps:
        members.add_member(session=session, app=app_id, user=user.id)
    return Actor(kind="user", name=name, role=user.role, user_id=user.id)


def test_scopes_are_validated_and_add_up(session: Session) -> None:
    shop, _ = _apps(session)
    assert api_keys.create_key(session=session, app=shop).key.scopes == ["invoke"]
    both = api_keys.create_key(session=session, app=shop, scopes="models, invoke")
    assert both.key.scopes == ["invoke", "models"]
    session.commit()
    assert api_keys.verify_key(secret=both.secret).scopes == {"invoke", "models"}
    admin = api_keys.create_key(session=session, admin=True)
    assert admin.key.scopes == ["invoke", "models", "manage"]
    with pytest.raises(RequestValidationError, match="Unknown scope 'admin'"):
        api_keys.create_key(session=session, app=shop, scopes="invoke,admin")


def test_a_member_makes_keys_only_for_their_apps_and_never_manage(session: Session) -> None:
    shop, blog = _apps(session)
    mia = _person(session, "mia", "member", (shop,))
    with acting_as(mia):
        made = api_keys.create_key(session=session, app=shop, scopes="invoke,models")
        assert made.key.scopes == ["invoke", "models"]
        with pytest.raises(PermissionDeniedError, match="Only administrators can create API"):
            api_keys.create_key(session=session, app=shop, scopes="manage")
        with pytest.raises(PermissionDeniedError, match="administrative"):
            api_keys.create_key(session=session, admin=True)
        with pytest.raises(NotFoundError):  # another app: not even told it exists
            api_keys.create_key(session=session, app=blog)
    session.commit()
    blog_key = api_keys.create_key(session=session, app=blog, name="blog").key.id  # operator
    manage = api_keys.create_key(session=session, app=shop, scopes="manage")  # an admin may
    assert manage.key.scopes == ["manage"]
    session.commit()
    with acting_as(mia):
        assert {k.app_name for k in api_keys.list_keys(session=session)} == {"Shop"}
        with pytest.raises(NotFoundError):
            api_keys.list_keys(session=session, app=blog)
        with pytest.raises(NotFoundError):
            api_keys.revoke_key(session=session, key_id=blog_key)
        assert api_keys.revoke_key(session=session, key_id=made.key.id).revoked


def test_a_reviewer_makes_no_keys(session: Session) -> None:
    shop, _ = _apps(session)
    rex = _person(session, "rex", "reviewer")
    with acting_as(rex), pytest.raises(PermissionDeniedError, match="create API keys"):
        api_keys.create_key(session=session, app=shop)


def test_creating_and_revoking_keys_and_tokens_is_audited_without_the_secret(
    session: Session,
) -> None:
    shop, _ = _apps(session)
    key = api_keys.create_key(session=session, app=shop, name="web", scopes="invoke,models")
    mia = _person(session, "mia", "member", (shop,))
    with acting_as(mia):
        token = api_tokens.create_token(session=session, name="laptop")
    api_keys.revoke_key(session=session, key_id=key.key.id)
    api_keys.revoke_key(session=session, key_id=key.key.id)  # again: nothing new happened
    session.commit()
    stmt = select(AuditEvent).where(col(AuditEvent.target_kind).in_(["key", "token"]))
    events = session.exec(stmt.order_by(col(AuditEvent.id))).all()
    assert [(e.action, e.target_kind, e.target_id) for e in events] == [
        ("create", "key", str(key.key.id)),
        ("create", "token", str(token.key.id)),
        ("revoke", "key", str(key.key.id)),
    ]
    created = events[0]
    assert created.target_name == "web" and created.actor == "local operator"
    assert created.details["prefix"] == key.key.prefix and created.details["app"] == "Shop"
    assert created.details["scopes"] == "invoke,models" and created.details["key_id"] == key.key.id
    assert events[1].actor == "mia (member)" and events[1].details["user_id"] == mia.user_id
    text = json.dumps([e.model_dump(mode="json") for e in events])
    assert key.secret not in text and token.secret not in text
