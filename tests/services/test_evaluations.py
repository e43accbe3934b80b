"""Evaluations: stored scores, report cards, CSV exports, changed evaluators, resume."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from sqlmodel import Session, func, select

from studio.core.errors import StudioError
from studio.core.schemas import ChatCompletionResponse, Message
from studio.core.templates import PromptTemplate
from studio.services.apps import create_app
from studio.services.datasets import set_expected_column, upload_dataset
from studio.services.evaluation_export import export_evaluation
from studio.services.evaluations import (
    EvaluatorConfig,
    create_evaluation,
    evaluate_sync,
    get_evaluation,
    list_evaluations,
    set_evaluators,
)
from studio.services.runs import RunConfig, create_run, run_sync
from studio.store.tables import EvaluationScore, RunResult

CSV = "city,answer\n" + "".join(f"City {i},echo: City {i}\n" for i in range(9)) + "=SUM(A1),x\n"


def _setup(session: Session) -> tuple[int, int, int]:
    app = create_app(session=session, name="Capitals")
    assert app.id is not None
    version = upload_dataset(
        session=session, app_id=app.id, name="cities", data=CSV.encode(), filename="c.csv"
    )
    assert version.id is not None
    version = set_expected_column(session=session, version_id=version.id, expected_column="answer")
    session.commit()
    run = create_run(
        session=session,
        app_id=app.id,
        dataset_version_id=version.id or 0,
        config=RunConfig(
            model="mock/echo", prompt=PromptTemplate(kind="completion", template="{{city}}")
        ),
    )
    session.commit()
    assert run.id is not None
    run_sync(run_id=run.id)
    return app.id, version.id or 0, run.id


def _count(session: Session, evaluation_id: int) -> int:
    return int(
        session.exec(
            select(func.count()).where(EvaluationScore.evaluation_id == evaluation_id)  # type: ignore[arg-type]
        ).one()
    )


def test_evaluate_report_and_export(session: Session, mock_provider: Any) -> None:
    app_id, _, run_id = _setup(session)
    evaluation = create_evaluation(
        session=session,
        app_id=app_id,
        run_ids=[run_id],
        evaluators=[
            EvaluatorConfig(id="exact_match"),
            EvaluatorConfig(id="contains", options={"value": "{{city}}"}),
            EvaluatorConfig(id="length", options={"unit": "words", "max": 2}),
        ],
    )
    assert evaluation.id is not None
    card = evaluate_sync(evaluation_id=evaluation.id)
    exact = card.line("A", "exact_match")
    assert (exact.judged, exact.passed) == (10, 9)  # the last row expects "x"
    assert exact.pass_rate is not None and 0.5 < exact.pass_rate.low < 0.9 < exact.pass_rate.high
    assert card.line("A", "length").passed == 1  # "echo: City 3" is 3 words; "echo: =SUM(A1)" 2
    overall = card.line("A")
    assert (overall.judged, overall.passed) == (10, 0)

    session.expire_all()
    stored = get_evaluation(session=session, evaluation_id=evaluation.id)
    assert stored.status == "done"
    assert stored.summary["contenders"]["A"]["judged"] == 10
    assert [e.id for e in list_evaluations(session=session, app_id=app_id)] == [evaluation.id]

    wide = list(
        csv.DictReader(
            io.StringIO(
                export_evaluation(
                    session=session, evaluation_id=evaluation.id, shape="wide"
                ).decode("utf-8-sig")
            )
        )
    )
    assert len(wide) == 10
    assert wide[0]["city"] == "City 0" and wide[0]["expected"] == "echo: City 0"
    assert wide[0]["A output"] == "echo: City 0"
    assert wide[0]["A exact_match pass"] == "pass" and wide[0]["A length pass"] == "fail"
    assert wide[0]["A overall"] == "fail"
    assert wide[9]["city"] == "'=SUM(A1)"  # a formula is escaped for spreadsheets
    long = list(
        csv.DictReader(
            io.StringIO(
                export_evaluation(
                    session=session, evaluation_id=evaluation.id, shape="long"
                ).decode("utf-8-sig")
            )
        )
    )
    assert len(long) == 30
    assert {r["evaluator"] for r in long} == {"exact_match", "contains", "length"}
    assert long[0]["run id"] == str(run_id) and long[0]["model"] == "mock/echo"
    assert long[0]["parameters hash"] and long[0]["latency ms"]


def test_changing_one_evaluator_recomputes_only_that_one(
    session: Session, mock_provider: Any
) -> None:
    app_id, _, run_id = _setup(session)
    configs = [EvaluatorConfig(id="exact_match"), EvaluatorConfig(id="length", options={"max": 2})]
    evaluation = create_evaluation(
        session=session, app_id=app_id, run_ids=[run_id], evaluators=configs
    )
    assert evaluation.id is not None
    evaluate_sync(evaluation_id=evaluation.id)
    exact_ids = set(
        session.exec(
            select(EvaluationScore.id).where(EvaluationScore.evaluator_key == "exact_match")
        ).all()
    )
    set_evaluators(
        session=session,
        evaluation_id=evaluation.id,
        evaluators=[configs[0], EvaluatorConfig(id="length", options={"max": 3})],
    )
    card = evaluate_sync(evaluation_id=evaluation.id)
    assert card.line("A", "length").passed == 10
    session.expire_all()
    assert (
        set(
            session.exec(
                select(EvaluationScore.id).where(EvaluationScore.evaluator_key == "exact_match")
            ).all()
        )
        == exact_ids
    )  # kept, not redone
    assert _count(session, evaluation.id) == 20


def test_a_failed_generation_fails_the_row_and_the_judge_is_read(
    session: Session, mock_provider: Any
) -> None:
    app_id, _, run_id = _setup(session)
    row = session.exec(
        select(RunResult).where(RunResult.run_id == run_id, RunResult.row_index == 4)
    ).one()
    row.output, row.error = None, "mock: provider down"
    session.add(row)
    session.commit()
    verdict = ChatCompletionResponse(
        message=Message(
            role="assistant", content='{"verdict": "pass", "score": 0.9, "reason": "Fine."}'
        )
    )
    mock_provider.replies.extend([verdict] * 9)
    mock_provider.calls.clear()  # the run's own calls
    evaluation = create_evaluation(
        session=session,
        app_id=app_id,
        run_ids=[run_id],
        evaluators=[
            EvaluatorConfig(
                id="llm_judge", options={"rubric": "Names {{city}}.", "model": "mock/echo"}
            )
        ],
    )
    assert evaluation.id is not None
    card = evaluate_sync(evaluation_id=evaluation.id)
    judge = card.line("A", "llm_judge")
    assert (judge.judged, judge.passed, judge.errors) == (10, 9, 0)
    assert judge.failures == [(4, 0, "No output: mock: provider down")]
    judged = [c for c in mock_provider.calls if c[0] == "chat"]
    assert len(judged) == 9 and any("Names City 0." in str(call[2]) for call in judged)


def test_bad_evaluations_are_refused_with_a_sentence(session: Session, mock_provider: Any) -> None:
    app_id, _, run_id = _setup(session)
    with pytest.raises(StudioError, match="names column\\(s\\) town"):
        create_evaluation(
            session=session,
            app_id=app_id,
            run_ids=[run_id],
            evaluators=[EvaluatorConfig(id="contains", options={"value": "{{town}}"})],
        )
    with pytest.raises(StudioError, match="at least one evaluator"):
        create_evaluation(session=session, app_id=app_id, run_ids=[run_id], evaluators=[])
    other = create_app(session=session, name="Other")
    with pytest.raises(StudioError, match="not a run of this app"):
        create_evaluation(
            session=session,
            app_id=other.id or 0,
            run_ids=[run_id],
            evaluators=[EvaluatorConfig(id="exact_match")],
        )
