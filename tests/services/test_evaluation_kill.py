"""SIGKILL in the middle of an LLM-judge evaluation, then resume: every output scored once."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlmodel import Session, func, select

from studio.core.templates import PromptTemplate
from studio.models.connections import ConnectionCreate, add_connection
from studio.services.apps import create_app
from studio.services.datasets import upload_dataset
from studio.services.evaluations import EvaluatorConfig, create_evaluation, evaluate_sync
from studio.services.runs import RunConfig, create_run, run_sync
from studio.store import session_scope
from studio.store.tables import EvaluationScore
from tests.providers.fakes import FaultyOpenAIServer
from tests.services.kill import kill_mid_work

ROWS = 120
# The child acts as a job worker would (an unset actor may do nothing).
CHILD = (
    "import sys; from studio.core.identity import WORKER, set_actor; set_actor(WORKER); "
    "from studio.services.evaluations import evaluate_sync; "
    "evaluate_sync(evaluation_id=int(sys.argv[1]), concurrency=8)"
)


def _scored(evaluation_id: int) -> dict[int, bool]:
    with session_scope() as session:
        rows = session.exec(
            select(EvaluationScore.row_index, EvaluationScore.passed).where(
                EvaluationScore.evaluation_id == evaluation_id
            )
        ).all()
    return dict(rows)


def _count(evaluation_id: int) -> int:
    with session_scope() as session:
        return int(
            session.exec(
                select(func.count()).where(EvaluationScore.evaluation_id == evaluation_id)  # type: ignore[arg-type]
            ).one()
        )


def test_sigkill_mid_judge_then_resume_scores_every_output_once(
    session: Session,
    mock_provider: Any,
    faulty_server: Callable[..., FaultyOpenAIServer],
    studio_env: Path,
) -> None:
    judge = faulty_server(latency_s=0.05)
    add_connection(
        session=session,
        data=ConnectionCreate(name="judge", kind="openai", base_url=judge.url),
    )
    app = create_app(session=session, name="Judged")
    assert app.id is not None
    # The fake judge echoes its prompt; the rubric (a column) puts a score in that echo.
    csv = "topic,grade\n" + "".join(
        f"topic {i},score: {0.9 if i % 2 == 0 else 0.1}\n" for i in range(ROWS)
    )
    version = upload_dataset(
        session=session, app_id=app.id, name="topics", data=csv.encode(), filename="t.csv"
    )
    run = create_run(
        session=session,
        app_id=app.id,
        dataset_version_id=version.id or 0,
        config=RunConfig(
            model="mock/echo", prompt=PromptTemplate(kind="completion", template="{{topic}}")
        ),
    )
    session.commit()
    assert run.id is not None
    run_sync(run_id=run.id)
    evaluation = create_evaluation(
        session=session,
        app_id=app.id,
        run_ids=[run.id],
        evaluators=[
            EvaluatorConfig(
                id="llm_judge",
                options={"rubric": "{{grade}}", "model": "judge/fake-chat", "retries": 0},
            )
        ],
    )
    assert evaluation.id is not None
    evaluation_id = evaluation.id

    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(evaluation_id)],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    kill_mid_work(child, lambda: _count(evaluation_id) >= 30, what="evaluation", timeout_s=90)

    before = _scored(evaluation_id)
    assert 30 <= len(before) < ROWS, "the kill must land mid-evaluation"
    judge.reset_counts()

    card = evaluate_sync(evaluation_id=evaluation_id, concurrency=8)  # resume here

    scored = _scored(evaluation_id)
    assert _count(evaluation_id) == ROWS  # one score per output, none twice
    assert scored == {i: i % 2 == 0 for i in range(ROWS)}
    line = card.line("A", "llm_judge")
    assert (line.judged, line.passed, line.errors) == (ROWS, ROWS // 2, 0)
    # Outputs scored before the kill were not judged again; each missing one was judged once.
    assert sum(judge.asked.values()) == ROWS - len(before)
    assert all(count == 1 for count in judge.asked.values())
