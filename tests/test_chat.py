"""Chat semantics: fallback to completion, and trimming at 80% of the context."""

from __future__ import annotations

import pytest

from studio.core.errors import RequestValidationError
from studio.core.schemas import Message
from studio.models.chat import trim_history


def _words(messages: list[Message]) -> int:
    return sum(len(m.content.split()) for m in messages)


def test_short_conversations_are_not_counted_or_trimmed() -> None:
    calls: list[int] = []
    msgs = [Message(role="user", content="hello there")]

    def count(m: list[Message]) -> int:
        calls.append(1)
        return _words(m)

    kept, dropped = trim_history(msgs, context_window=1000, reserve=10, count_exact=count)
    assert kept == msgs and dropped == 0
    assert calls == []  # under 80% of the window: no exact count needed


def test_long_history_drops_oldest_but_keeps_system_and_prompt() -> None:
    system = Message(role="system", content="You are terse.")
    history = [
        Message(role="user" if i % 2 == 0 else "assistant", content=f"turn {i} " + "w " * 40)
        for i in range(10)
    ]
    prompt = Message(role="user", content="final question")
    msgs = [system, *history, prompt]
    # Exact counter: one token per word. Window chosen so only a few turns fit.
    kept, dropped = trim_history(msgs, context_window=200, reserve=50, count_exact=_words)
    assert kept[0] == system
    assert kept[-1] == prompt
    assert dropped > 0
    assert _words(kept) <= 150
    # What is kept is the most recent history, in order.
    kept_turns = [m.content.split()[1] for m in kept[1:-1]]
    assert kept_turns == [str(i) for i in range(10 - len(kept_turns), 10)]


def test_prompt_too_long_for_the_window_is_a_clear_error() -> None:
    msgs = [Message(role="user", content="w " * 500)]
    with pytest.raises(RequestValidationError) as info:
        trim_history(msgs, context_window=100, reserve=20, count_exact=_words)
    assert "context window of 100 tokens" in str(info.value)
