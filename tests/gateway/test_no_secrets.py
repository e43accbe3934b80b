"""No API key or personal token in clear: not in any table (the request log and the audit
log included), not in the log output, not in any answer after the one that created it."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select
from sqlmodel import Session, SQLModel

from studio.services import api_keys, api_tokens
from studio.store import session_scope
from tests.gateway.conftest import Deployed, person_token

EMAIL = {"inputs": {"event": "a fair", "who": "families"}}
RAW_CHAT = {"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]}


def _everything_stored() -> str:
    """Every value of every row of every table, as text."""
    parts: list[str] = []
    with session_scope() as session:
        for table in SQLModel.metadata.sorted_tables:
            for row in session.execute(select(table)).all():
                parts.extend(str(value) for value in row)
    return "\n".join(parts)


def test_keys_and_tokens_never_appear_in_clear(
    deployed: Deployed, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    scoped = api_keys.create_key(
        session=session, app=deployed.app_id, name="web", scopes="invoke,models"
    )
    revoked = api_keys.create_key(session=session, app=deployed.app_id, name="old")
    session.commit()
    _, admin_token = person_token(session, "ada", "admin")
    _, member_token = person_token(session, "mia", "member", (deployed.app_id,))
    _, reviewer_token = person_token(session, "rex", "reviewer")
    api_keys.revoke_key(session=session, key_id=revoked.key.id)
    session.commit()
    secrets = {
        "app key": deployed.key,
        "scoped key": scoped.secret,
        "admin key": deployed.admin_headers["Authorization"].removeprefix("Bearer "),
        "revoked key": revoked.secret,
        "admin token": admin_token,
        "member token": member_token,
        "reviewer token": reviewer_token,
        "a wrong key": "sk-studio-this-is-not-a-key-but-looks-like-one",
    }
    c = deployed.client
    answers = []
    for secret in secrets.values():
        for header in ({"Authorization": f"Bearer {secret}"}, {"x-api-key": secret}):
            answers.append(c.post("/v1/endpoints/email/generate", json=EMAIL, headers=header))
            answers.append(c.post("/v1/chat/completions", json=RAW_CHAT, headers=header))
            answers.append(c.get("/api/v1/models", headers=header))
            answers.append(c.get("/api/v1/monitoring/requests", headers=header))
    statuses = {r.status_code for r in answers}
    assert {200, 401, 403} <= statuses  # served, refused as unknown or revoked, forbidden
    deployed.flush()
    api_keys.due_last_used(force=True)

    with session_scope() as s:  # what the studio lists about keys and tokens
        listed = [k.model_dump_json() for k in api_keys.list_keys(session=s)]
        listed += [t.model_dump_json() for t in api_tokens.list_tokens(session=s)]
    stored = _everything_stored()
    assert "POST /v1/endpoints/email/generate" in stored  # the request log was written
    assert "create" in stored and "revoke" in stored  # and the audit log
    places = {
        "the database": stored,
        "the log output": caplog.text,
        "the answers": "\n".join(r.text + str(r.headers) for r in answers),
        "the key lists": "\n".join(listed),
    }
    leaks = [
        f"{what} in {where}"
        for what, secret in secrets.items()
        for where, text in places.items()
        if secret in text
    ]
    assert leaks == []
