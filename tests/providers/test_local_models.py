"""The built-in models and the local runtimes, run for real on the packaged weights.

Tests marked ``builtin_models`` load SmolLM2-135M (llama.cpp) and all-MiniLM-L6-v2
(sentence-transformers); they keep ``max_tokens`` small so the file runs in well
under a minute on a laptop CPU.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from pathlib import Path

import pytest

from studio.core.errors import ConfigError, NotFoundError, ProviderRequestError
from studio.core.schemas import (
    AgentAction,
    AgentRequest,
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    MemoryStrategy,
    Message,
    RerankingRequest,
    Tool,
)
from studio.providers import provider_class
from studio.providers.builtin import (
    BUILTIN_MODELS,
    SMOLLM2_THREADS,
    BuiltinProvider,
    smollm2_gguf,
)
from studio.providers.local import clear_loaded_models, loaded_models
from studio.providers.local_embeddings import SentenceTransformersProvider
from studio.providers.local_llama import LlamaCppProvider, agent_messages

CHAT = "smollm2-135m-instruct"
COMPLETION = "smollm2-135m-completion"
AGENT = "smollm2-135m-agent"
EMBEDDING = "all-minilm-l6-v2"
RERANK = "all-minilm-l6-v2-rerank"

TOOLS = [
    Tool(
        name="get_weather",
        description="Get the current weather for a city.",
        arguments={
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    ),
    Tool(
        name="add",
        description="Add two numbers.",
        arguments={
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
        },
    ),
]


@pytest.fixture
def builtin() -> BuiltinProvider:
    return BuiltinProvider(name="builtin")


def user(text: str) -> Message:
    return Message(role="user", content=text)


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


# -- registration and errors (no weights needed) ----------------------------------------


def test_builtin_and_local_runtimes_are_registered_kinds() -> None:
    assert provider_class("builtin") is BuiltinProvider
    assert provider_class("llama-cpp") is LlamaCppProvider
    assert provider_class("sentence-transformers") is SentenceTransformersProvider


async def test_builtin_lists_its_five_offline_models(builtin: BuiltinProvider) -> None:
    models = await builtin.list_models()
    assert [m.id for m in models] == [CHAT, COMPLETION, AGENT, EMBEDDING, RERANK]
    assert all(m.offline for m in models)
    assert builtin.supports_chat(CHAT) and not builtin.supports_chat(COMPLETION)
    assert builtin.context_window(CHAT) == 4096 and builtin.context_window(EMBEDDING) == 256


async def test_unknown_builtin_model_lists_the_valid_ids(builtin: BuiltinProvider) -> None:
    with pytest.raises(NotFoundError) as info:
        await builtin.chat("gpt-7", ChatCompletionRequest(messages=[user("hi")]))
    assert "builtin/gpt-7" in str(info.value)
    for model in BUILTIN_MODELS:
        assert f"builtin/{model.id}" in str(info.value)


async def test_a_model_called_for_the_wrong_type_is_refused(builtin: BuiltinProvider) -> None:
    with pytest.raises(ProviderRequestError) as info:
        await builtin.embed(CHAT, EmbeddingRequest(texts=["hello"]))
    assert "CHAT_COMPLETION" in str(info.value) and f"builtin/{EMBEDDING}" in str(info.value)


def test_llama_provider_names_a_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.gguf"):
        LlamaCppProvider(name="mine", options={"model_path": str(tmp_path / "missing.gguf")})
    with pytest.raises(ConfigError, match="model_path"):
        LlamaCppProvider(name="mine")


def test_llama_provider_refuses_a_file_that_is_not_gguf(tmp_path: Path) -> None:
    fake = tmp_path / "weights.gguf"
    fake.write_bytes(b"PK\x03\x04 this is a zip file, not a model")
    with pytest.raises(ConfigError, match=r"weights\.gguf.*not a GGUF"):
        LlamaCppProvider(name="mine", options={"model_path": str(fake)})


def test_agent_memory_last_k_keeps_the_last_messages() -> None:
    turns = [user(f"message {i}") for i in range(6)]
    request = AgentRequest(
        messages=[Message(role="system", content="Be brief."), *turns],
        instructions="You book flights.",
        tools=TOOLS,
        memory_strategy=MemoryStrategy(params={"k": 2}),
    )
    system, *kept = agent_messages(request)
    assert [m.content for m in kept] == ["message 4", "message 5"]
    assert "You book flights." in system.content and "Be brief." in system.content
    assert "get_weather" in system.content and "add" in system.content


# -- the real models ----------------------------------------------------------------------


@pytest.mark.builtin_models
async def test_corrupt_gguf_fails_to_load_with_the_file_and_reason(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(smollm2_gguf().read_bytes()[:2_000_000])  # truncated download
    provider = LlamaCppProvider(name="mine", options={"model_path": str(broken)})
    with pytest.raises(ConfigError, match=r"broken\.gguf.*(corrupt|incomplete|bounds)"):
        await provider.complete("m", CompletionRequest(prompts=["Hi"], max_tokens=2))


@pytest.mark.builtin_models
async def test_chat_returns_text_and_token_counts(builtin: BuiltinProvider) -> None:
    request = ChatCompletionRequest(
        messages=[user("Name a colour of the sky.")], temperature=0, max_tokens=16
    )
    response = await builtin.chat(CHAT, request)
    assert response.message.role == "assistant"
    assert response.message.content.strip()
    assert response.prompt_tokens and response.prompt_tokens > 5
    assert response.response_tokens and 0 < response.response_tokens <= 16
    assert response.finish_reason in ("stop", "length")


@pytest.mark.builtin_models
async def test_count_tokens_is_exact(builtin: BuiltinProvider) -> None:
    messages = [
        Message(role="system", content="You answer in one word."),
        user("What is the capital of France?"),
        Message(role="assistant", content="Paris."),
        user("And of Italy? Ünïcödé ✓"),
    ]
    counted = builtin.count_tokens(CHAT, messages)
    response = await builtin.chat(
        CHAT, ChatCompletionRequest(messages=messages, temperature=0, max_tokens=1)
    )
    assert counted == response.prompt_tokens  # llama.cpp's own count of the formatted prompt
    shorter = builtin.count_tokens(CHAT, messages[:2])
    assert 0 < shorter < counted


@pytest.mark.builtin_models
async def test_greedy_completion_is_deterministic(builtin: BuiltinProvider) -> None:
    request = CompletionRequest(
        prompts=["The three primary colours are", "def fibonacci(n):"],
        temperature=0,
        max_tokens=12,
    )
    first = await builtin.complete(COMPLETION, request)
    second = await builtin.complete(COMPLETION, request)
    assert first.completions == second.completions
    assert [prompt for prompt, _ in first.completions] == request.prompts
    assert all(texts[0] for _, texts in first.completions)
    assert first.prompt_tokens and first.response_tokens


@pytest.mark.builtin_models
async def test_stop_sequences_end_the_completion(builtin: BuiltinProvider) -> None:
    prompt = "Count: 1, 2, 3, 4,"
    free = await builtin.complete(
        COMPLETION, CompletionRequest(prompts=[prompt], temperature=0, max_tokens=16)
    )
    text = free.completions[0][1][0]
    stop = text.split()[2]  # a word the unconstrained model writes
    stopped = await builtin.complete(
        COMPLETION,
        CompletionRequest(prompts=[prompt], temperature=0, max_tokens=16, stop_sequences=[stop]),
    )
    assert stopped.completions[0][1][0] == text[: text.index(stop)]
    assert stopped.finish_reason == "stop"


@pytest.mark.builtin_models
async def test_embeddings_are_384_dim_in_input_order_and_meaningful(
    builtin: BuiltinProvider,
) -> None:
    texts = [
        "A cat is sleeping on the sofa.",
        "A kitten naps on the couch.",
        "Quarterly revenue grew by eight percent.",
    ]
    response = await builtin.embed(EMBEDDING, EmbeddingRequest(texts=texts))
    assert [text for text, _ in response.embeddings] == texts
    vectors = [vector for _, vector in response.embeddings]
    assert all(len(v) == 384 for v in vectors)
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]) + 0.2
    assert response.tokens_used and response.tokens_used >= 3 * 8


@pytest.mark.builtin_models
async def test_rerank_scores_each_chunk_in_input_order(builtin: BuiltinProvider) -> None:
    query = "What's the name of the largest continent?"
    chunks = [
        "I like to have milk with cereals for breakfast.",
        "The largest continent is called Asia.",
        "Football is played with a round ball.",
    ]
    response = await builtin.rerank(RERANK, RerankingRequest(query=query, chunks=chunks))
    assert len(response.chunk_scores) == 3
    milk, asia, _ = response.chunk_scores
    assert asia > milk
    reversed_ = await builtin.rerank(RERANK, RerankingRequest(query=query, chunks=chunks[::-1]))
    assert reversed_.chunk_scores == pytest.approx(response.chunk_scores[::-1], abs=1e-5)
    assert response.tokens_used and response.tokens_used > 10


@pytest.mark.builtin_models
async def test_agent_answers_with_a_valid_action(builtin: BuiltinProvider) -> None:
    request = AgentRequest(
        messages=[user("What's the weather in Paris right now?")],
        tools=TOOLS,
        instructions="Use the tools when they help.",
        temperature=0,
        max_tokens=48,
    )
    response = await builtin.agent(AGENT, request)
    if response.action is AgentAction.TOOL_REQUEST:
        call = response.context.tool_request
        assert call is not None and call.name in {t.name for t in TOOLS}
        assert isinstance(call.arguments, dict)
        assert json.loads(json.dumps(call.arguments)) == call.arguments
        if call.name == "get_weather":
            assert isinstance(call.arguments["city"], str)
    else:
        assert response.action is AgentAction.CONTENT
        assert response.context.content
    assert response.prompt_tokens and response.response_tokens


@pytest.mark.builtin_models
async def test_agent_without_tools_answers_with_content(builtin: BuiltinProvider) -> None:
    request = AgentRequest(messages=[user("Say hello.")], temperature=0, max_tokens=24)
    response = await builtin.agent(AGENT, request)
    assert response.action is AgentAction.CONTENT
    assert response.context.content and response.context.tool_request is None


@pytest.mark.builtin_models
def test_weights_load_once_for_every_provider_and_thread() -> None:
    clear_loaded_models()
    gguf = smollm2_gguf()
    providers = [BuiltinProvider(name="builtin") for _ in range(3)]
    same_options = {"model_path": str(gguf), "n_threads": SMOLLM2_THREADS}
    direct = LlamaCppProvider(name="mine", options=same_options)
    request = CompletionRequest(prompts=["Once upon a time"], temperature=0, max_tokens=4)
    results: list[str] = []

    def use(provider: BuiltinProvider | LlamaCppProvider) -> None:
        model = COMPLETION if isinstance(provider, BuiltinProvider) else "label"
        response = asyncio.run(provider.complete(model, request))  # its own event loop
        results.append(response.completions[0][1][0])

    threads = [threading.Thread(target=use, args=(p,)) for p in [*providers, direct]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 4 and len(set(results)) == 1
    llama = [m for m in loaded_models() if m.key[0] == "llama-cpp"]
    assert len(llama) == 1 and llama[0].key[1] == str(gguf.resolve())
