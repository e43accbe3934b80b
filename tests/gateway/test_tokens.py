"""Personal access tokens: they look different from app keys, are shown once and stored
hashed, act with their person's CURRENT role, and die with the account; and the actor the
service layer sees for each kind of key."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session, select

from studio.core.errors import NotFoundError, PermissionDeniedError, RequestValidationError
from studio.core.identity import Actor, acting_as
from studio.services import api_keys, api_tokens, members, users
from studio.store.tables import ApiKey
from tests.gateway.conftest import Deployed, person_token
from tests.gateway.test_hot_caches import Clock

GENERATE = "/v1/endpoints/email/generate"
EMAIL = {"inputs": {"event": "a fair", "who": "families"}}
RAW_CHAT = {"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]}


def _h(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_a_token_looks_different_is_stored_hashed_and_listed_without_its_secret(
    session: Session,
) -> None:
    user_id, secret = person_token(session, "mia", "member")
    assert secret.startswith("sk-studio-pat-") and len(secret) > 40
    row = session.exec(select(ApiKey).where(ApiKey.user_id == user_id)).one()
    assert row.key_hash != secret and secret not in row.key_hash
    assert row.prefix == secret[:16] and row.app_id is None and not row.is_admin
    [listed] = api_tokens.list_tokens(session=session, user="mia")
    assert listed.user_name == "mia" and listed.is_token and secret not in listed.model_dump_json()
    assert api_keys.list_keys(session=session) == []  # tokens are not app keys


def test_a_token_acts_with_its_persons_current_role(
    deployed: Deployed, session: Session, monkeypatch: Any
) -> None:
    clock = Clock()
    monkeypatch.setattr(api_keys._keys, "clock", clock)
    api_keys.clear_key_cache()
    c = deployed.client
    person_token(session, "ada", "admin")  # the studio keeps an administrator
    user_id, secret = person_token(session, "mia", "member", (deployed.app_id,))
    assert c.post(GENERATE, json=EMAIL, headers=_h(secret)).status_code == 200
    assert c.post("/v1/chat/completions", json=RAW_CHAT, headers=_h(secret)).status_code == 200
    assert c.get("/api/v1/model-templates", headers=_h(secret)).status_code == 403

    members.remove_member(session=session, app=deployed.app_id, user=user_id)
    clock.now += api_keys.KEY_CACHE_TTL_S + 0.01  # seen once the cached answer is a TTL old
    r = c.post(GENERATE, json=EMAIL, headers=_h(secret))
    assert r.status_code == 403 and "not a member" in r.json()["error"]["message"]

    users.set_role(session=session, ref=user_id, role="admin")
    clock.now += api_keys.KEY_CACHE_TTL_S + 0.01
    assert c.get("/api/v1/model-templates", headers=_h(secret)).status_code == 200
    assert c.post(GENERATE, json=EMAIL, headers=_h(secret)).status_code == 200

    users.set_role(session=session, ref=user_id, role="reviewer")
    clock.now += api_keys.KEY_CACHE_TTL_S + 0.01
    r = c.post("/v1/chat/completions", json=RAW_CHAT, headers=_h(secret))
    assert r.status_code == 403 and "Reviewers" in r.json()["error"]["message"]


def test_disabling_the_account_kills_its_tokens(
    deployed: Deployed, session: Session, monkeypatch: Any
) -> None:
    clock = Clock()
    monkeypatch.setattr(api_keys._keys, "clock", clock)
    api_keys.clear_key_cache()
    person_token(session, "ada", "admin")  # the studio keeps an administrator
    user_id, secret = person_token(session, "mia", "member", (deployed.app_id,))
    assert deployed.client.get("/v1/models", headers=_h(secret)).status_code == 200
    users.set_disabled(session=session, ref=user_id)
    clock.now += api_keys.KEY_CACHE_TTL_S + 0.01
    r = deployed.client.get("/v1/models", headers=_h(secret))
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]
    users.set_disabled(session=session, ref=user_id, disabled=False)
    clock.now += api_keys.KEY_CACHE_TTL_S + 0.01
    assert deployed.client.get("/v1/models", headers=_h(secret)).status_code == 401  # stays dead
    with pytest.raises(RequestValidationError):  # the operator must name someone
        api_tokens.create_token(session=session, name="x")


def test_who_may_make_and_see_tokens(session: Session) -> None:
    mia_id, _ = person_token(session, "mia", "member")
    rex_id, rex_token = person_token(session, "rex", "reviewer")
    mia = Actor(kind="user", name="mia", role="member", user_id=mia_id)
    with acting_as(mia):
        mine = api_tokens.create_token(session=session, name="laptop")  # her own
        assert mine.key.user_name == "mia"
        assert {t.name for t in api_tokens.list_tokens(session=session)} == {
            "laptop",
            "mia's token",
        }
        with pytest.raises(PermissionDeniedError, match="administrators"):
            api_tokens.create_token(session=session, user="rex", name="sneaky")
        with pytest.raises(PermissionDeniedError, match="administrators"):
            api_tokens.list_tokens(session=session, user="rex")
        rex_key = api_keys.verify_key(secret=rex_token).id
        with pytest.raises(NotFoundError):  # someone else's token is not even told
            api_keys.revoke_key(session=session, key_id=rex_key)
        assert api_keys.revoke_key(session=session, key_id=mine.key.id).revoked
    everyone = api_tokens.list_tokens(session=session)  # the operator sees all
    assert {t.user_id for t in everyone} == {mia_id, rex_id}


def test_the_actor_the_services_see_for_each_kind_of_key(
    deployed: Deployed, session: Session
) -> None:
    app_key = api_keys.create_key(session=session, app=deployed.app_id, scopes="invoke,models")
    admin_key = api_keys.create_key(session=session, admin=True, name="ops")
    session.commit()
    _, admin_token = person_token(session, "ada", "admin")
    mia_id, member_token = person_token(session, "mia", "member", (deployed.app_id,))

    actor = api_keys.verify_key(secret=app_key.secret).actor("gateway 10.0.0.9")
    assert (actor.kind, actor.app_id, actor.scopes) == (
        "key",
        deployed.app_id,
        frozenset({"invoke", "models"}),
    )
    assert not actor.is_admin and actor.origin == "gateway 10.0.0.9"
    actor = api_keys.verify_key(secret=admin_key.secret).actor()
    assert actor.kind == "key" and actor.is_admin and actor.app_id is None
    assert actor.scopes == frozenset({"invoke", "models", "manage"})
    actor = api_keys.verify_key(secret=admin_token).actor()
    assert actor.kind == "user" and actor.is_admin and actor.name == "ada"
    actor = api_keys.verify_key(secret=member_token).actor()
    assert (actor.kind, actor.role, actor.user_id, actor.is_admin) == (
        "user",
        "member",
        mia_id,
        False,
    )
