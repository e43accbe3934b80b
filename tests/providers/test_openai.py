"""OpenAI-compatible provider: what it sends and how it reads the answers."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from studio.core.errors import ConfigError, ProviderAuthError, ProviderRequestError
from studio.core.errors import ProviderUnavailableError as Unavailable
from studio.core.schemas import (
    AgentAction,
    AgentRequest,
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    MemoryStrategy,
    Message,
    ModelType,
    Tool,
)
from studio.providers.openai import OpenAIProvider

from .fakes import FakeAPI, chat_body, reply

KEY = "sk-test-0123456789secret"


def provider(api: FakeAPI, api_key: str | None = None, **options: Any) -> OpenAIProvider:
    return OpenAIProvider(
        name="oai",
        base_url="http://fake/v1",
        api_key=api_key,
        options={"retry_base_delay_s": 0, **options},
        transport=api.transport,
    )


def user(text: str) -> Message:
    return Message(role="user", content=text)


def echo_chat(request: httpx.Request) -> httpx.Response:
    """A chat server that answers each prompt with 'echo: <prompt>'."""
    prompt = json.loads(request.content)["messages"][-1]["content"]
    return reply(chat_body(f"echo: {prompt}"))


# -- chat ----------------------------------------------------------------------------


async def test_chat_sends_the_openai_request_shape() -> None:
    api = FakeAPI(reply(chat_body()))
    request = ChatCompletionRequest(
        messages=[Message(role="system", content="be brief"), user("hi")],
        temperature=0.0,
        max_tokens=50,
        stop_sequences=["\n\n", "END"],
        top_p=0.9,
    )
    await provider(api).chat("gpt-4o-mini", request)
    assert api.paths == ["/v1/chat/completions"]
    assert api.json() == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
        ],
        "temperature": 0.0,
        "max_tokens": 50,
        "stop": ["\n\n", "END"],
        "top_p": 0.9,
    }


async def test_chat_omits_unset_fields_and_sends_no_auth_without_a_key() -> None:
    api = FakeAPI(reply(chat_body()))
    await provider(api).chat("llama3", ChatCompletionRequest(messages=[user("hi")]))
    assert api.json() == {
        "model": "llama3",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.2,
    }
    assert "authorization" not in api.requests[0].headers


async def test_chat_sends_bearer_when_a_key_is_set() -> None:
    api = FakeAPI(reply(chat_body()))
    await provider(api, api_key=KEY).chat("m", ChatCompletionRequest(messages=[user("hi")]))
    assert api.requests[0].headers["authorization"] == f"Bearer {KEY}"


async def test_chat_maps_the_answer() -> None:
    usage = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
    api = FakeAPI(reply(chat_body("Paris.", finish_reason="length", usage=usage)))
    answer = await provider(api).chat("m", ChatCompletionRequest(messages=[user("capital?")]))
    assert answer.message == Message(role="assistant", content="Paris.")
    assert answer.finish_reason == "length"
    assert (answer.prompt_tokens, answer.response_tokens) == (12, 5)


async def test_tool_messages_are_sent_as_user_messages_naming_the_tool() -> None:
    api = FakeAPI(reply(chat_body()))
    messages = [user("weather?"), Message(role="tool", name="weather", content="sunny")]
    await provider(api).chat("m", ChatCompletionRequest(messages=messages))
    assert api.json()["messages"][1] == {
        "role": "user",
        "content": "Result from tool 'weather':\nsunny",
    }


async def test_max_tokens_param_option_renames_the_limit() -> None:
    api = FakeAPI(reply(chat_body()))
    conn = provider(api, max_tokens_param="max_completion_tokens")
    await conn.chat("o3-mini", ChatCompletionRequest(messages=[user("hi")], max_tokens=9))
    assert api.json()["max_completion_tokens"] == 9
    assert "max_tokens" not in api.json()


@pytest.mark.parametrize(
    "body",
    [
        {"object": "error"},
        {"choices": []},
        {"choices": [{"index": 0, "message": None}]},
        [1, 2, 3],
        "just a string",
    ],
)
async def test_json_of_the_wrong_shape_is_a_readable_error(body: Any) -> None:
    api = FakeAPI(reply(body))
    with pytest.raises(Unavailable, match="answered /chat/completions in an unexpected shape"):
        await provider(api).chat("m", ChatCompletionRequest(messages=[user("hi")]))
    assert api.calls == 1


# -- completion ----------------------------------------------------------------------


def completion_body(choices: list[tuple[int, str, str]]) -> dict[str, Any]:
    return {
        "object": "text_completion",
        "choices": [{"index": i, "text": t, "finish_reason": f} for i, t, f in choices],
        "usage": {"prompt_tokens": 8, "completion_tokens": 6, "total_tokens": 14},
    }


async def test_complete_sends_all_prompts_and_orders_answers_by_index() -> None:
    api = FakeAPI(reply(completion_body([(1, " two", "stop"), (0, " one", "length")])))
    request = CompletionRequest(prompts=["1 +", "2 +"], temperature=0, stop_sequences=["\n"])
    answer = await provider(api).complete("gpt-3.5-turbo-instruct", request)
    assert api.paths == ["/v1/completions"]
    assert api.json() == {
        "model": "gpt-3.5-turbo-instruct",
        "prompt": ["1 +", "2 +"],
        "temperature": 0,
        "stop": ["\n"],
        "max_tokens": 256,  # servers default to 16 tokens otherwise
    }
    assert answer.completions == [("1 +", [" one"]), ("2 +", [" two"])]
    assert answer.finish_reason == "length"  # one output was cut off
    assert (answer.prompt_tokens, answer.response_tokens) == (8, 6)


async def test_a_single_prompt_is_sent_as_a_string() -> None:
    api = FakeAPI(reply(completion_body([(0, " world", "stop")])))
    answer = await provider(api).complete("m", CompletionRequest(prompts=["hello"]))
    assert api.json()["prompt"] == "hello"  # Ollama accepts no list here
    assert answer.completions == [("hello", [" world"])]


async def test_complete_rejects_answers_that_skip_a_prompt() -> None:
    api = FakeAPI(reply(completion_body([(0, "a", "stop"), (0, "b", "stop")])))
    with pytest.raises(Unavailable, match="do not match 2 prompt"):
        await provider(api).complete("m", CompletionRequest(prompts=["x", "y"]))


async def test_complete_falls_back_to_chat_when_completions_is_missing() -> None:
    missing = reply({"error": {"message": "This is a chat model"}}, status=404)
    api = FakeAPI(missing, default=echo_chat)
    conn = provider(api)
    answer = await conn.complete("gpt-4o", CompletionRequest(prompts=["a", "b", "c"]))
    assert answer.completions == [("a", ["echo: a"]), ("b", ["echo: b"]), ("c", ["echo: c"])]
    assert api.paths == ["/v1/completions"] + ["/v1/chat/completions"] * 3
    assert (answer.prompt_tokens, answer.response_tokens) == (21, 9)  # summed over calls
    sent = sorted(json.dumps(api.json(i)["messages"]) for i in (1, 2, 3))
    assert sent == [json.dumps([{"role": "user", "content": p}]) for p in "abc"]

    # The 404 is remembered: the next batch goes straight to chat.
    await conn.complete("gpt-4o", CompletionRequest(prompts=["d"]))
    assert api.paths[-1] == "/v1/chat/completions"
    assert api.paths.count("/v1/completions") == 1


async def test_completion_mode_chat_never_calls_completions() -> None:
    api = FakeAPI(default=echo_chat)
    conn = provider(api, completion_mode="chat")
    answer = await conn.complete("m", CompletionRequest(prompts=["hi"], max_tokens=7))
    assert answer.completions == [("hi", ["echo: hi"])]
    assert api.paths == ["/v1/chat/completions"]
    assert api.json()["max_tokens"] == 7


async def test_completion_mode_completions_reports_the_404() -> None:
    api = FakeAPI(reply({"error": {"message": "Not Found"}}, status=404))
    conn = provider(api, completion_mode="completions")
    with pytest.raises(ProviderRequestError, match="Not Found"):
        await conn.complete("m", CompletionRequest(prompts=["hi"]))
    assert api.calls == 1


async def test_auth_errors_do_not_trigger_the_chat_fallback() -> None:
    api = FakeAPI(reply({"error": {"message": "bad key"}}, status=401))
    with pytest.raises(ProviderAuthError):
        await provider(api).complete("m", CompletionRequest(prompts=["hi"]))
    assert api.calls == 1


def test_unknown_completion_mode_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="completion_mode"):
        OpenAIProvider(name="oai", options={"completion_mode": "legacy"})


# -- embeddings ----------------------------------------------------------------------


async def test_embed_orders_vectors_by_index() -> None:
    body = {
        "data": [
            {"object": "embedding", "index": 1, "embedding": [0.0, 1.0]},
            {"object": "embedding", "index": 0, "embedding": [1.0, 0.0]},
        ],
        "usage": {"prompt_tokens": 4, "total_tokens": 4},
    }
    api = FakeAPI(reply(body))
    answer = await provider(api).embed("text-embedding-3-small", EmbeddingRequest(texts=["a", "b"]))
    assert api.paths == ["/v1/embeddings"]
    assert api.json() == {"model": "text-embedding-3-small", "input": ["a", "b"]}
    assert answer.embeddings == [("a", [1.0, 0.0]), ("b", [0.0, 1.0])]
    assert answer.tokens_used == 4


async def test_embed_with_too_few_vectors_is_a_readable_error() -> None:
    api = FakeAPI(reply({"data": [{"index": 0, "embedding": [1.0]}]}))
    with pytest.raises(Unavailable, match=r"1 embedding\(s\) .* for 2 text\(s\)"):
        await provider(api).embed("m", EmbeddingRequest(texts=["a", "b"]))


# -- agent ---------------------------------------------------------------------------

WEATHER = Tool(
    name="get_weather",
    description="Weather for a city",
    arguments={"type": "object", "properties": {"city": {"type": "string"}}},
)


def tool_call(arguments: str) -> dict[str, Any]:
    return {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": arguments},
    }


async def test_agent_sends_tools_and_instructions_and_reads_a_tool_call() -> None:
    api = FakeAPI(reply(chat_body(None, tool_calls=[tool_call('{"city": "Oslo"}')])))
    request = AgentRequest(
        messages=[user("weather in Oslo?")], tools=[WEATHER], instructions="Use tools."
    )
    answer = await provider(api).agent("gpt-4o", request)
    sent = api.json()
    assert sent["messages"][0] == {"role": "system", "content": "Use tools."}
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": WEATHER.arguments,
            },
        }
    ]
    assert answer.action is AgentAction.TOOL_REQUEST
    assert answer.context.tool_request is not None
    assert answer.context.tool_request.name == "get_weather"
    assert answer.context.tool_request.arguments == {"city": "Oslo"}
    assert answer.context.tool_request.id == "call_1"


async def test_agent_without_tool_calls_returns_content_and_sends_no_tools() -> None:
    api = FakeAPI(reply(chat_body("It is sunny.")))
    answer = await provider(api).agent("m", AgentRequest(messages=[user("hi")]))
    assert "tools" not in api.json()
    assert answer.action is AgentAction.CONTENT
    assert answer.context.content == "It is sunny."
    assert answer.context.tool_request is None


async def test_agent_last_k_keeps_system_messages_and_the_last_k_others() -> None:
    api = FakeAPI(reply(chat_body()))
    messages = [Message(role="system", content="sys")] + [user(f"m{i}") for i in range(5)]
    request = AgentRequest(
        messages=messages,
        instructions="inst",
        memory_strategy=MemoryStrategy(name="last_k", params={"k": 2}),
    )
    await provider(api).agent("m", request)
    assert [m["content"] for m in api.json()["messages"]] == ["inst", "sys", "m3", "m4"]


async def test_agent_with_unparseable_tool_arguments_says_so() -> None:
    api = FakeAPI(reply(chat_body(None, tool_calls=[tool_call('{"city": Oslo')])))
    with pytest.raises(Unavailable, match="tool 'get_weather' with arguments that are not"):
        await provider(api).agent("m", AgentRequest(messages=[user("hi")], tools=[WEATHER]))


# -- models, keys ----------------------------------------------------------------------


async def test_list_models_types_models_by_name() -> None:
    body = {"object": "list", "data": [{"id": "gpt-4o"}, {"id": "text-embedding-3-small"}]}
    api = FakeAPI(reply(body))
    models = await provider(api).list_models()
    assert api.requests[0].method == "GET"
    assert api.paths == ["/v1/models"]
    assert [(m.id, m.model_type) for m in models] == [
        ("gpt-4o", ModelType.CHAT_COMPLETION),
        ("text-embedding-3-small", ModelType.EMBEDDING),
    ]


def test_default_base_url_is_openai() -> None:
    conn = OpenAIProvider(name="oai")
    assert conn.base_url == "https://api.openai.com/v1"


async def test_the_key_never_shows_in_repr_or_errors() -> None:
    echoed = reply({"error": {"message": f"Incorrect API key provided: {KEY}"}}, status=401)
    api = FakeAPI(echoed)
    conn = provider(api, api_key=KEY)
    assert KEY not in repr(conn)
    with pytest.raises(ProviderAuthError) as caught:
        await conn.chat("m", ChatCompletionRequest(messages=[user("hi")]))
    assert "Incorrect API key provided" in str(caught.value)
    assert KEY not in str(caught.value)
    assert KEY not in repr(caught.value)
