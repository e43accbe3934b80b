"""An evaluation over runs whose rows carry what their retrieval step found: hit rate with
its interval, mean recall@k, MRR, a faithfulness judge, and a run without retrieval."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from sqlmodel import Session, select

from studio.core.schemas import ChatCompletionResponse, Message
from studio.core.templates import PromptTemplate
from studio.evaluators.rag import NO_RETRIEVAL
from studio.services.apps import create_app
from studio.services.datasets import upload_dataset
from studio.services.evaluation_export import export_evaluation
from studio.services.evaluations import (
    EvaluatorConfig,
    create_evaluation,
    evaluate_sync,
    get_evaluation,
)
from studio.services.runs import RunConfig, create_run, run_sync
from studio.store.tables import RunResult

CSV = (
    "question,expected_document\n"
    "How long do refunds take?,billing.md\n"
    "Where is the office?,office.md\n"
    "What does Pro cost?,pricing.md;billing.md\n"
    "Who do I call?,support.md\n"
)
# What retrieval found per row, in rank order (documents; chunk ids 10*row + rank).
FOUND = [
    ["billing.md", "faq.md"],  # hit at rank 1; recall 1
    ["faq.md", "office.md"],  # hit at rank 2; recall 1
    ["pricing.md", "faq.md"],  # hit at rank 1; recall 1/2 (billing.md missing)
    ["faq.md", "pricing.md"],  # miss; recall 0; reciprocal rank 0
]


def _retrieval(row: int, documents: list[str]) -> dict[str, Any]:
    return {
        "query": f"question {row}",
        "chunks": [
            {
                "id": 10 * row + rank,
                "document_id": rank,
                "document": document,
                "position": 0,
                "score": 1.0 - rank / 10,
                "text": f"Text of {document}.",
            }
            for rank, document in enumerate(documents, start=1)
        ],
    }


def _runs(session: Session) -> tuple[int, int, int]:
    app = create_app(session=session, name="Handbook")
    assert app.id is not None
    version = upload_dataset(
        session=session, app_id=app.id, name="questions", data=CSV.encode(), filename="q.csv"
    )
    session.commit()
    ids = []
    for _ in range(2):
        run = create_run(
            session=session,
            app_id=app.id,
            dataset_version_id=version.id or 0,
            config=RunConfig(
                model="mock/echo",
                prompt=PromptTemplate(kind="completion", template="{{question}}"),
            ),
        )
        session.commit()
        assert run.id is not None
        run_sync(run_id=run.id)
        ids.append(run.id)
    with_retrieval = ids[0]
    for result in session.exec(select(RunResult).where(RunResult.run_id == with_retrieval)):
        result.retrieval = _retrieval(result.row_index, FOUND[result.row_index])
        session.add(result)
    session.commit()
    return app.id, ids[0], ids[1]


def test_hit_rate_recall_and_mrr_of_a_run_with_retrieval(
    session: Session, mock_provider: Any
) -> None:
    app_id, with_retrieval, without = _runs(session)
    verdict = ChatCompletionResponse(
        message=Message(role="assistant", content='{"verdict": "pass", "score": 1}'),
        finish_reason="stop",
    )
    mock_provider.replies.extend([verdict] * 4)
    mock_provider.calls.clear()
    evaluation = create_evaluation(
        session=session,
        app_id=app_id,
        run_ids=[with_retrieval, without],
        evaluators=[
            EvaluatorConfig(id="retrieval_hit_rate"),
            EvaluatorConfig(id="recall_at_k", options={"k": 2}),
            EvaluatorConfig(id="mrr"),
            EvaluatorConfig(id="faithfulness", options={"model": "mock/echo"}),
        ],
    )
    assert evaluation.id is not None
    card = evaluate_sync(evaluation_id=evaluation.id)

    hit = card.line("A", "retrieval_hit_rate")
    assert (hit.judged, hit.passed, hit.errors) == (4, 3, 0)
    assert hit.pass_rate is not None and hit.pass_rate.estimate == 0.75
    assert 0.2 < hit.pass_rate.low < 0.75 < hit.pass_rate.high <= 1.0
    assert hit.extra["retrieval"]["figure"] == "hit rate"
    assert card.line("A", "recall_at_k").extra["retrieval"]["estimate"] == pytest.approx(
        (1 + 1 + 0.5 + 0) / 4
    )
    mrr = card.line("A", "mrr")
    assert mrr.mean_score is not None
    assert mrr.mean_score.estimate == pytest.approx((1 + 0.5 + 1 + 0) / 4)
    assert mrr.failures[0][0] == 3 and "reciprocal rank 0" in mrr.failures[0][2]

    # The judge saw each row's chunks (the run with retrieval only: four calls).
    chats = [c for c in mock_provider.calls if c[0] == "chat"]
    assert len(chats) == 4
    assert any("[1] billing.md\nText of billing.md." in c[2].messages[-1].content for c in chats)
    assert card.line("A", "faithfulness").passed == 4

    # The run without a retrieval step: every RAG score is an evaluator error, not a failure.
    for key in ("retrieval_hit_rate", "recall_at_k", "mrr", "faithfulness"):
        line = card.line("B", key)
        assert (line.judged, line.errors) == (0, 4)
        assert line.error_rows[0][2] == NO_RETRIEVAL

    session.expire_all()
    stored = get_evaluation(session=session, evaluation_id=evaluation.id)
    assert stored.status == "done"
    assert stored.summary["contenders"]["B"]["errors"] == 4  # overall: errors, none failed

    wide = list(
        csv.DictReader(
            io.StringIO(
                export_evaluation(
                    session=session, evaluation_id=evaluation.id, shape="wide"
                ).decode("utf-8-sig")
            )
        )
    )
    assert wide[1]["A retrieved"] == "faq.md #11 (0.900); office.md #12 (0.800)"
    assert wide[3]["A mrr reason"].endswith("reciprocal rank 0.")
    assert "B retrieved" not in wide[0]  # that run had no retrieval step


def test_the_expected_column_must_exist_in_the_dataset(
    session: Session, mock_provider: Any
) -> None:
    from studio.core.errors import StudioError

    app_id, with_retrieval, _ = _runs(session)
    with pytest.raises(StudioError, match="names column\\(s\\) source"):
        create_evaluation(
            session=session,
            app_id=app_id,
            run_ids=[with_retrieval],
            evaluators=[EvaluatorConfig(id="mrr", options={"expected_source": "{{source}}"})],
        )


def test_a_variant_with_retrieval_evaluated_end_to_end(
    session: Session, mock_provider: Any
) -> None:
    """The run an evaluation makes for a variant version retrieves (the version's step),
    and the evaluators read the chunks its rows stored."""
    from studio.services.evaluation_runs import contender_runs
    from studio.services.retrieval_spec import RetrievalSpec
    from studio.services.variants import VariantConfig, create_variant
    from tests.services.retrieval_setup import PROMPT, handbook, help_app, questions

    app_id = help_app(session)
    kb_id = handbook(session, app_id)
    dataset_version = questions(session, app_id)
    create_variant(
        session=session,
        app_id=app_id,
        name="rag",
        config=VariantConfig(
            model="mock/echo",
            prompt=PromptTemplate.completion(PROMPT),
            retrieval=RetrievalSpec(kb_id=kb_id, query_template="{{question}}", top_k=2),
        ),
    )
    session.commit()
    found = contender_runs(
        session=session, app_id=app_id, dataset_version_id=dataset_version, variants=["rag"]
    )
    for run_id in found.missing:
        run_sync(run_id=run_id)
    evaluation = create_evaluation(
        session=session,
        app_id=app_id,
        run_ids=found.run_ids,
        evaluators=[EvaluatorConfig(id="retrieval_hit_rate"), EvaluatorConfig(id="mrr")],
    )
    assert evaluation.id is not None
    card = evaluate_sync(evaluation_id=evaluation.id)
    stored = session.exec(select(RunResult).where(RunResult.run_id == found.run_ids[0])).all()
    firsts = {r.row_index: r.retrieval["chunks"][0]["document"] for r in stored if r.retrieval}
    assert firsts == {0: "plans.md", 1: "refunds.md", 2: "data.md"}  # each answer ranked first
    hit = card.line("A", "retrieval_hit_rate")
    assert (hit.judged, hit.passed, hit.errors) == (3, 3, 0)
    mrr = card.line("A", "mrr")
    assert mrr.mean_score is not None and mrr.mean_score.estimate == 1.0


def test_the_form_is_told_which_contenders_have_no_retrieval_step(
    session: Session, mock_provider: Any
) -> None:
    from studio.services.evaluation_runs import without_retrieval
    from studio.services.retrieval_spec import RetrievalSpec
    from studio.services.variants import VariantConfig, create_variant
    from tests.services.retrieval_setup import PROMPT, handbook, help_app

    app_id = help_app(session)
    kb_id = handbook(session, app_id)
    for name, step in (("rag", RetrievalSpec(kb_id=kb_id, top_k=2)), ("plain", None)):
        create_variant(
            session=session,
            app_id=app_id,
            name=name,
            config=VariantConfig(
                model="mock/echo", prompt=PromptTemplate.completion(PROMPT), retrieval=step
            ),
        )
    session.commit()
    assert without_retrieval(
        session=session, app_id=app_id, variants=["rag@1", "plain@1"], run_ids=[]
    ) == ["plain@1"]
