"""Anthropic provider: the Messages API request and answer mapping."""

from __future__ import annotations

from typing import Any

import pytest

from studio.core.errors import (
    ConfigError,
    ProviderAuthError,
    ProviderRequestError,
    ProviderUnavailableError,
)
from studio.core.schemas import (
    AgentAction,
    AgentRequest,
    ChatCompletionRequest,
    MemoryStrategy,
    Message,
    ModelType,
    Tool,
)
from studio.providers.anthropic import AnthropicProvider

from .fakes import FakeAPI, reply

KEY = "sk-ant-test-secret-42"


def provider(api: FakeAPI, **options: Any) -> AnthropicProvider:
    return AnthropicProvider(
        name="claude",
        base_url="http://fake",
        api_key=KEY,
        options={"retry_base_delay_s": 0, **options},
        transport=api.transport,
    )


def message_body(
    *blocks: dict[str, Any], stop_reason: str = "end_turn", usage: tuple[int, int] = (11, 4)
) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": list(blocks) or [{"type": "text", "text": "Hello!"}],
        "stop_reason": stop_reason,
        "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
    }


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def msg(role: str, content: str, name: str | None = None) -> Message:
    return Message(role=role, content=content, name=name)


async def test_chat_sends_the_messages_api_shape_and_headers() -> None:
    api = FakeAPI(reply(message_body()))
    request = ChatCompletionRequest(
        messages=[msg("system", "Be brief."), msg("user", "hi"), msg("system", "No emoji.")],
        temperature=0.5,
        stop_sequences=["END"],
        top_p=0.8,
    )
    await provider(api).chat("claude-3-5-haiku-latest", request)
    sent = api.requests[0]
    assert sent.url.path == "/v1/messages"
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers
    assert api.json() == {
        "model": "claude-3-5-haiku-latest",
        "system": "Be brief.\n\nNo emoji.",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 1024,
        "temperature": 0.5,
        "stop_sequences": ["END"],
        "top_p": 0.8,
    }


async def test_chat_max_tokens_comes_from_the_request_or_the_option() -> None:
    api = FakeAPI(reply(message_body()), reply(message_body()))
    conn = provider(api, default_max_tokens=77)
    await conn.chat("m", ChatCompletionRequest(messages=[msg("user", "a")]))
    await conn.chat("m", ChatCompletionRequest(messages=[msg("user", "a")], max_tokens=5))
    assert [api.json(i)["max_tokens"] for i in (0, 1)] == [77, 5]
    assert "system" not in api.json(0)


async def test_chat_merges_turns_so_roles_alternate() -> None:
    api = FakeAPI(reply(message_body()))
    messages = [
        msg("user", "weather?"),
        msg("assistant", "Checking."),
        msg("tool", "sunny", name="weather"),
        msg("user", "and tomorrow?"),
    ]
    await provider(api).chat("m", ChatCompletionRequest(messages=messages))
    assert api.json()["messages"] == [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": "Checking."},
        {"role": "user", "content": "Result from tool 'weather':\nsunny\n\nand tomorrow?"},
    ]


async def test_chat_maps_text_stop_reason_and_usage() -> None:
    api = FakeAPI(reply(message_body(text("Hel"), text("lo"), stop_reason="max_tokens")))
    answer = await provider(api).chat("m", ChatCompletionRequest(messages=[msg("user", "hi")]))
    assert answer.message == Message(role="assistant", content="Hello")
    assert answer.finish_reason == "length"
    assert (answer.prompt_tokens, answer.response_tokens) == (11, 4)


async def test_only_a_system_prompt_is_refused_before_any_call() -> None:
    api = FakeAPI()
    with pytest.raises(ProviderRequestError, match="at least one user or assistant message"):
        await provider(api).chat("m", ChatCompletionRequest(messages=[msg("system", "x")]))
    assert api.calls == 0


async def test_error_message_comes_from_the_error_object() -> None:
    body = {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "max_tokens: must be <= 8192"},
    }
    api = FakeAPI(reply(body, status=400))
    with pytest.raises(ProviderRequestError, match="max_tokens: must be <= 8192"):
        await provider(api).chat("m", ChatCompletionRequest(messages=[msg("user", "hi")]))
    assert api.calls == 1


async def test_overloaded_529_is_retried() -> None:
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    api = FakeAPI(reply(overloaded, status=529), reply(message_body(text("ok"))))
    answer = await provider(api).chat("m", ChatCompletionRequest(messages=[msg("user", "hi")]))
    assert answer.message.content == "ok"
    assert api.calls == 2


async def test_unexpected_shape_is_a_readable_error() -> None:
    api = FakeAPI(reply({"type": "message", "role": "assistant"}))
    with pytest.raises(ProviderUnavailableError, match=r"unexpected shape .*content"):
        await provider(api).chat("m", ChatCompletionRequest(messages=[msg("user", "hi")]))


# -- agent ---------------------------------------------------------------------------

SEARCH = Tool(
    name="search",
    description="Search the docs",
    arguments={"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
)


async def test_agent_sends_tools_and_reads_a_tool_use_block() -> None:
    tool_use = {"type": "tool_use", "id": "toolu_1", "name": "search", "input": {"q": "refunds"}}
    api = FakeAPI(reply(message_body(text("Let me look."), tool_use, stop_reason="tool_use")))
    request = AgentRequest(
        messages=[msg("system", "Docs bot."), msg("user", "refund policy?")],
        tools=[SEARCH],
        instructions="Always search first.",
    )
    answer = await provider(api).agent("m", request)
    sent = api.json()
    assert sent["system"] == "Always search first.\n\nDocs bot."
    assert sent["tools"] == [
        {"name": "search", "description": "Search the docs", "input_schema": SEARCH.arguments}
    ]
    assert answer.action is AgentAction.TOOL_REQUEST
    assert answer.context.tool_request is not None
    assert answer.context.tool_request.model_dump() == {
        "name": "search",
        "arguments": {"q": "refunds"},
        "id": "toolu_1",
    }
    assert answer.context.content == "Let me look."
    assert (answer.prompt_tokens, answer.response_tokens) == (11, 4)


async def test_agent_text_answer_is_content() -> None:
    api = FakeAPI(reply(message_body(text("30 days."))))
    answer = await provider(api).agent("m", AgentRequest(messages=[msg("user", "policy?")]))
    assert "tools" not in api.json()
    assert answer.action is AgentAction.CONTENT
    assert answer.context.content == "30 days."


async def test_agent_last_k_trims_old_turns() -> None:
    api = FakeAPI(reply(message_body()))
    history = [msg("user" if i % 2 == 0 else "assistant", f"m{i}") for i in range(6)]
    request = AgentRequest(
        messages=history, memory_strategy=MemoryStrategy(params={"k": 3}), instructions="x"
    )
    await provider(api).agent("m", request)
    assert [m["content"] for m in api.json()["messages"]] == ["m3", "m4", "m5"]
    assert api.json()["system"] == "x"


# -- models, keys ----------------------------------------------------------------------


async def test_list_models() -> None:
    body = {
        "data": [{"id": "claude-sonnet-4-5", "display_name": "Claude Sonnet 4.5"}],
        "has_more": False,
    }
    api = FakeAPI(reply(body))
    models = await provider(api).list_models()
    assert api.requests[0].method == "GET"
    assert api.paths == ["/v1/models"]
    assert [(m.id, m.model_type, m.description) for m in models] == [
        ("claude-sonnet-4-5", ModelType.CHAT_COMPLETION, "Claude Sonnet 4.5")
    ]


def test_a_key_is_required() -> None:
    with pytest.raises(ConfigError, match="needs an API key") as caught:
        AnthropicProvider(name="claude")
    assert "ANTHROPIC_API_KEY" in str(caught.value)


async def test_the_key_never_shows_in_repr_or_errors() -> None:
    body = {"error": {"type": "authentication_error", "message": f"invalid x-api-key {KEY}"}}
    api = FakeAPI(reply(body, status=401))
    conn = provider(api)
    assert KEY not in repr(conn)
    with pytest.raises(ProviderAuthError) as caught:
        await conn.chat("m", ChatCompletionRequest(messages=[msg("user", "hi")]))
    assert "invalid x-api-key" in str(caught.value)
    assert KEY not in str(caught.value)
