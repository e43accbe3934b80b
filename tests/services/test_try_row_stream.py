"""The Playground's "Try this row" and the Models page's try-it stream the answer:
pieces reach the reader while the model is still writing, and usage is recorded once
the answer is done (issue 11, item 10)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from sqlmodel import Session, select

from studio.core.errors import ProviderUnavailableError
from studio.core.schemas import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    Message,
    ModelType,
)
from studio.core.templates import PromptTemplate
from studio.models import registry
from studio.models.connections import ConnectionCreate, add_connection, clear_provider_cache
from studio.providers import register
from studio.providers.base import ChunkStream, Provider, StreamChunk
from studio.services.run_results import start_try_row
from studio.services.runs import RunConfig
from studio.store import session_scope
from studio.store.tables import ModelCall


class Stepper(Provider):
    """Writes its answer one piece at a time and notes how far it got."""

    kind = "stepper"
    model_types = frozenset({ModelType.CHAT_COMPLETION})
    written: ClassVar[list[str]] = []
    fail_after_first: ClassVar[bool] = False

    async def chat(self, model: str, request: ChatCompletionRequest) -> ChatCompletionResponse:
        raise AssertionError("a try streams; it must not wait for the whole answer")

    async def stream_chat(self, model: str, request: ChatCompletionRequest) -> ChunkStream:
        for piece in ("Hel", "lo", "!"):
            type(self).written.append(piece)
            yield StreamChunk(text=piece)
            if type(self).fail_after_first:
                raise ProviderUnavailableError("lost the GPU", provider=self.name)
        yield StreamChunk(finish_reason="stop", prompt_tokens=6, response_tokens=3)


@pytest.fixture
def stepper(session: Session) -> Iterator[type[Stepper]]:
    register(Stepper)
    Stepper.written, Stepper.fail_after_first = [], False
    add_connection(
        session=session,
        data=ConnectionCreate(name="step", kind="stepper", base_url="http://step.invalid"),
    )
    session.commit()
    yield Stepper
    clear_provider_cache()


def _config() -> RunConfig:
    return RunConfig(
        model="step/writer", prompt=PromptTemplate.completion("Greet {{who}}"), parameters={}
    )


def _calls() -> list[Any]:
    with session_scope() as session:
        return list(session.exec(select(ModelCall)).all())


def test_try_row_pieces_arrive_while_the_model_is_still_writing(
    session: Session, stepper: type[Stepper]
) -> None:
    tried = start_try_row(session=session, config=_config(), row={"who": "Ann"})
    pieces = tried.texts()
    assert next(pieces) == "Hel"
    assert stepper.written == ["Hel"]  # the rest is not written yet
    assert _calls() == []  # usage is recorded when the answer is done, not before
    assert list(pieces) == ["lo", "!"]
    result = tried.result
    assert (result.output, result.error) == ("Hello!", None)
    assert (result.prompt_tokens, result.response_tokens) == (6, 3)
    assert result.rendered == "Greet Ann" and result.latency_ms is not None
    [call] = _calls()
    assert (call.source, call.prompt_tokens, call.response_tokens, call.error) == ("ui", 6, 3, None)


def test_an_error_mid_answer_is_the_try_result_and_is_recorded(
    session: Session, stepper: type[Stepper]
) -> None:
    stepper.fail_after_first = True
    tried = start_try_row(session=session, config=_config(), row={"who": "Ann"})
    assert list(tried.texts()) == ["Hel"]
    assert tried.result.error and "lost the GPU" in tried.result.error
    [call] = _calls()
    assert call.error and "lost the GPU" in call.error


def test_a_reader_that_stops_early_stops_the_model(stepper: type[Stepper]) -> None:
    stream = registry.ModelStream(
        ref="step/writer", payload={"messages": [{"role": "user", "content": "Hi"}]}
    )
    pieces = iter(stream)
    assert next(pieces).text == "Hel"
    pieces.close()  # e.g. the page was left mid-answer
    assert stepper.written == ["Hel"]
    [call] = _calls()
    assert call.error == "stopped before the answer was complete"


def test_models_that_cannot_stream_are_refused_with_a_sentence(mock_provider: Any) -> None:
    stream = registry.ModelStream(ref="mock/embed", payload={"texts": ["a"]})
    with pytest.raises(Exception, match="only chat and completion models can stream"):
        list(stream)


def test_a_provider_without_streaming_answers_in_one_piece(mock_provider: Any) -> None:
    stream = registry.ModelStream(
        ref="mock/echo", payload={"messages": [Message(role="user", content="hi").model_dump()]}
    )
    assert [c.text for c in stream if c.text] == ["echo: hi"]
    assert stream.response is not None and stream.response.model_dump()["message"]["content"]
