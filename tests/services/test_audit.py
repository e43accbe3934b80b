"""The audit log (issue 15): every change to connections, templates, models, model
deployments, prices and endpoints leaves exactly one event naming who did it and from
where, in the change's own transaction, and never a secret.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import SecretStr
from sqlmodel import Session, col, select

from studio.core.errors import PermissionDeniedError
from studio.core.identity import Actor, acting_as
from studio.core.templates import PromptTemplate
from studio.models import registry
from studio.models.connections import (
    ConnectionCreate,
    ConnectionUpdate,
    add_connection,
    remove_connection,
    update_connection,
)
from studio.models.specs import ModelCreate, TemplateCreate
from studio.models.usage import set_price
from studio.services import endpoints
from studio.services.apps import create_app
from studio.services.audit_log import list_audit
from studio.services.variants import VariantConfig, create_variant, save_version
from studio.store.tables import AuditEvent

KEY = "sk-live-0123456789abcdefSECRET"
NEW_KEY = "sk-live-fedcba9876543210SECRET"
ADA = Actor(kind="user", name="ada", role="admin", user_id=1, origin="ui 10.0.0.7")

Event = tuple[str, str, str]  # (action, target kind, target name)


def _events_of(session: Session, change: Callable[[], Any]) -> list[Event]:
    """The audit events ``change`` adds (committed with it), oldest first; each must name
    ada as the actor and her browser as the origin."""
    before = session.exec(select(AuditEvent.id).order_by(col(AuditEvent.id).desc())).first() or 0
    with acting_as(ADA):
        change()
    session.commit()
    rows = session.exec(
        select(AuditEvent).where(col(AuditEvent.id) > before).order_by(col(AuditEvent.id))
    ).all()
    assert all(
        (e.actor, e.origin, e.actor_user_id) == ("ada (admin)", "ui 10.0.0.7", 1) for e in rows
    )
    return [(e.action, e.target_kind, e.target_name) for e in rows]


def test_connection_changes_are_audited_without_their_key(session: Session) -> None:
    create = ConnectionCreate(
        name="acme", kind="openai", base_url="http://acme.invalid", api_key=SecretStr(KEY)
    )
    assert _events_of(session, lambda: add_connection(session=session, data=create)) == [
        ("create", "connection", "acme")
    ]
    update = ConnectionUpdate(api_key=SecretStr(NEW_KEY))
    assert _events_of(
        session, lambda: update_connection(session=session, name="acme", data=update)
    ) == [("update", "connection", "acme")]
    assert _events_of(session, lambda: remove_connection(session=session, name="acme")) == [
        ("delete", "connection", "acme")
    ]
    changed = [e for e in list_audit(session=session) if e.target_kind == "connection"]
    assert changed[-1].details["base_url"] == "http://acme.invalid"  # the settings are there
    assert changed[1].details["changed"] == ["stored API key"]
    for row in session.exec(select(AuditEvent)).all():
        text = " ".join(str(v) for v in row.model_dump().values())
        assert KEY not in text and NEW_KEY not in text
        assert "0123456789abcdef" not in text and "fedcba9876543210" not in text


def test_template_model_deployment_and_price_changes_are_audited(
    session: Session, mock_provider: object
) -> None:
    template = TemplateCreate(
        name="embedder", model_type="EMBEDDING", runtime="sentence-transformers"
    )
    assert _events_of(
        session, lambda: registry.create_template(session=session, data=template)
    ) == [("create", "model-template", "embedder")]
    assert _events_of(
        session, lambda: registry.delete_template(session=session, ref="embedder")
    ) == [("delete", "model-template", "embedder")]
    model = ModelCreate(
        name="echoer", connection="mock", provider_model="echo", model_type="COMPLETION"
    )
    assert _events_of(session, lambda: registry.create_model(session=session, data=model)) == [
        ("create", "model", "echoer"),
        ("deploy", "model-deployment", "echoer"),
    ]
    assert _events_of(session, lambda: registry.deploy_model(session=session, ref="echoer")) == [
        ("deploy", "model-deployment", "echoer")
    ]
    assert _events_of(
        session, lambda: registry.rename_model(session=session, ref="echoer", new_name="echo2")
    ) == [("rename", "model", "echoer")]
    assert _events_of(
        session, lambda: registry.set_model_group(session=session, ref="echo2", group="echoes")
    ) == [("update", "model", "echo2")]
    assert _events_of(
        session,
        lambda: set_price(session=session, model="echo2", input_per_mtok=1.5, output_per_mtok=3),
    ) == [("set-price", "price", "echo2")]
    assert _events_of(session, lambda: registry.delete_model(session=session, ref="echo2")) == [
        ("delete", "model", "echo2")
    ]
    price = next(e for e in list_audit(session=session) if e.action == "set-price")
    assert price.details == {"input_per_mtok": 1.5, "output_per_mtok": 3}


def test_endpoint_deploy_rollback_and_undeploy_are_audited(
    session: Session, mock_provider: object
) -> None:
    app = create_app(session=session, name="Copy")
    assert app.id is not None
    first = VariantConfig(model="mock/echo", prompt=PromptTemplate.completion("One {{x}}"))
    made = create_variant(session=session, app_id=app.id, name="v", config=first)
    session.commit()

    def deploy() -> None:
        endpoints.deploy(session=session, app=app.id, variant="v", name="copy")

    assert _events_of(session, deploy) == [("deploy", "endpoint", "copy")]
    second = VariantConfig(model="mock/echo", prompt=PromptTemplate.completion("Two {{x}}"))
    save_version(session=session, variant_id=made.variant_id, config=second)
    assert _events_of(session, deploy) == [("deploy", "endpoint", "copy")]
    assert _events_of(session, lambda: endpoints.rollback(session=session, name="copy")) == [
        ("rollback", "endpoint", "copy")
    ]
    assert _events_of(session, lambda: endpoints.undeploy(session=session, name="copy")) == [
        ("undeploy", "endpoint", "copy")
    ]
    rolled = next(e for e in list_audit(session=session) if e.action == "rollback")
    assert (rolled.details["variant"], rolled.details["version"]) == ("v", 1)


def test_a_refused_change_leaves_no_event(session: Session) -> None:
    mia = Actor(kind="user", name="mia", role="member", user_id=2, origin="ui")
    create = ConnectionCreate(name="acme", kind="openai", base_url="http://acme.invalid")
    with acting_as(mia), pytest.raises(PermissionDeniedError, match="Only administrators"):
        add_connection(session=session, data=create)
    session.commit()
    assert session.exec(select(AuditEvent)).all() == []


def test_people_and_membership_changes_are_audited_without_passwords(session: Session) -> None:
    from studio.services.members import add_member, remove_member
    from studio.services.users import create_user, reset_password, set_disabled, set_role

    with acting_as(ADA):  # the actor's own account (id 1), as the pages have it
        create_user(session=session, name="ada", password="ada's own password", role="admin")
        create_app(session=session, name="Support")
    session.commit()
    secret, new_secret = "tangerine-ladder-1977", "periwinkle-anchor-2024"
    made = _events_of(session, lambda: create_user(session=session, name="mia", password=secret))
    assert [(a, k) for a, k, _ in made] == [("create", "user")]
    assert _events_of(session, lambda: add_member(session=session, app="Support", user="mia")) == [
        ("add-member", "app", "Support")
    ]
    assert _events_of(
        session, lambda: remove_member(session=session, app="Support", user="mia")
    ) == [("remove-member", "app", "Support")]
    changes = {
        "set-role": lambda: set_role(session=session, ref="mia", role="reviewer"),
        "disable": lambda: set_disabled(session=session, ref="mia"),
        "reset-password": lambda: reset_password(session=session, ref="mia", password=new_secret),
    }
    for action, change in changes.items():
        assert _events_of(session, change) == [(action, "user", "mia")]
    members = [e for e in list_audit(session=session) if e.action.endswith("-member")]
    assert [e.details["user"] for e in members] == ["mia", "mia"]
    for row in session.exec(select(AuditEvent)).all():
        text = " ".join(str(v) for v in row.model_dump().values())
        assert secret not in text and new_secret not in text
