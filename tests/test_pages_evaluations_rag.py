"""The Evaluations page with the RAG evaluators: picked from their own tab, the expected
document chosen from the dataset's columns, and the report's retrieval figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from studio.evaluators.stats import wilson_interval
from studio.services.evaluations import list_evaluations
from studio.services.jobs import job_for_evaluation, wait_job
from studio.store import session_scope
from tests.evaluators.rag_runs import run_with_retrieval

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "evaluations.py")
CSV = (
    b"question,source_doc\n"
    b"How long do refunds take?,billing.md\n"
    b"Where is the office?,office.md\n"
    b"What does Pro cost?,pricing.md\n"
)
FOUND = [["billing.md", "faq.md"], ["faq.md", "office.md"], ["faq.md", "team.md"]]


@pytest.fixture
def run_id(mock_provider: Any) -> int:
    """A finished run (no saved variant) whose rows carry their retrieved chunks."""
    return run_with_retrieval(CSV, FOUND)[2]


def _open() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(at: AppTest, kind: str) -> list[str]:
    return [str(e.value) for e in getattr(at, kind)]


def test_the_rag_evaluators_have_their_own_tab_and_descriptions(run_id: int) -> None:
    at = _open()
    assert "Retrieval (RAG)" in [t.label for t in at.tabs]
    for evaluator_id in ("context_relevance", "faithfulness", "retrieval_hit_rate",
                         "recall_at_k", "mrr"):  # fmt: skip
        assert at.checkbox(key=f"ev_use_{evaluator_id}") is not None
    captions = " ".join(_texts(at, "caption"))
    assert "`retrieval_hit_rate`: Passes when at least one retrieved chunk" in captions
    assert "`faithfulness`: A chat model checks that every claim" in captions


def test_pick_the_expected_document_column_evaluate_and_read_the_hit_rate(run_id: int) -> None:
    at = _open()
    at.multiselect(key="ev_runs").set_value([run_id])
    at.checkbox(key="ev_use_retrieval_hit_rate").check()
    at.checkbox(key="ev_use_mrr").check().run()
    assert not at.exception, [e.value for e in at.exception]
    column = at.selectbox(key="ev_opt_retrieval_hit_rate_expected_source")
    assert column.options == ["question", "source_doc"]
    assert column.value == "source_doc"  # guessed from its name
    captions = " ".join(_texts(at, "caption"))
    assert "evaluate a run of a variant with retrieval" in captions
    assert "compare each row's retrieved chunks with the document a column" in captions
    assert "no expected-output column" not in captions  # not a question for these
    assert not at.warning  # the run's rows retrieved: nothing to warn about
    at.button(key="ev_evaluate").click().run()
    assert not at.exception, [e.value for e in at.exception]
    with session_scope() as session:
        evaluation = list_evaluations(session=session, app_id=None)[0]
    assert evaluation.evaluators[0]["options"]["expected_source"] == "{{source_doc}}"
    assert evaluation.id is not None
    job = job_for_evaluation(evaluation_id=evaluation.id)
    assert job is not None
    wait_job(job_id=job.id, timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]

    retrieval = next(f.value for f in at.dataframe if "Measure" in f.value.columns)
    rows = {r["Measure"]: r for r in retrieval.to_dict("records")}
    ci = wilson_interval(2, 3)
    assert ci is not None
    assert rows["Hit rate"]["Value"] == "67%"
    assert rows["Hit rate"]["95% CI"] == f"{ci.low:.0%} to {ci.high:.0%}"
    assert rows["MRR"]["Value"] == f"{(1 + 0.5 + 0) / 3:.2f}"
    captions = " ".join(_texts(at, "caption"))
    assert "at least one retrieved chunk came from an expected document" in captions
    # the row detail shows the chunks the evaluators judged
    chunks = next(f.value for f in at.dataframe if "Document" in f.value.columns)
    assert list(chunks["Document"]) == ["billing.md", "faq.md"]


def test_without_a_column_picked_the_form_says_what_to_choose(run_id: int) -> None:
    at = _open()
    at.multiselect(key="ev_runs").set_value([run_id])
    at.checkbox(key="ev_use_recall_at_k").check().run()
    at.selectbox(key="ev_opt_recall_at_k_expected_source").set_value(None).run()
    at.button(key="ev_evaluate").click().run()
    assert not at.exception, [e.value for e in at.exception]
    errors = " ".join(_texts(at, "error"))
    assert "choose the dataset column that names each row's expected document" in errors
    with session_scope() as session:
        assert list_evaluations(session=session, app_id=None) == []


def test_a_variant_without_retrieval_is_warned_about_before_evaluate(run_id: int) -> None:
    from studio.core.templates import PromptTemplate
    from studio.services.variants import VariantConfig, create_variant

    with session_scope() as session:
        create_variant(
            session=session,
            app_id=1,
            name="plain",
            config=VariantConfig(
                model="mock/echo", prompt=PromptTemplate.completion("{{question}}")
            ),
        )
    at = _open()
    assert at.multiselect(key="ev_variants").value == ["plain@1"]
    at.checkbox(key="ev_use_mrr").check().run()
    warnings = _texts(at, "warning")
    assert any(
        "plain@1 retrieved nothing (no retrieval step)" in w and "Switch retrieval on" in w
        for w in warnings
    ), warnings
    at.checkbox(key="ev_use_mrr").uncheck()
    at.checkbox(key="ev_use_contains").check().run()
    assert not at.warning  # only the retrieval evaluators need a retrieval step
