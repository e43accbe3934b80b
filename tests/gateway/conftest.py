"""Gateway fixtures: an app with a deployed endpoint on the mock provider, a key, a client;
and :func:`person_token`: a user of a role (a member of some apps) and their token."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from studio.core.templates import PromptTemplate
from studio.gateway import create_app
from studio.gateway.request_log import RequestLogger
from studio.services import api_keys, api_tokens, endpoint_calls, endpoints, members, users
from studio.services.apps import create_app as create_studio_app
from studio.services.variants import VariantConfig, create_variant, save_version


@dataclass
class Deployed:
    client: TestClient
    logger: RequestLogger
    key: str
    headers: dict[str, str]
    admin_headers: dict[str, str]
    app_id: int
    variant_id: int
    provider: Any

    def flush(self) -> None:
        while self.logger.pending:
            assert self.logger.flush()


def person_token(
    session: Session, name: str, role: str, apps: tuple[int, ...] = ()
) -> tuple[int, str]:
    """A new account ``name`` with ``role``, a member of ``apps``, and a personal access
    token of it: (user id, token)."""
    user = users.create_user(session=session, name=name, password="a long password 1", role=role)
    for app_id in apps:
        members.add_member(session=session, app=app_id, user=user.id)
    created = api_tokens.create_token(session=session, user=user.id, name=f"{name}'s token")
    session.commit()
    return user.id, created.secret


def make_variant(session: Session, app_id: int, name: str, template: str) -> int:
    version = create_variant(
        session=session,
        app_id=app_id,
        name=name,
        config=VariantConfig(
            model="mock/echo", prompt=PromptTemplate(kind="completion", template=template)
        ),
    )
    return version.variant_id


def save_template(session: Session, variant_id: int, template: str) -> int:
    version = save_version(
        session=session,
        variant_id=variant_id,
        config=VariantConfig(
            model="mock/echo", prompt=PromptTemplate(kind="completion", template=template)
        ),
    )
    return version.version


@pytest.fixture
def deployed(session: Session, mock_provider: Any) -> Iterator[Deployed]:
    app = create_studio_app(session=session, name="Marketing copy")
    assert app.id is not None
    variant_id = make_variant(session, app.id, "email", "Write about {{event}} for {{who}}.")
    endpoints.deploy(session=session, app=app.id, variant="email", name="email")
    created = api_keys.create_key(session=session, app=app.id, name="test")
    admin = api_keys.create_key(session=session, admin=True, name="operator")
    session.commit()
    logger = RequestLogger(interval_s=0.05)
    with TestClient(create_app(logger=logger)) as client:
        yield Deployed(
            client=client,
            logger=logger,
            key=created.secret,
            headers={"Authorization": f"Bearer {created.secret}"},
            admin_headers={"Authorization": f"Bearer {admin.secret}"},
            app_id=app.id,
            variant_id=variant_id,
            provider=mock_provider,
        )
    api_keys.clear_key_cache()
    api_keys.forget_last_used()
    endpoint_calls.clear_endpoint_cache()
