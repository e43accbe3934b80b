"""The LLM judge and semantic similarity, with a fake model caller."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from studio.evaluators import EvalItem, ModelCaller, build
from studio.evaluators.model_backed import read_judge


class FakeModels(ModelCaller):
    def __init__(self, replies: list[str] | None = None, vectors: list[list[float]] | None = None):
        self.replies = list(replies or [])
        self.vectors = vectors or []
        self.chats: list[tuple[str, list[dict[str, str]], dict[str, Any]]] = []

    async def chat(self, model: str, messages: list[dict[str, str]], **params: Any) -> str:
        self.chats.append((model, messages, params))
        return self.replies.pop(0)

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        return self.vectors


def judge(replies: list[str], **options: Any) -> tuple[Any, FakeModels]:
    models = FakeModels(replies)
    evaluator = build("llm_judge", {"rubric": "Mentions {{event}} politely.", **options})
    item = EvalItem(
        output="Join us!",
        row={"event": "Wine tasting"},
        reference="Join the Wine tasting",
        prompt="Invite retirees to the Wine tasting",
    )
    return asyncio.run(evaluator.aevaluate(item, models)), models


def test_the_judge_sees_rubric_with_columns_input_reference_and_output() -> None:
    verdict, models = judge(['{"verdict": "pass", "score": 0.9, "reason": "Polite and on topic."}'])
    assert verdict.passed and verdict.score == 0.9 and verdict.reason == "Polite and on topic."
    model, messages, params = models.chats[0]
    assert model == "builtin/smollm2-135m-instruct"
    text = messages[1]["content"]
    for part in (
        "Mentions Wine tasting politely.",
        "Invite retirees",
        "Join the Wine tasting",
        "Join us!",
    ):
        assert part in text
    assert params["temperature"] == 0.0


@pytest.mark.parametrize(
    ("reply", "passed", "score"),
    [
        ('{"verdict": "fail", "score": 0.2, "reason": "Rude."}', False, 0.2),
        ('Here you go: {"verdict": "PASS", "reason": "ok"} hope it helps', True, 1.0),
        ("PASS - the email is polite", True, 1.0),
        ("Bad. It never names the event.", False, 0.0),
        ("Score: 8/10", True, 0.8),
        ("score: 3/10", False, 0.3),
    ],
)
def test_lenient_reading_of_small_models(reply: str, passed: bool, score: float) -> None:
    verdict = read_judge(reply, threshold=0.5)
    assert verdict is not None
    assert verdict.passed is passed
    assert verdict.score == pytest.approx(score)


def test_unreadable_replies_are_retried_then_an_error_never_a_pass() -> None:
    verdict, models = judge(["I like turtles", "hmm", '{"verdict": "pass"}'])
    assert verdict.passed and len(models.chats) == 3
    assert models.chats[1][2]["temperature"] > 0  # a retry is not the same cached call

    verdict, models = judge(["I like turtles", "hmm", "???"])
    assert not verdict.passed
    assert verdict.error and "no verdict after 3 tries" in verdict.error
    assert "???" in verdict.error


def test_out_of_range_scores_are_not_trusted() -> None:
    assert read_judge('{"score": 7}', threshold=0.5) is None
    assert read_judge("nothing useful here", threshold=0.5) is None


def test_semantic_similarity_is_the_cosine_of_the_embeddings() -> None:
    evaluator = build("semantic_similarity", {"threshold": 0.7})
    item = EvalItem(output="a", reference="b")
    close = asyncio.run(evaluator.aevaluate(item, FakeModels(vectors=[[1.0, 0.0], [0.8, 0.6]])))
    assert close.score == pytest.approx(0.8) and close.passed
    far = asyncio.run(evaluator.aevaluate(item, FakeModels(vectors=[[1.0, 0.0], [0.0, 1.0]])))
    assert far.score == pytest.approx(0.0) and not far.passed
    missing = asyncio.run(evaluator.aevaluate(EvalItem(output="a"), FakeModels()))
    assert missing.error
