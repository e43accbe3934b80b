"""Report cards: pass rates with intervals, evaluator errors kept apart, overall verdicts,
samples (pass@k, flaky rows), resumed scoring, and bounded model-backed scoring."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from studio.evaluators import EvalItem, ModelCaller, build
from studio.evaluators.report import Score, report_card, score_items


def _items(outputs: list[str], reference: str = "paris", contender: str = "A", samples: int = 1):
    return [
        (contender, row, sample, EvalItem(output=out, reference=reference))
        for row, out in enumerate(outputs)
        for sample in range(samples)
    ]


def test_report_card_pass_rates_errors_and_overall() -> None:
    evaluators = {
        "exact": build("exact_match"),
        "short": build("length", {"unit": "characters", "max": 5}),
        "tokens": build("tokens", {"max_tokens": 10}),  # no token counts: errors, not failures
    }
    items = _items(["Paris", "paris ", "Lyon", "PARIS, France"])
    scores = asyncio.run(score_items(evaluators, items))
    assert len(scores) == 12
    card = report_card(scores)
    exact = card.line("A", "exact")
    assert (exact.judged, exact.passed, exact.errors) == (4, 2, 0)
    assert exact.pass_rate is not None and exact.pass_rate.estimate == 0.5
    assert 0.1 < exact.pass_rate.low < 0.5 < exact.pass_rate.high < 0.9
    assert [row for row, _, _ in exact.failures] == [2, 3]
    assert "differs from 'paris'" in exact.failures[0][2]
    tokens = card.line("A", "tokens")
    assert (tokens.judged, tokens.errors) == (0, 4) and tokens.pass_rate is None
    overall = card.line("A")
    # Row 0 passes exact and short, but tokens could not judge it: not judged overall, not a
    # failure. Rows 1 ("paris " is 6 characters), 2 and 3 each fail an evaluator.
    assert (overall.judged, overall.passed, overall.errors) == (3, 0, 1)
    assert card.overall_pass_rate() == 0.0


def test_overall_passes_only_when_every_evaluator_passes() -> None:
    evaluators = {"exact": build("exact_match"), "short": build("length", {"max": 1})}
    card = report_card(asyncio.run(score_items(evaluators, _items(["Paris", "Lyon"]))))
    overall = card.line("A")
    assert (overall.judged, overall.passed) == (2, 1)
    assert overall.failures == [(1, 0, "The output differs from 'paris'.")]
    assert card.overall_pass_rate() == 0.5


def test_samples_give_pass_at_k_and_flaky_rows() -> None:
    scores = [
        Score("A", 0, 0, "e", build("exact_match").evaluate(EvalItem("paris", reference="paris"))),
        Score("A", 0, 1, "e", build("exact_match").evaluate(EvalItem("lyon", reference="paris"))),
        Score("A", 1, 0, "e", build("exact_match").evaluate(EvalItem("paris", reference="paris"))),
        Score("A", 1, 1, "e", build("exact_match").evaluate(EvalItem("paris", reference="paris"))),
    ]
    line = report_card(scores).line("A", "e")
    assert line.flaky == [0]
    assert line.pass_at_k[1] == pytest.approx(0.75)
    assert line.pass_at_k[2] == pytest.approx(1.0)
    assert line.pass_hat_k[2] == pytest.approx(0.5)


def test_classification_report_is_attached_to_its_line() -> None:
    evaluator = build("classification", {"labels": ["spam", "ham"]})
    items = [
        ("A", i, 0, EvalItem(output=o, reference=r))
        for i, (o, r) in enumerate([("spam", "spam"), ("ham", "spam"), ("ham", "ham")])
    ]
    scores = asyncio.run(score_items({"cls": evaluator}, items))
    card = report_card(
        scores, evaluators={"cls": evaluator}, items={(c, r, s): i for c, r, s, i in items}
    )
    assert card.line("A", "cls").extra["accuracy"] == pytest.approx(2 / 3)


def test_resumed_scoring_skips_what_is_stored() -> None:
    evaluators = {"exact": build("exact_match")}
    stored = {("exact", "A", 0, 0)}
    scores = asyncio.run(
        score_items(evaluators, _items(["Paris", "Lyon"]), skip=lambda *key: key in stored)
    )
    assert [(s.row, s.sample) for s in scores] == [(1, 0)]


class SlowJudge(ModelCaller):
    def __init__(self) -> None:
        self.in_flight = 0
        self.peak = 0
        self.calls = 0

    async def chat(self, model: str, messages: list[dict[str, str]], **params: Any) -> str:
        self.calls += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await asyncio.sleep(0.01)
        self.in_flight -= 1
        if "boom" in messages[1]["content"]:
            raise RuntimeError("provider down")
        return '{"verdict": "pass", "score": 1, "reason": "fine"}'


def test_model_backed_scoring_is_bounded_and_a_failed_call_is_an_evaluator_error() -> None:
    judge = SlowJudge()
    evaluators = {"judge": build("llm_judge", {"rubric": "Is it fine?"})}
    items = _items([f"answer {i}" for i in range(30)] + ["boom"])
    stored: list[Score] = []
    scores = asyncio.run(
        score_items(evaluators, items, models=judge, concurrency=4, on_score=stored.append)
    )
    assert judge.peak == 4 and judge.calls == 31
    assert len(stored) == 31 == len(scores)
    line = report_card(scores).line("A", "judge")
    assert (line.judged, line.passed, line.errors) == (30, 30, 1)
    assert "provider down" in line.error_rows[0][2]
