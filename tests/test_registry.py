"""The model registry: templates → models → deployments → execute → usage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from studio.core.errors import (
    ConflictError,
    ModelNotReadyError,
    NotFoundError,
    PermissionDeniedError,
    ProviderUnavailableError,
    RequestValidationError,
)
from studio.core.identity import Actor, acting_as
from studio.core.schemas import ChatCompletionResponse, Message, parse_document
from studio.models import registry
from studio.models.specs import ModelCreate, TemplateCreate
from studio.models.usage import set_price, usage_statistics

TEMPLATE: dict[str, Any] = {
    "name": "custom_reranking_model_template",
    "model_type": "RERANKING",
    "runtime": "sentence-transformers",
    "model_creation_parameters_schema": {
        "parameters": [
            {"name": "MODEL_PATH", "type": "str", "description": "model dir", "required": True},
            {"name": "BATCH_SIZE", "type": "int", "description": "batch", "required": False},
        ]
    },
}


def _external(name: str = "echo-chat", model_type: str = "CHAT_COMPLETION") -> ModelCreate:
    return ModelCreate.model_validate(
        {"name": name, "model_type": model_type, "connection": "mock", "provider_model": "echo"}
    )


def test_builtin_models_are_listed_ready_and_immutable(session: Session) -> None:
    models = {m.name: m for m in registry.list_models(session=session)}
    assert "builtin/smollm2-135m-instruct" in models
    assert models["builtin/all-minilm-l6-v2"].model_type == "EMBEDDING"
    resolved = registry.resolve_model(session=session, ref="builtin/all-minilm-l6-v2-rerank")
    assert resolved.deployment is not None and resolved.deployment.status == "READY"
    assert resolved.deployment.is_builtin
    with pytest.raises(ConflictError, match="built-in"):
        registry.delete_model(session=session, ref="builtin/all-minilm-l6-v2")


def test_templates_need_the_admin_role(session: Session) -> None:
    data = TemplateCreate.model_validate(TEMPLATE)
    member = Actor(kind="user", name="mia", role="member", user_id=7)
    with acting_as(member), pytest.raises(PermissionDeniedError) as refused:
        registry.create_template(session=session, data=data)
    assert str(refused.value).startswith("Only administrators can create model templates.")
    admin = Actor(kind="user", name="ada", role="admin", user_id=8)
    with acting_as(admin):
        made = registry.create_template(session=session, data=data)
    assert made.name == TEMPLATE["name"]


def test_template_create_and_model_parameters_validated(session: Session) -> None:
    tpl = registry.create_template(session=session, data=TemplateCreate.model_validate(TEMPLATE))
    assert tpl.model_creation_parameters_schema["parameters"][0]["name"] == "MODEL_PATH"

    def create(params: dict[str, Any]) -> None:
        data = ModelCreate(
            name="my_reranking_model",
            model_template_id=tpl.id,
            model_creation_parameters=params,
        )
        registry.create_model(session=session, data=data)

    with pytest.raises(RequestValidationError) as missing:
        create({})
    assert "model_creation_parameters.MODEL_PATH: required" in str(missing.value)
    with pytest.raises(RequestValidationError) as wrong_type:
        create({"MODEL_PATH": "/x", "BATCH_SIZE": "big"})
    assert "BATCH_SIZE: must be of type int (got str)" in str(wrong_type.value)
    with pytest.raises(RequestValidationError) as unknown:
        create({"MODEL_PATH": "/x", "MODEL_BUCKET": "b"})
    assert "MODEL_BUCKET: unknown parameter; this template takes: MODEL_PATH, BATCH_SIZE" in str(
        unknown.value
    )


def test_template_runtime_must_serve_its_model_type() -> None:
    bad = {**TEMPLATE, "runtime": "llama-cpp"}
    with pytest.raises(RequestValidationError, match="runtime llama-cpp serves"):
        TemplateCreate.model_validate(bad)
    with pytest.raises(RequestValidationError, match="runtime: must be one of"):
        parse_document(TemplateCreate, {**TEMPLATE, "runtime": "docker"}, "model template")


def test_deployment_fails_with_a_reason_when_the_model_file_is_missing(
    session: Session, tmp_path: Path
) -> None:
    missing = tmp_path / "nope.gguf"
    model = registry.create_model(
        session=session,
        data=ModelCreate(
            name="local-llama",
            model_template_id="llama-cpp-chat",
            model_creation_parameters={"model_path": str(missing)},
        ),
        local=True,  # the operator's own machine, as the CLI and the pages
    )
    dep = registry.resolve_model(session=session, ref=model.id).deployment
    assert dep is not None and dep.status == "FAILED"
    assert "nope.gguf" in (dep.status_reason or "")
    with pytest.raises(ModelNotReadyError, match="FAILED"):
        registry.execute(
            session=session,
            ref="local-llama",
            payload={"messages": [{"role": "user", "content": "hi"}]},
        )


def test_external_model_executes_and_records_usage_and_cost(
    session: Session, mock_provider: Any
) -> None:
    model = registry.create_model(session=session, data=_external(model_type="COMPLETION"))
    dep = registry.resolve_model(session=session, ref=model.name).deployment
    assert dep is not None and dep.status == "READY"
    set_price(session=session, model="echo", input_per_mtok=1_000_000, output_per_mtok=2_000_000)
    response = registry.execute(
        session=session, ref=model.id, payload={"prompts": ["one two three"]}
    )
    assert response.completions == [("one two three", ["echo: one two three"])]  # type: ignore[attr-defined]
    stats = usage_statistics(session=session, deployment_id=dep.id)
    assert stats.requests == 1 and stats.errors == 0
    assert (stats.prompt_tokens, stats.response_tokens) == (3, 2)
    assert stats.cost == pytest.approx(3 * 1.0 + 2 * 2.0)
    assert stats.by_day[0].requests == 1
    # Executing by deployment id reaches the same model.
    registry.execute(session=session, ref=dep.id, payload={"prompts": ["x"]})
    assert usage_statistics(session=session, model_name=model.name).requests == 2


def test_invalid_request_is_refused_before_calling_the_model(
    session: Session, mock_provider: Any
) -> None:
    registry.create_model(session=session, data=_external())
    with pytest.raises(RequestValidationError, match="temperature"):
        registry.execute(
            session=session,
            ref="echo-chat",
            payload={"messages": [{"role": "user", "content": "x"}], "temperature": 7},
        )
    assert mock_provider.calls == []


def test_provider_failures_are_recorded_as_errors(session: Session, mock_provider: Any) -> None:
    registry.create_model(session=session, data=_external())
    mock_provider.replies.append(
        ProviderUnavailableError("server error (HTTP 503)", provider="mock")
    )
    with pytest.raises(ProviderUnavailableError):
        registry.execute(
            session=session, ref="echo-chat", payload={"prompt": "hi", "chat_history": []}
        )
    stats = usage_statistics(session=session, model_name="echo-chat")
    assert stats.requests == 1 and stats.errors == 1


def test_chat_without_chat_support_falls_back_to_completion(
    session: Session, mock_provider: Any
) -> None:
    registry.create_model(session=session, data=_external())
    mock_provider.chat_supported = False
    response = registry.execute(
        session=session,
        ref="echo-chat",
        payload={
            "prompt": "Generate 5 more",
            "chat_history": [{"role": "user", "content": "Generate 5 names"}],
        },
    )
    assert isinstance(response, ChatCompletionResponse)
    method, _, request = mock_provider.calls[-1]
    assert method == "complete" and request.prompts == ["Generate 5 more"]
    assert response.message.content == "echo: Generate 5 more"


def test_long_history_is_trimmed_and_reported(session: Session, mock_provider: Any) -> None:
    registry.create_model(session=session, data=_external())
    mock_provider.window = 300
    history = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i} " + "x" * 200}
        for i in range(12)
    ]
    response = registry.execute(
        session=session,
        ref="echo-chat",
        payload={"prompt": "last one", "chat_history": history, "max_tokens": 50},
    )
    assert isinstance(response, ChatCompletionResponse)
    assert response.trimmed_messages > 0
    sent: list[Message] = mock_provider.calls[-1][2].messages
    assert sent[-1].content == "last one"
    assert len(sent) == 13 - response.trimmed_messages


def test_connection_model_can_be_called_by_name(session: Session, mock_provider: Any) -> None:
    response = registry.execute(session=session, ref="mock/echo", payload={"texts": ["abc"]})
    assert response.embeddings[0][0] == "abc"  # type: ignore[attr-defined]
    assert usage_statistics(session=session, model_name="mock/echo").requests == 1


def test_unknown_model_and_duplicate_names(session: Session, mock_provider: Any) -> None:
    with pytest.raises(NotFoundError, match="studio model list"):
        registry.execute(session=session, ref="no-such-model", payload={"texts": ["a"]})
    registry.create_model(session=session, data=_external())
    with pytest.raises(ConflictError, match="already exists"):
        registry.create_model(session=session, data=_external())


def test_model_groups_are_namespaces(session: Session, mock_provider: Any) -> None:
    data = _external("grouped")
    data.model_group = "support-bots"
    model = registry.create_model(session=session, data=data)
    groups = registry.list_model_groups(session=session)
    assert [g.name for g in groups] == ["support-bots"]
    assert model.model_group_id == groups[0].id


def test_delete_custom_model(session: Session, mock_provider: Any) -> None:
    registry.create_model(session=session, data=_external())
    registry.delete_model(session=session, ref="echo-chat")
    with pytest.raises(NotFoundError):
        registry.get_model(session=session, ref="echo-chat")


def test_renaming_a_model_keeps_its_price(session: Session, mock_provider: Any) -> None:
    from studio.models.usage import price_of

    registry.create_model(session=session, data=_external())
    set_price(session=session, model="echo-chat", input_per_mtok=1.0, output_per_mtok=2.0)
    session.commit()
    registry.rename_model(session=session, ref="echo-chat", new_name="support-chat")
    session.commit()
    prepared = registry.prepare_model(session=session, ref="support-chat")
    price = price_of(session=session, names=prepared.price_names)
    assert price.cost(1_000_000, 1_000_000) == 3.0  # was 0: the price stayed with the old name
