"""An LLM-judge evaluation records the usage of every judge call, failed ones included."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session, select

from studio.core.errors import ProviderRequestError
from studio.core.schemas import ChatCompletionResponse, Message
from studio.core.templates import PromptTemplate
from studio.services.apps import create_app
from studio.services.datasets import upload_dataset
from studio.services.evaluations import EvaluatorConfig, create_evaluation, evaluate_sync
from studio.services.runs import RunConfig, create_run, run_sync
from studio.store.tables import ModelCall

ROWS = 12


def _verdict() -> ChatCompletionResponse:
    body = {"verdict": "pass", "score": 0.8, "reason": "Fine."}
    return ChatCompletionResponse(
        message=Message(role="assistant", content=json.dumps(body)),
        finish_reason="stop",
        prompt_tokens=50,
        response_tokens=9,
    )


def test_every_judge_call_is_recorded_as_evaluation_usage(
    session: Session, mock_provider: Any
) -> None:
    app = create_app(session=session, name="Usage")
    assert app.id is not None
    csv = "city\n" + "".join(f"City {i}\n" for i in range(ROWS))
    version = upload_dataset(
        session=session, app_id=app.id, name="c", data=csv.encode(), filename="c.csv"
    )
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
    # one judge call is refused by the provider: an evaluator error, and a usage row with it
    mock_provider.replies.extend([_verdict()] * (ROWS - 1))
    mock_provider.replies.append(ProviderRequestError("HTTP 400: bad request", provider="mock"))
    judge = EvaluatorConfig(
        id="llm_judge", options={"rubric": "Names a city.", "model": "mock/echo", "retries": 0}
    )
    evaluation = create_evaluation(
        session=session, app_id=app.id, run_ids=[run.id], evaluators=[judge]
    )
    assert evaluation.id is not None

    card = evaluate_sync(evaluation_id=evaluation.id, concurrency=4)

    line = card.line("A", "llm_judge")
    assert (line.judged, line.passed, line.errors) == (ROWS - 1, ROWS - 1, 1)
    calls = session.exec(select(ModelCall).where(ModelCall.source == "evaluation")).all()
    assert len(calls) == ROWS
    assert {c.model_name for c in calls} == {"mock/echo"}
    ok = [c for c in calls if c.error is None]
    assert len(ok) == ROWS - 1
    assert {(c.prompt_tokens, c.response_tokens) for c in ok} == {(50, 9)}
    (failed,) = [c for c in calls if c.error is not None]
    assert "bad request" in failed.error and failed.prompt_tokens == 0
