"""Retrieval hit rate, recall@k and MRR on small hand-made retrievals, with exact numbers."""

from __future__ import annotations

from typing import Any

import pytest

from studio.core.errors import StudioError
from studio.evaluators import EvalItem, Verdict, build, catalogue, parse_spec
from studio.evaluators.base import RetrievedChunk, retrieved_chunks
from studio.evaluators.rag import NO_RETRIEVAL, context_text, expected_sources
from studio.evaluators.report import Score, report_card


def chunks(*documents: str) -> tuple[RetrievedChunk, ...]:
    """Chunks in rank order; chunk ids are 101, 102, ... in that order."""
    return tuple(
        RetrievedChunk(id=101 + i, document=d, text=f"text of {d}", score=1.0 - i / 10)
        for i, d in enumerate(documents)
    )


def item(expected: str, *documents: str, retrieved: bool = True) -> EvalItem:
    return EvalItem(
        output="An answer.",
        row={"expected_document": expected, "question": "How do refunds work?"},
        query="How do refunds work?",
        retrieved=chunks(*documents) if retrieved else None,
    )


def judge(evaluator_id: str, it: EvalItem, **options: Any) -> Verdict:
    return build(evaluator_id, options).evaluate(it)


def test_the_evaluators_are_in_the_catalogue_with_a_family_of_their_own() -> None:
    found = catalogue()
    for evaluator_id in ("context_relevance", "faithfulness", "retrieval_hit_rate", "recall_at_k",
                         "mrr"):  # fmt: skip
        assert found[evaluator_id].family == "rag"
        assert len(found[evaluator_id].description) > 40


def test_mrr_of_ranks_one_two_and_none_is_their_mean() -> None:
    evaluator = build("mrr")
    rows = [
        item("billing.md", "billing.md", "faq.md"),  # rank 1
        item("billing.md", "faq.md", "billing.md", "billing.md"),  # rank 2 (the first one)
        item("billing.md", "faq.md", "pricing.md"),  # none
    ]
    verdicts = [evaluator.evaluate(r) for r in rows]
    assert [v.score for v in verdicts] == [1.0, 0.5, 0.0]
    assert [v.passed for v in verdicts] == [True, True, False]
    assert "rank 2" in verdicts[1].reason and "reciprocal rank 0.50" in verdicts[1].reason
    figure = evaluator.summary(rows, verdicts)["retrieval"]
    assert figure["figure"] == "MRR" and figure["estimate"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert figure["rows"] == 3 and figure["low"] <= figure["estimate"] <= figure["high"]


def test_mrr_within_k_ignores_later_ranks() -> None:
    assert judge("mrr", item("billing.md", "a.md", "b.md", "billing.md"), k=2).score == 0.0
    assert judge("mrr", item("billing.md", "a.md", "b.md", "billing.md")).score == pytest.approx(
        1 / 3
    )


def test_hit_rate_passes_when_any_chunk_comes_from_the_expected_document() -> None:
    hit = judge("retrieval_hit_rate", item("billing.md", "faq.md", "billing.md"))
    assert hit.passed and hit.score == 1.0
    assert hit.reason == "billing.md came back at rank 2 of 2."
    miss = judge("retrieval_hit_rate", item("billing.md", "faq.md", "pricing.md"))
    assert not miss.passed and miss.error is None
    assert "billing.md" in miss.reason and "faq.md, pricing.md" in miss.reason
    only_first = judge("retrieval_hit_rate", item("billing.md", "faq.md", "billing.md"), k=1)
    assert not only_first.passed


@pytest.mark.parametrize(
    ("expected", "passed"),
    [
        ("billing.md", True),
        ("Billing.MD", True),  # names match whatever the case
        ("billing", True),  # the file name without its extension
        ("handbook/billing.md", True),  # a path: its file name counts
        ("billing.txt", False),
        ("bill", False),
        ("102", True),  # a chunk id (the second chunk's)
        ("999", False),
    ],
)
def test_expected_sources_match_documents_by_name_and_chunks_by_id(
    expected: str, passed: bool
) -> None:
    assert judge("retrieval_hit_rate", item(expected, "faq.md", "billing.md")).passed is passed


def test_match_can_be_fixed_to_documents_or_chunk_ids() -> None:
    named_12 = item("102", "faq.md", "102")  # a document named "102", and chunk id 102
    assert judge("retrieval_hit_rate", named_12, match="document").reason.startswith("102 came")
    by_name = judge("retrieval_hit_rate", item("102", "faq.md", "x.md"), match="document")
    assert not by_name.passed
    by_id = judge("retrieval_hit_rate", item("billing.md", "billing.md"), match="chunk_id")
    assert not by_id.passed


def test_recall_at_k_is_the_share_of_expected_sources_in_the_top_k() -> None:
    two = "billing.md; refunds.md"
    full = judge("recall_at_k", item(two, "refunds.md", "faq.md", "billing.md"), k=3)
    assert full.score == 1.0 and full.passed
    half = judge("recall_at_k", item(two, "refunds.md", "faq.md", "billing.md"), k=2)
    assert half.score == 0.5 and not half.passed
    assert "Found 1 of 2" in half.reason and "missing billing.md" in half.reason
    assert judge("recall_at_k", item(two, "refunds.md", "faq.md"), k=2, threshold=0.5).passed
    three = judge("recall_at_k", item("a.md|b.md|c.md", "c.md", "c.md", "a.md"), k=5)
    assert three.score == pytest.approx(2 / 3)  # two chunks of c.md count once


def test_mean_recall_and_hit_rate_with_their_intervals_in_the_report_card() -> None:
    rows = [
        item("billing.md", "billing.md"),
        item("billing.md", "faq.md"),
        item("a.md;b.md", "a.md", "x.md"),
        item("refunds.md", retrieved=False),  # no retrieval step: an error, left out
    ]
    evaluators = {"hit": build("retrieval_hit_rate"), "recall": build("recall_at_k", {"k": 2})}
    scores = [
        Score("A", i, 0, key, ev.evaluate(r))
        for key, ev in evaluators.items()
        for i, r in enumerate(rows)
    ]
    card = report_card(
        scores, evaluators=evaluators, items={("A", i, 0): r for i, r in enumerate(rows)}
    )
    hit = card.line("A", "hit")
    assert (hit.judged, hit.passed, hit.errors) == (3, 2, 1)
    assert hit.pass_rate is not None and hit.pass_rate.estimate == pytest.approx(2 / 3)
    figure = hit.extra["retrieval"]
    assert figure["figure"] == "hit rate" and figure["estimate"] == pytest.approx(2 / 3)
    assert (figure["low"], figure["high"]) == (hit.pass_rate.low, hit.pass_rate.high)
    recall = card.line("A", "recall")
    assert recall.extra["retrieval"]["estimate"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert recall.extra["retrieval"]["k"] == 2


def test_a_row_without_retrieval_is_an_evaluator_error_that_says_how_to_get_one() -> None:
    for evaluator_id in ("retrieval_hit_rate", "recall_at_k", "mrr"):
        verdict = judge(evaluator_id, item("billing.md", retrieved=False))
        assert verdict.error == NO_RETRIEVAL and not verdict.passed
    assert "switch retrieval on for the variant" in NO_RETRIEVAL


def test_retrieval_that_found_nothing_is_a_miss_not_an_error() -> None:
    verdict = judge("retrieval_hit_rate", item("billing.md"))
    assert verdict.error is None and not verdict.passed
    assert "no chunk retrieved" in verdict.reason
    assert judge("mrr", item("billing.md")).score == 0.0


def test_a_row_naming_no_expected_source_is_an_evaluator_error() -> None:
    verdict = judge("mrr", item("  ;  ", "billing.md"))
    assert verdict.error is not None and "{{expected_document}}" in verdict.error


def test_the_expected_column_is_an_option_checked_against_the_dataset() -> None:
    evaluator = build("retrieval_hit_rate", {"expected_source": "{{source}}"})
    assert evaluator.columns() == {"source"}
    assert build("mrr").columns() == {"expected_document"}
    with pytest.raises(StudioError, match="k"):
        build("recall_at_k", {"k": 0})


def test_the_cli_spec_form_builds_them() -> None:
    evaluator = parse_spec("recall_at_k:expected_source={{source}},k=3,threshold=0.5")
    assert evaluator.options.k == 3 and evaluator.options.expected_source == "{{source}}"


def test_expected_sources_split_on_semicolons_and_bars() -> None:
    assert expected_sources(" a.md ; b.md|c.md ;; a.md") == ["a.md", "b.md", "c.md"]


def test_stored_retrieval_records_become_chunks_in_rank_order() -> None:
    stored = {
        "query": "refunds",
        "chunks": [
            {
                "id": 7,
                "document_id": 2,
                "document": "billing.md",
                "position": 3,
                "score": 0.8,
                "text": "Refunds take 5 days.",
            },
            {"id": "8", "document": "faq.md", "score": None, "text": "Ask us."},
            "not a chunk",
        ],
    }
    found = retrieved_chunks(stored)
    assert found is not None and [c.id for c in found] == [7, 8]
    assert found[0] == RetrievedChunk(7, "billing.md", "Refunds take 5 days.", 0.8, 2, 3)
    assert retrieved_chunks(None) is None
    assert retrieved_chunks({"query": "x", "chunks": []}) == ()


def test_the_context_a_judge_reads_is_ranked_named_and_bounded() -> None:
    text = context_text(chunks("billing.md", "faq.md"))
    assert text.startswith("[1] billing.md\ntext of billing.md") and "[2] faq.md" in text
    long = tuple(RetrievedChunk(i, f"d{i}.md", "x" * 5_000) for i in range(5))
    bounded = context_text(long, limit=8_000)
    assert len(bounded) < 8_200 and "more chunk(s) left out" in bounded
    assert context_text(()) == "(no chunks were retrieved)"
