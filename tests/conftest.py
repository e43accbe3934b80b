"""Shared fixtures: an isolated studio per test, and a MockProvider.

Every test gets its own ``STUDIO_HOME``. The database is a fresh SQLite file,
or, when the suite runs with ``DATABASE_URL`` set (the PostgreSQL pass), that
database emptied and re-seeded before each test.
"""

from __future__ import annotations

import io
import json
import os
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from sqlalchemy import create_engine, text
from sqlmodel import Session, SQLModel

import studio.store.tables  # noqa: F401
from studio.cli import main
from studio.core.identity import OPERATOR, reset_actor, set_actor
from studio.core.schemas import (
    AgentRequest,
    AgentResponse,
    ChatCompletionRequest,
    ChatCompletionResponse,
    CompletionRequest,
    CompletionResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ModelType,
    RerankingRequest,
    RerankingResponse,
)
from studio.core.settings import reset_settings
from studio.models.connections import clear_provider_cache
from studio.providers import register
from studio.providers.base import ModelInfo, Provider
from studio.store import get_engine, reset_engine, session_scope
from tests.providers.fakes import FaultyOpenAIServer

PG_URL = os.environ.get("DATABASE_URL")


def _empty_postgres(url: str) -> None:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        names = [t.name for t in SQLModel.metadata.sorted_tables]
        exists = conn.execute(text("SELECT to_regclass('public.app')")).scalar()
        if exists:
            conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(autouse=True)
def studio_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "studio-home"
    monkeypatch.setenv("STUDIO_HOME", str(home))
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "STUDIO_ADMIN", "STUDIO_SECRET_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("STUDIO_EMBEDDED_GATEWAY", "0")  # tests start their own gateways
    monkeypatch.setenv("STUDIO_RETRY_BASE_DELAY", "0.001")
    monkeypatch.setenv("STUDIO_RETRY_MAX_DELAY", "0.01")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    if PG_URL:
        monkeypatch.setenv("DATABASE_URL", PG_URL)
        _empty_postgres(PG_URL)
    else:
        monkeypatch.delenv("DATABASE_URL", raising=False)
    # Tests act as the local operator (as the CLI does) and the UI runs without sign-in
    # (STUDIO_AUTH=none, loopback); the accounts tests set a person or STUDIO_AUTH=local.
    monkeypatch.setenv("STUDIO_AUTH", "none")
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    actor_token = set_actor(OPERATOR)
    reset_settings()
    reset_engine()
    clear_provider_cache()
    st.cache_data.clear()  # pages cache rows by id; ids repeat in each test's fresh database
    yield home
    reset_actor(actor_token)
    reset_engine()
    reset_settings()
    clear_provider_cache()


@pytest.fixture
def session() -> Iterator[Session]:
    get_engine()
    with session_scope() as s:
        yield s


@pytest.fixture
def admin() -> None:
    """No-op kept for the tests that ask for it: tests act as the local operator (an
    administrator) already, and STUDIO_ADMIN is gone (the admin role replaced it)."""


class MockProvider(Provider):
    """A real provider class whose answers come from a queue of canned replies.

    Queue items are response objects or exceptions (raised). When the queue is
    empty, it answers deterministically from the request (echo).
    """

    kind = "mock"
    description = "Test double with canned replies"
    model_types = frozenset(ModelType)
    replies: deque[Any] = deque()
    calls: list[tuple[str, str, Any]] = []
    chat_supported = True
    window: int | None = 4096

    def _next(self, method: str, model: str, request: Any, default: Any) -> Any:
        type(self).calls.append((method, model, request))
        if type(self).replies:
            item = type(self).replies.popleft()
            if isinstance(item, BaseException):
                raise item
            return item
        return default

    async def list_models(self) -> list[ModelInfo]:
        return [ModelInfo(id="echo", model_type=ModelType.CHAT_COMPLETION)]

    def supports_chat(self, model: str) -> bool:
        return type(self).chat_supported

    def context_window(self, model: str) -> int | None:
        return type(self).window

    async def embed(self, model: str, request: EmbeddingRequest) -> EmbeddingResponse:
        default = EmbeddingResponse(
            embeddings=[(t, [float(len(t)), 1.0]) for t in request.texts],
            tokens_used=sum(len(t.split()) for t in request.texts),
        )
        return self._next("embed", model, request, default)  # type: ignore[no-any-return]

    async def rerank(self, model: str, request: RerankingRequest) -> RerankingResponse:
        q = set(request.query.lower().split())
        scores = [len(q & set(c.lower().split())) / (len(q) or 1) for c in request.chunks]
        default = RerankingResponse(chunk_scores=scores, tokens_used=3)
        return self._next("rerank", model, request, default)  # type: ignore[no-any-return]

    async def complete(self, model: str, request: CompletionRequest) -> CompletionResponse:
        default = CompletionResponse(
            completions=[(p, [f"echo: {p}"]) for p in request.prompts],
            finish_reason="stop",
            prompt_tokens=sum(len(p.split()) for p in request.prompts),
            response_tokens=2 * len(request.prompts),
        )
        return self._next("complete", model, request, default)  # type: ignore[no-any-return]

    async def chat(self, model: str, request: ChatCompletionRequest) -> ChatCompletionResponse:
        from studio.core.schemas import Message

        last = request.messages[-1].content
        default = ChatCompletionResponse(
            message=Message(role="assistant", content=f"echo: {last}"),
            finish_reason="stop",
            prompt_tokens=sum(len(m.content.split()) for m in request.messages),
            response_tokens=2,
        )
        return self._next("chat", model, request, default)  # type: ignore[no-any-return]

    async def agent(self, model: str, request: AgentRequest) -> AgentResponse:
        from studio.core.schemas import ActionContext, AgentAction

        default = AgentResponse(action=AgentAction.CONTENT, context=ActionContext(content="done"))
        return self._next("agent", model, request, default)  # type: ignore[no-any-return]


@pytest.fixture
def mock_provider(session: Session) -> Iterator[type[MockProvider]]:
    """Registers the ``mock`` provider kind and a connection named ``mock``."""
    from studio.models.connections import ConnectionCreate, add_connection

    register(MockProvider)
    MockProvider.replies = deque()
    MockProvider.calls = []
    MockProvider.chat_supported = True
    MockProvider.window = 4096
    add_connection(
        session=session,
        data=ConnectionCreate(name="mock", kind="mock", base_url="http://mock.invalid"),
    )
    session.commit()
    yield MockProvider
    MockProvider.replies = deque()
    MockProvider.calls = []


class Result:
    """Exit code and output of one `studio` command."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    def run(*args: str, stdin: str | None = None) -> Result:
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def faulty_server() -> Iterator[Callable[..., FaultyOpenAIServer]]:
    """Start :class:`FaultyOpenAIServer` instances (same arguments); stopped after the test.

    ``faulty_server(fault_rate=1/3, latency_s=0.01)`` returns a running server
    whose ``url`` is the base URL for an ``openai`` connection.
    """
    started: list[FaultyOpenAIServer] = []

    def start(**kwargs: Any) -> FaultyOpenAIServer:
        server = FaultyOpenAIServer(**kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
