"""The evaluation read API: real evaluations made through the services, read over HTTP."""

from __future__ import annotations

import csv
import inspect
import io
import json
from typing import Any

from sqlmodel import Session

from studio.core.schemas import ChatCompletionResponse, Message
from studio.core.templates import PromptTemplate
from studio.gateway.routes.evaluations import router
from studio.services import api_keys
from studio.services.apps import create_app as create_studio_app
from studio.services.datasets import set_expected_column, upload_dataset
from studio.services.evaluations import EvaluatorConfig, create_evaluation, evaluate_sync
from studio.services.runs import RunConfig, create_run, run_sync
from tests.gateway.conftest import Deployed

CSV = "city,answer\n" + "".join(f"City {i},echo: City {i}\n" for i in range(9)) + "=SUM(A1),x\n"
RUBRIC = "Names the city."


def _verdict(passed: bool) -> ChatCompletionResponse:
    body = {"verdict": "pass" if passed else "fail", "score": 0.9 if passed else 0.1,
            "reason": "It names the city." if passed else "No city named."}  # fmt: skip
    return ChatCompletionResponse(
        message=Message(role="assistant", content=json.dumps(body)), finish_reason="stop"
    )


def make_evaluation(session: Session, app_id: int, provider: Any, *, judge: bool = True) -> int:
    """A finished evaluation of a 10-row mock/echo run in app ``app_id``: exact match
    (9 of 10 pass: the last row expects "x") and, with ``judge``, an LLM judge on mock/echo
    that passes rows 1-7 and fails rows 8-10."""
    version = upload_dataset(
        session=session, app_id=app_id, name="cities", data=CSV.encode(), filename="c.csv"
    )
    assert version.id is not None
    version = set_expected_column(session=session, version_id=version.id, expected_column="answer")
    assert version.id is not None
    session.commit()
    run = create_run(
        session=session,
        app_id=app_id,
        dataset_version_id=version.id,
        config=RunConfig(
            model="mock/echo", prompt=PromptTemplate(kind="completion", template="{{city}}")
        ),
    )
    session.commit()
    assert run.id is not None
    run_sync(run_id=run.id)
    evaluators = [EvaluatorConfig(id="exact_match")]
    if judge:
        evaluators.append(
            EvaluatorConfig(
                id="llm_judge", key="judge", options={"rubric": RUBRIC, "model": "mock/echo"}
            )
        )
        provider.replies.extend(_verdict(i < 7) for i in range(10))
    evaluation = create_evaluation(
        session=session, app_id=app_id, run_ids=[run.id], evaluators=evaluators, name="Cities"
    )
    assert evaluation.id is not None
    evaluate_sync(evaluation_id=evaluation.id, concurrency=1)  # judge replies in row order
    return evaluation.id


def _other_key(session: Session) -> tuple[int, dict[str, str]]:
    other = create_studio_app(session=session, name="Other app")
    assert other.id is not None
    key = api_keys.create_key(session=session, app=other.id, name="other")
    session.commit()
    return other.id, {"Authorization": f"Bearer {key.secret}"}


def test_an_app_key_lists_its_apps_evaluations_with_headline_numbers(
    deployed: Deployed, session: Session
) -> None:
    evaluation_id = make_evaluation(session, deployed.app_id, deployed.provider)
    other_id, other_headers = _other_key(session)
    other_evaluation = make_evaluation(session, other_id, deployed.provider, judge=False)
    c = deployed.client

    listed = c.get("/api/v1/evaluations", headers=deployed.headers)
    assert listed.status_code == 200, listed.text
    (line,) = listed.json()  # the other app's evaluation is not listed
    assert (line["id"], line["name"], line["status"]) == (evaluation_id, "Cities", "done")
    assert [e["key"] for e in line["evaluators"]] == ["exact_match", "judge"]
    assert line["contenders"][0]["key"] == "A"
    # overall: a row passes when both pass; exact match fails row 10, the judge rows 8-10
    assert line["overall_pass_rate"] == 0.7
    assert line["summary"]["contenders"]["A"]["passed"] == 7

    by_name = c.get(
        "/api/v1/evaluations", params={"app": "Marketing copy"}, headers=deployed.headers
    )
    by_id = c.get(
        "/api/v1/evaluations", params={"app": str(deployed.app_id)}, headers=deployed.headers
    )
    assert [e["id"] for e in by_name.json()] == [e["id"] for e in by_id.json()] == [evaluation_id]

    refused = c.get("/api/v1/evaluations", params={"app": "Other app"}, headers=deployed.headers)
    assert refused.status_code == 403
    assert (
        c.get("/api/v1/evaluations", params={"app": "Nope"}, headers=deployed.headers).status_code
        == 404
    )
    assert [e["id"] for e in c.get("/api/v1/evaluations", headers=other_headers).json()] == [
        other_evaluation
    ]
    everything = c.get("/api/v1/evaluations", headers=deployed.admin_headers).json()
    assert [e["id"] for e in everything] == [other_evaluation, evaluation_id]  # newest first


def test_the_record_names_contenders_and_evaluators_with_their_options(
    deployed: Deployed, session: Session
) -> None:
    evaluation_id = make_evaluation(session, deployed.app_id, deployed.provider)
    r = deployed.client.get(f"/api/v1/evaluations/{evaluation_id}", headers=deployed.headers)
    assert r.status_code == 200, r.text
    record = r.json()
    assert record["status"] == "done" and record["error"] is None
    assert record["app_id"] == deployed.app_id
    (contender,) = record["contenders"]
    assert contender["key"] == "A" and "mock/echo" in contender["label"]
    judge = next(e for e in record["evaluators"] if e["key"] == "judge")
    assert judge["id"] == "llm_judge"
    assert judge["options"]["rubric"] == RUBRIC and judge["options"]["threshold"] == 0.5
    assert len(judge["version"]) == 16
    assert record["summary"]["overall_pass_rate"] == 0.7


def test_the_report_card_has_intervals_failures_and_contender_labels(
    deployed: Deployed, session: Session
) -> None:
    evaluation_id = make_evaluation(session, deployed.app_id, deployed.provider)
    r = deployed.client.get(f"/api/v1/evaluations/{evaluation_id}/report", headers=deployed.headers)
    assert r.status_code == 200, r.text
    card = r.json()
    assert card["evaluation_id"] == evaluation_id and card["status"] == "done"
    assert list(card["contenders"]) == ["A"] and "mock/echo" in card["contenders"]["A"]
    lines = {(line["contender"], line["evaluator"]): line for line in card["lines"]}
    exact = lines[("A", "exact_match")]
    assert (exact["judged"], exact["passed"], exact["errors"]) == (10, 9, 0)
    assert exact["pass_rate"]["low"] < 0.9 < exact["pass_rate"]["high"]
    assert [f["row"] for f in exact["failures"]] == [9]  # the "=SUM(A1)" row expects "x"
    judge = lines[("A", "judge")]
    assert (judge["judged"], judge["passed"]) == (10, 7)
    assert {f["reason"] for f in judge["failures"]} == {"No city named."}
    assert card["overall_pass_rate"] == 0.7


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))


def test_results_download_as_wide_and_long_csv(deployed: Deployed, session: Session) -> None:
    evaluation_id = make_evaluation(session, deployed.app_id, deployed.provider)
    url = f"/api/v1/evaluations/{evaluation_id}/results"

    wide = deployed.client.get(url, headers=deployed.headers)  # wide is the default
    assert wide.status_code == 200, wide.text
    assert wide.headers["content-type"].startswith("text/csv")
    assert wide.headers["content-disposition"] == (
        f'attachment; filename="evaluation-{evaluation_id}-wide.csv"'
    )
    lines = _csv(wide.text)
    assert len(lines) == 10  # one per dataset row
    assert lines[0]["A output"] == "echo: City 0" and lines[0]["A judge pass"] == "pass"
    assert lines[9]["city"] == "'=SUM(A1)"  # a formula cell is escaped for spreadsheets
    assert lines[9]["A exact_match pass"] == "fail" and lines[9]["A overall"] == "fail"

    long = deployed.client.get(url, params={"format": "long"}, headers=deployed.headers)
    assert long.status_code == 200, long.text
    assert long.headers["content-disposition"].endswith(f'evaluation-{evaluation_id}-long.csv"')
    verdicts = _csv(long.text)
    assert len(verdicts) == 20  # 10 rows x 2 evaluators x 1 sample
    assert {v["evaluator"] for v in verdicts} == {"exact_match", "judge"}
    assert {v["model"] for v in verdicts} == {"mock/echo"}

    bad = deployed.client.get(url, params={"format": "xlsx"}, headers=deployed.headers)
    assert bad.status_code == 422


def test_another_apps_evaluation_is_not_found_but_an_admin_key_reads_it(
    deployed: Deployed, session: Session
) -> None:
    evaluation_id = make_evaluation(session, deployed.app_id, deployed.provider, judge=False)
    _, other_headers = _other_key(session)
    c = deployed.client
    for suffix in ("", "/report", "/results", "/results?format=long"):
        url = f"/api/v1/evaluations/{evaluation_id}{suffix}"
        refused = c.get(url, headers=other_headers)
        assert refused.status_code == 404, (url, refused.text)
        assert "Cities" not in refused.text and "echo" not in refused.text
        assert c.get(url, headers=deployed.admin_headers).status_code == 200, url
        assert c.get(url).status_code == 401, url
    missing = c.get("/api/v1/evaluations/999999", headers=deployed.admin_headers)
    assert missing.status_code == 404


def test_the_routes_read_the_database_off_the_event_loop() -> None:
    # sync routes run in FastAPI's threadpool; an async one would block the loop on the database
    assert router.routes
    for route in router.routes:
        assert not inspect.iscoroutinefunction(route.endpoint), route.path  # type: ignore[attr-defined]


def test_an_id_no_table_can_hold_is_not_found_not_a_server_error(deployed: Deployed) -> None:
    for huge in ("99999999999999999999999", "2147483648", "0", "-3"):
        response = deployed.client.get(f"/api/v1/evaluations/{huge}", headers=deployed.headers)
        assert response.status_code in (404, 422), response.text
        assert response.json()["error"]["message"]
