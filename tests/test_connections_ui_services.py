"""Engine services behind the Models page: edit and check connections, rename and group
models, and the zoo list."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from sqlmodel import Session, select

from studio.core.errors import ConfigError, ConflictError, NotFoundError, RequestValidationError
from studio.models import registry
from studio.models.connections import (
    ConnectionCreate,
    ConnectionUpdate,
    add_connection,
    check_connection,
    get_provider,
    list_connection_models,
    update_connection,
)
from studio.models.specs import ModelCreate
from studio.models.usage import set_price, usage_statistics
from studio.models.zoo import used_model_names, zoo_entries
from studio.store.tables import ProviderConnection
from tests.providers.fakes import FakeServer, Step

MODELS = {"object": "list", "data": [{"id": "m-chat"}, {"id": "m-embed"}]}


@pytest.fixture
def server() -> Iterator[FakeServer]:
    srv = FakeServer()
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _add(session: Session, url: str, key: str | None = "sk-original-key-0000") -> None:
    add_connection(
        session=session,
        data=ConnectionCreate(
            name="local", kind="openai", base_url=url, api_key=SecretStr(key) if key else None
        ),
    )


def test_update_connection_changes_url_and_key_encrypted(
    session: Session, server: FakeServer
) -> None:
    _add(session, "http://127.0.0.1:9/v1")
    public = update_connection(
        session=session,
        name="local",
        data=ConnectionUpdate(
            base_url=f"{server.url}/v1", api_key=SecretStr("sk-new-key-1234WXYZ")
        ),
    )
    assert public.base_url == f"{server.url}/v1" and public.key_hint.endswith("WXYZ")
    row = session.exec(select(ProviderConnection)).one()
    assert "sk-new-key" not in (row.api_key_encrypted or "")
    server.then(Step(body=MODELS))
    assert [m.id for m in list_connection_models(session=session, name="local")] == [
        "m-chat",
        "m-embed",
    ]
    assert get_provider(session=session, name="local").auth_headers() == {
        "Authorization": "Bearer sk-new-key-1234WXYZ"
    }


def test_update_connection_keeps_the_key_when_none_is_given(session: Session) -> None:
    _add(session, "http://127.0.0.1:9/v1")
    public = update_connection(
        session=session, name="local", data=ConnectionUpdate(base_url="http://example.test/v1")
    )
    assert public.has_key and public.key_hint.endswith("0000")


def test_update_connection_refuses_bad_input(session: Session) -> None:
    _add(session, "http://127.0.0.1:9/v1")
    with pytest.raises(ConfigError, match="must start with http"):
        update_connection(session=session, name="local", data=ConnectionUpdate(base_url="ftp://x"))
    with pytest.raises(ConflictError, match="environment or is built in"):
        update_connection(session=session, name="builtin", data=ConnectionUpdate())
    with pytest.raises(NotFoundError):
        update_connection(session=session, name="nope", data=ConnectionUpdate())
    add_connection(
        session=session,
        data=ConnectionCreate(name="claude", kind="anthropic", api_key=SecretStr("sk-ant-xxxx")),
    )
    with pytest.raises(ConfigError, match="needs an API key"):
        update_connection(session=session, name="claude", data=ConnectionUpdate(clear_key=True))


def test_check_connection_reports_latency_or_the_providers_words(
    session: Session, server: FakeServer
) -> None:
    _add(session, f"{server.url}/v1")
    server.then(Step(body=MODELS))
    ok = check_connection(session=session, name="local")
    assert ok.ok and ok.models == 2 and ok.latency_ms > 0
    assert "answered in" in ok.message and "offers 2 models" in ok.message
    assert server.received[-1][0] == "/v1/models"

    server.then(Step(status=401, body={"error": {"message": "Incorrect API key provided"}}))
    bad = check_connection(session=session, name="local")
    assert not bad.ok and "Incorrect API key provided" in bad.message
    # One call only: a check never retries.
    server.then(Step(status=503, body={"error": {"message": "overloaded"}}), Step(body=MODELS))
    assert not check_connection(session=session, name="local").ok
    assert len(server.steps) == 1


def test_check_connection_of_the_builtin_models(session: Session) -> None:
    result = check_connection(session=session, name="builtin")
    assert result.ok and "runs on this machine" in result.message and result.models == 5


def test_rename_model_renames_its_deployment_and_keeps_usage(
    session: Session, mock_provider: Any
) -> None:
    registry.create_model(
        session=session,
        data=ModelCreate(
            name="old", model_type="CHAT_COMPLETION", connection="mock", provider_model="echo"
        ),
    )
    registry.execute(session=session, ref="old", payload={"prompt": "hi"})
    dep_id = registry.resolve_model(session=session, ref="old").deployment.id  # type: ignore[union-attr]
    registry.rename_model(session=session, ref="old", new_name="new")
    resolved = registry.resolve_model(session=session, ref="new")
    assert resolved.deployment is not None and resolved.deployment.name == "new"
    assert usage_statistics(session=session, deployment_id=dep_id).requests == 1
    with pytest.raises(NotFoundError):
        registry.resolve_model(session=session, ref="old")
    with pytest.raises(ConflictError, match="built-in"):
        registry.rename_model(session=session, ref="builtin/all-minilm-l6-v2", new_name="x")
    with pytest.raises(RequestValidationError, match="reserved for built-in"):
        registry.rename_model(session=session, ref="new", new_name="builtin/all-minilm-l6-v2")
    registry.create_model(
        session=session,
        data=ModelCreate(
            name="other", model_type="CHAT_COMPLETION", connection="mock", provider_model="echo"
        ),
    )
    with pytest.raises(ConflictError, match="already exists"):
        registry.rename_model(session=session, ref="new", new_name="other")
    with pytest.raises(RequestValidationError, match="name"):
        registry.rename_model(session=session, ref="new", new_name="has space")


def test_set_model_group_creates_and_clears_groups(session: Session, mock_provider: Any) -> None:
    registry.create_model(
        session=session,
        data=ModelCreate(
            name="m", model_type="EMBEDDING", connection="mock", provider_model="echo"
        ),
    )
    model = registry.set_model_group(session=session, ref="m", group="team-a")
    groups = {g.id: g.name for g in registry.list_model_groups(session=session)}
    assert groups[model.model_group_id or ""] == "team-a"
    assert registry.set_model_group(session=session, ref="m", group="").model_group_id is None


def test_zoo_entries_join_prices_groups_offline_and_connection_models(
    session: Session, mock_provider: Any
) -> None:
    from studio.core.schemas import ModelType
    from studio.providers import ModelInfo

    registry.create_model(
        session=session,
        data=ModelCreate(
            name="ext",
            model_type="CHAT_COMPLETION",
            connection="mock",
            provider_model="gpt-4o-mini",
            model_group="g1",
        ),
    )
    set_price(session=session, model="echo", input_per_mtok=1, output_per_mtok=2)
    offered = {
        "mock": [ModelInfo(id="echo", model_type=ModelType.CHAT_COMPLETION)],
        "builtin": [ModelInfo(id="ignored", model_type=ModelType.EMBEDDING)],
    }
    entries = {e.name: e for e in zoo_entries(session=session, connection_models=offered)}
    builtin = entries["builtin/smollm2-135m-instruct"]
    assert builtin.builtin and builtin.offline and builtin.input_per_mtok == 0
    ext = entries["ext"]
    assert (ext.source, ext.provider, ext.group, ext.offline) == ("external", "mock", "g1", False)
    assert ext.input_per_mtok == 0.15  # the provider model's default price
    conn = entries["mock/echo"]
    assert (conn.source, conn.status, conn.input_per_mtok) == ("connection", "READY", 1)
    assert "builtin/ignored" not in entries
    registry.execute(session=session, ref="mock/echo", payload={"prompt": "x"})
    assert used_model_names(session=session) == ["mock/echo"]
