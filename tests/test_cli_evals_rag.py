"""`studio eval run` with the RAG evaluators: specs in the id:key=value form, the
retrieval figures printed with their intervals, and the catalogue listing them."""

from __future__ import annotations

from typing import Any

from tests.evaluators.rag_runs import run_with_retrieval

CSV = (
    b"question,source_doc\n"
    b"How long do refunds take?,billing.md\n"
    b"Where is the office?,office.md|about.md\n"
    b"What does Pro cost?,pricing.md\n"
)
FOUND = [["billing.md", "faq.md"], ["faq.md", "office.md"], ["faq.md", "team.md"]]


def test_eval_run_prints_hit_rate_recall_and_mrr(cli: Any, mock_provider: Any) -> None:
    _, version_id, run_id = run_with_retrieval(CSV, FOUND)
    result = cli(
        "eval", "run", "--app", "Handbook", "--dataset", str(version_id), "--run", str(run_id),
        "--evaluator", "retrieval_hit_rate:expected_source={{source_doc}}",
        "--evaluator", "recall_at_k:expected_source={{source_doc}},k=2",
        "--evaluator", "mrr:expected_source={{source_doc}}",
    )  # fmt: skip
    assert result.code == 0, result.err
    out = result.out
    assert "retrieval_hit_rate: hit rate 67% (95% CI" in out
    assert f"recall_at_k: mean recall@2 {(1 + 0.5 + 0) / 3:.0%}" in out
    assert "mrr: MRR 0.50 (95% CI" in out and "over 3 row(s); 0 not judged" in out


def test_a_missing_column_and_the_catalogue(cli: Any, mock_provider: Any) -> None:
    _, version_id, run_id = run_with_retrieval(CSV, FOUND)
    bad = cli(
        "eval", "run", "--app", "Handbook", "--dataset", str(version_id), "--run", str(run_id),
        "--evaluator", "mrr",  # names {{expected_document}}, which this dataset lacks
    )  # fmt: skip
    assert bad.code != 0 and "expected_document" in bad.err and "source_doc" in bad.err
    listed = {e["id"]: e for e in cli("eval", "evaluators", "--json").json()}
    assert {"context_relevance", "faithfulness", "retrieval_hit_rate", "recall_at_k", "mrr"} <= set(
        listed
    )
    assert {o["name"] for o in listed["recall_at_k"]["options"]} == {
        "expected_source", "match", "k", "threshold",
    }  # fmt: skip
