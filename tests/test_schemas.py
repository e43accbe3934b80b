"""Wire schemas: field names, bounds, and errors that name the field and rule."""

from __future__ import annotations

import pytest

from studio.core.errors import RequestValidationError
from studio.core.schemas import (
    AgentRequest,
    ChatPromptRequest,
    CompletionRequest,
    ModelType,
    model_schemas,
    validate_request,
)


def _problems(model_type: str, payload: object) -> dict[str, str]:
    with pytest.raises(RequestValidationError) as info:
        validate_request(model_type, payload)
    return {p.field: p.rule for p in info.value.problems}


def test_valid_requests_of_every_type_parse() -> None:
    assert validate_request("EMBEDDING", {"texts": ["a", "b"]}).texts == ["a", "b"]  # type: ignore[attr-defined]
    rr = validate_request("RERANKING", {"query": "q", "chunks": ["x"]})
    assert rr.chunks == ["x"]  # type: ignore[attr-defined]
    comp = validate_request("COMPLETION", {"prompts": ["p"], "temperature": 0, "max_tokens": 5})
    assert isinstance(comp, CompletionRequest) and comp.temperature == 0
    chat = validate_request("CHAT_COMPLETION", {"messages": [{"role": "user", "content": "hi"}]})
    assert chat.messages[0].role == "user"  # type: ignore[attr-defined]
    agent = validate_request(
        "AGENT",
        {
            "messages": [{"role": "user", "content": "weather in Paris?"}],
            "tools": [
                {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "arguments": {"type": "object", "properties": {"city": {"type": "string"}}},
                }
            ],
            "instructions": "Use tools.",
            "memory_strategy": {"name": "last_k", "params": {"k": 3}},
        },
    )
    assert isinstance(agent, AgentRequest) and agent.tools[0].name == "get_weather"


def test_chat_accepts_the_prompt_and_history_form() -> None:
    req = validate_request(
        "CHAT_COMPLETION",
        {
            "prompt": "Generate 5 more",
            "chat_history": [
                {"role": "system", "content": "You are a name generator."},
                {"role": "user", "content": "Generate 5 names"},
                {"role": "assistant", "content": "1. Olivia"},
            ],
        },
    )
    assert isinstance(req, ChatPromptRequest)
    assert [m.role for m in req.chat_history] == ["system", "user", "assistant"]


def test_temperature_outside_0_1_names_field_and_rule() -> None:
    problems = _problems("COMPLETION", {"prompts": ["p"], "temperature": 1.5})
    assert problems["temperature"] == "must be <= 1.0 (got 1.5)"
    problems = _problems("COMPLETION", {"prompts": ["p"], "temperature": -0.1})
    assert problems["temperature"].startswith("must be >= 0")


def test_more_than_four_stop_sequences_is_refused() -> None:
    problems = _problems(
        "CHAT_COMPLETION",
        {"messages": [{"role": "user", "content": "x"}], "stop_sequences": list("abcde")},
    )
    assert problems["stop_sequences"] == "at most 4 items allowed (got 5)"


def test_unknown_fields_are_rejected_with_the_allowed_ones() -> None:
    problems = _problems("EMBEDDING", {"texts": ["a"], "text": "oops"})
    assert "unknown field" in problems["text"]
    assert "texts" in problems["text"]


def test_missing_fields_and_nested_paths() -> None:
    assert _problems("RERANKING", {"query": "q"})["chunks"] == "required field is missing"
    problems = _problems("CHAT_COMPLETION", {"messages": [{"role": "robot", "content": "x"}]})
    assert "messages.0.role" in problems
    assert "system" in problems["messages.0.role"]


def test_empty_lists_and_non_objects_are_refused() -> None:
    assert "at least 1" in _problems("EMBEDDING", {"texts": []})["texts"]
    assert _problems("EMBEDDING", ["a"])["(body)"] == "must be a JSON object"


def test_agent_tool_arguments_must_be_an_object_schema() -> None:
    problems = _problems(
        "AGENT",
        {
            "messages": [{"role": "user", "content": "x"}],
            "tools": [{"name": "t", "description": "d", "arguments": {"type": "string"}}],
        },
    )
    assert "object" in problems["tools.0.arguments"]


def test_error_message_reads_as_one_sentence() -> None:
    with pytest.raises(RequestValidationError) as info:
        validate_request("COMPLETION", {"prompts": ["p"], "temperature": 3})
    assert str(info.value) == "Invalid COMPLETION request: temperature: must be <= 1.0 (got 3)"


def test_model_schemas_cover_all_five_types() -> None:
    schemas = model_schemas()
    assert set(ModelType) <= {ModelType(k) for k in schemas}
    assert schemas["COMPLETION"]["request"]["properties"]["temperature"]["maximum"] == 1.0
    assert schemas["COMPLETION"]["request"]["additionalProperties"] is False
