"""`studio deploy`, `studio endpoint`, `studio key` (with scopes; printed once), `studio token`
(personal access tokens, printed once) and `studio serve --help`."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session

from studio.core.errors import RevokedApiKeyError
from studio.services import api_keys, users
from studio.services.apps import create_app as create_studio_app
from tests.gateway.conftest import make_variant, save_template


def _setup(session: Session) -> int:
    app = create_studio_app(session=session, name="Copy")
    assert app.id is not None
    variant_id = make_variant(session, app.id, "email", "v1 {{event}}")
    save_template(session, variant_id, "v2 {{event}}")
    session.commit()
    return variant_id


def test_deploy_list_rollback_undeploy(cli: Any, session: Session, mock_provider: Any) -> None:
    _setup(session)
    r = cli("deploy", "--app", "Copy", "--variant", "email", "--version", "1", "--name", "mail")
    assert r.code == 0, r.err
    assert "Deployed endpoint 'mail': email v1" in r.out
    assert "/v1/endpoints/mail/generate" in r.out
    assert cli("deploy", "--app", "Copy", "--variant", "email", "--name", "mail").code == 0
    listed = cli("endpoint", "list", "--json").json()
    assert [(e["name"], e["version"], e["active"]) for e in listed] == [("mail", 2, True)]
    r = cli("endpoint", "rollback", "mail")
    assert r.code == 0 and "Rolled back endpoint 'mail': email v1" in r.out
    r = cli("endpoint", "history", "mail", "--json")
    assert [h["action"] for h in r.json()] == ["rollback", "deploy", "deploy"]
    r = cli("endpoint", "undeploy", "mail")
    assert r.code == 0 and ", off." in r.out
    assert "off" in cli("endpoint", "list").out


def test_deploy_errors_are_one_line(cli: Any, session: Session, mock_provider: Any) -> None:
    _setup(session)
    r = cli("deploy", "--app", "Nope", "--variant", "email")
    assert r.code == 1 and r.err.startswith("error: No app 'Nope'")
    r = cli("endpoint", "rollback", "ghost")
    assert r.code == 1 and "No endpoint 'ghost'" in r.err
    r = cli("deploy", "--app", "Copy", "--variant", "email", "--name", "Bad Name")
    assert r.code == 1 and "lowercase" in r.err
    assert "No endpoints yet" in cli("endpoint", "list").out


def test_keys_are_printed_once(cli: Any, session: Session, mock_provider: Any) -> None:
    _setup(session)
    assert "No API keys yet" in cli("key", "list").out
    r = cli("key", "create", "--app", "Copy", "--name", "web", "--rate-limit", "60")
    assert r.code == 0
    secret = r.out.splitlines()[0]
    assert secret.startswith("sk-studio-") and "not shown again" in r.out
    listed = cli("key", "list")
    assert secret not in listed.out and secret[:14] in listed.out and "web" in listed.out
    data = cli("key", "list", "--json").json()
    assert "key" not in data[0] and data[0]["rate_limit_per_minute"] == 60
    r = cli("key", "revoke", str(data[0]["id"]))
    assert r.code == 0 and "Revoked key" in r.out and secret not in r.out
    assert cli("key", "list", "--json").json()[0]["revoked_at"] is not None
    assert cli("key", "revoke", "999").code == 1


def test_serve_has_host_port_and_workers(cli: Any) -> None:
    r = cli("serve", "--help")
    assert r.code == 0
    for option in ("--host", "--port", "--workers"):
        assert option in r.out


def test_keys_have_scopes(cli: Any, session: Session) -> None:
    _setup(session)
    r = cli("key", "create", "--app", "Copy", "--scope", "invoke,models", "--name", "raw")
    assert r.code == 0, r.err
    assert "with scopes invoke,models" in r.out
    secret = r.out.splitlines()[0]
    assert api_keys.verify_key(secret=secret).scopes == {"invoke", "models"}
    assert "invoke,models" in cli("key", "list").out
    assert cli("key", "list", "--json").json()[0]["scopes"] == ["invoke", "models"]
    r = cli("key", "create", "--app", "Copy", "--scope", "invoke,everything")
    assert r.code == 1 and "Unknown scope 'everything'" in r.err and "\n" not in r.err.strip()
    r = cli("key", "create", "--admin", "--scope", "invoke")
    assert r.code != 0 and "every scope" in r.err


def test_personal_tokens_are_printed_once(cli: Any, session: Session) -> None:
    users.create_user(session=session, name="mia", password="a long password 1", role="member")
    session.commit()
    assert "No personal access tokens yet" in cli("token", "list").out
    r = cli("token", "create", "--user", "mia", "--name", "laptop")
    assert r.code == 0, r.err
    secret = r.out.splitlines()[0]
    assert secret.startswith("sk-studio-pat-") and "not shown again" in r.out
    listed = cli("token", "list", "--user", "mia")
    assert "laptop" in listed.out and "mia" in listed.out and secret not in listed.out
    [row] = cli("token", "list", "--json").json()
    assert row["user_name"] == "mia" and "token" not in row
    assert api_keys.verify_key(secret=secret).role == "member"
    key_id = api_keys.create_key(session=session, admin=True).key.id
    session.commit()
    r = cli("token", "revoke", str(key_id))  # a key is not a token
    assert r.code == 1 and f"No personal access token {key_id}" in r.err
    assert cli("key", "revoke", str(row["id"])).code == 1  # nor a token a key
    r = cli("token", "revoke", str(row["id"]))
    assert r.code == 0 and "Revoked token" in r.out and secret not in r.out
    with pytest.raises(RevokedApiKeyError):
        api_keys.verify_key(secret=secret)
    r = cli("token", "create", "--user", "nobody")
    assert r.code == 1 and "No user 'nobody'" in r.err
    assert "--user" in cli("token", "create", "--help").out
