"""Context relevance and faithfulness: LLM-judge rubrics that see the retrieved chunks,
judged through the model layer by the test MockProvider."""

from __future__ import annotations

import asyncio
from typing import Any

from studio.core.schemas import ChatCompletionResponse, Message
from studio.evaluators import EvalItem, Verdict, build
from studio.evaluators.base import RetrievedChunk
from studio.evaluators.rag import NO_RETRIEVAL
from studio.services.evaluation_models import LayerModels

CHUNKS = (
    RetrievedChunk(11, "billing.md", "Refunds are paid back within 5 working days.", 0.91),
    RetrievedChunk(12, "faq.md", "Our office is in Lyon.", 0.40),
)
ITEM = EvalItem(
    output="Refunds take 5 working days.",
    row={"question": "How long do refunds take?"},
    prompt="Answer from the context: ...",
    query="how long refunds take",
    retrieved=CHUNKS,
)


def reply(text: str) -> ChatCompletionResponse:
    return ChatCompletionResponse(
        message=Message(role="assistant", content=text),
        finish_reason="stop",
        prompt_tokens=50,
        response_tokens=10,
    )


def run(evaluator_id: str, it: EvalItem, **options: Any) -> Verdict:
    evaluator = build(evaluator_id, {"model": "mock/echo", **options})
    return asyncio.run(evaluator.aevaluate(it, LayerModels()))


def judged_text(mock: Any) -> str:
    chats = [c for c in mock.calls if c[0] == "chat"]
    assert chats, "the judge was not called"
    return "\n".join(m.content for m in chats[-1][2].messages)


def test_context_relevance_shows_the_question_and_the_ranked_chunks(mock_provider: Any) -> None:
    mock_provider.replies.append(
        reply('{"verdict": "pass", "score": 0.5, "reason": "One of two passages answers it."}')
    )
    verdict = run("context_relevance", ITEM)
    assert verdict.passed and verdict.score == 0.5
    assert verdict.reason == "One of two passages answers it."
    text = judged_text(mock_provider)
    assert "Question:\nhow long refunds take" in text  # the retrieval step's query
    assert "[1] billing.md\nRefunds are paid back" in text and "[2] faq.md" in text
    assert "Refunds take 5 working days." not in text  # the output is not what is graded


def test_context_relevance_can_ask_the_question_from_a_column(mock_provider: Any) -> None:
    mock_provider.replies.append(reply('{"verdict": "fail", "score": 0.1, "reason": "Off topic."}'))
    verdict = run("context_relevance", ITEM, question="{{question}}")
    assert not verdict.passed and verdict.error is None
    assert "Question:\nHow long do refunds take?" in judged_text(mock_provider)


def test_faithfulness_shows_the_context_and_the_output(mock_provider: Any) -> None:
    mock_provider.replies.append(reply("FAIL score: 2/10 the office city is not asked"))
    verdict = run("faithfulness", ITEM)
    assert not verdict.passed and verdict.score == 0.2
    text = judged_text(mock_provider)
    assert "Every claim in the output is supported by the retrieved context" in text
    assert "[1] billing.md" in text and "Refunds take 5 working days." in text


def test_an_unreadable_judge_is_an_evaluator_error_after_its_retries(mock_provider: Any) -> None:
    mock_provider.replies.extend([reply("hmm"), reply("well"), reply("...")])
    verdict = run("faithfulness", ITEM)
    assert verdict.error is not None and "no verdict after 3 tries" in verdict.error
    assert not verdict.passed


def test_without_retrieval_the_judges_make_no_call_and_say_why(mock_provider: Any) -> None:
    plain = EvalItem(output="Refunds take 5 days.", prompt="How long?")
    for evaluator_id in ("context_relevance", "faithfulness"):
        verdict = run(evaluator_id, plain)
        assert verdict.error == NO_RETRIEVAL
    assert not [c for c in mock_provider.calls if c[0] == "chat"]


def test_no_chunks_found_fails_context_relevance_without_a_call(mock_provider: Any) -> None:
    empty = EvalItem(output="I do not know.", query="refunds", retrieved=())
    verdict = run("context_relevance", empty)
    assert not verdict.passed and verdict.error is None and "no chunks" in verdict.reason
    assert not [c for c in mock_provider.calls if c[0] == "chat"]
