"""Evaluations as jobs: progress any process can read, Cancel that stops it, Retry that
finishes it without scoring an output twice."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlmodel import Session, func, select

from studio.core.templates import PromptTemplate
from studio.models.connections import ConnectionCreate, add_connection
from studio.services.apps import create_app
from studio.services.datasets import upload_dataset
from studio.services.evaluations import EvaluatorConfig, create_evaluation, get_evaluation
from studio.services.jobs import (
    cancel_job,
    enqueue_evaluation,
    get_job,
    job_for_evaluation,
    retry_job,
    wait_job,
)
from studio.services.runs import RunConfig, create_run, run_sync
from studio.store import session_scope
from studio.store.tables import EvaluationScore
from tests.providers.fakes import FaultyOpenAIServer

ROWS = 40


def _evaluation(session: Session, evaluators: list[EvaluatorConfig]) -> int:
    app = create_app(session=session, name="Judged")
    csv = "topic,grade\n" + "".join(f"topic {i},score: 0.9\n" for i in range(ROWS))
    version = upload_dataset(
        session=session, app_id=app.id or 0, name="t", data=csv.encode(), filename="t.csv"
    )
    run = create_run(
        session=session,
        app_id=app.id or 0,
        dataset_version_id=version.id or 0,
        config=RunConfig(
            model="mock/echo", prompt=PromptTemplate(kind="completion", template="{{topic}}")
        ),
    )
    session.commit()
    run_sync(run_id=run.id or 0)
    evaluation = create_evaluation(
        session=session, app_id=app.id or 0, run_ids=[run.id or 0], evaluators=evaluators
    )
    assert evaluation.id is not None
    return evaluation.id


def _count(evaluation_id: int) -> int:
    with session_scope() as session:
        return int(
            session.exec(
                select(func.count()).where(EvaluationScore.evaluation_id == evaluation_id)  # type: ignore[arg-type]
            ).one()
        )


def test_an_evaluation_job_scores_everything_and_reports_progress(
    session: Session, mock_provider: Any
) -> None:
    evaluation_id = _evaluation(
        session, [EvaluatorConfig(id="contains", options={"value": "{{topic}}"}),
                  EvaluatorConfig(id="length", options={"max": 2})]
    )  # fmt: skip
    job = enqueue_evaluation(evaluation_id=evaluation_id, actor="ui")
    assert job.kind == "evaluation" and job.total == 2 * ROWS and job.actor == "ui"
    done = wait_job(job_id=job.id, timeout=60)
    assert (done.state, done.done, done.errors) == ("succeeded", 2 * ROWS, 0)
    assert job_for_evaluation(evaluation_id=evaluation_id) == done
    session.expire_all()
    assert get_evaluation(session=session, evaluation_id=evaluation_id).status == "done"


def test_cancel_stops_the_judge_and_retry_finishes_without_scoring_twice(
    session: Session, mock_provider: Any, faulty_server: Callable[..., FaultyOpenAIServer]
) -> None:
    judge = faulty_server(latency_s=0.1)
    add_connection(
        session=session, data=ConnectionCreate(name="judge", kind="openai", base_url=judge.url)
    )
    evaluation_id = _evaluation(
        session,
        [
            EvaluatorConfig(
                id="llm_judge", options={"rubric": "{{grade}}", "model": "judge/fake-chat"}
            )
        ],
    )
    job = enqueue_evaluation(evaluation_id=evaluation_id, actor="cli", concurrency=2)
    deadline = time.monotonic() + 30
    while _count(evaluation_id) < 4:
        assert time.monotonic() < deadline, "the judge made no progress"
        time.sleep(0.05)
    cancel_job(job_id=job.id)
    stopped = wait_job(job_id=job.id, timeout=5)
    assert stopped.state == "cancelled"
    kept = _count(evaluation_id)
    assert 4 <= kept < ROWS
    time.sleep(0.5)
    assert _count(evaluation_id) <= kept + 2  # at most the calls already in flight land
    session.expire_all()
    assert get_evaluation(session=session, evaluation_id=evaluation_id).status == "cancelled"

    asked_before = sum(judge.asked.values())
    retried = retry_job(job_id=job.id)
    finished = wait_job(job_id=retried.id, timeout=60)
    assert finished.state == "succeeded" and finished.done == ROWS
    assert _count(evaluation_id) == ROWS  # one score per output
    assert sum(judge.asked.values()) <= ROWS + 2  # scored outputs were not judged again
    assert sum(judge.asked.values()) >= asked_before
    assert get_job(job_id=job.id).state == "succeeded"
