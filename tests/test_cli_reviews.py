"""`studio review`: create from a run, status in sentences, export and import CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from sqlmodel import select

from studio.core.identity import acting_as
from studio.services.reviews import next_item, rate
from studio.services.users import actor_for_user, create_user
from studio.store import session_scope

CSV = "event\n" + "".join(f"Launch {i}\n" for i in range(10))


def _setup(cli: Any, tmp_path: Path) -> None:
    data = tmp_path / "events.csv"
    data.write_text(CSV)
    assert cli("app", "create", "Marketing").code == 0
    assert cli("dataset", "upload", "--app", "Marketing", str(data)).code == 0
    made = cli(
        "variant", "create", "--app", "Marketing", "--name", "plain", "--model", "mock/echo",
        "--prompt", "About {{event}}",
    )  # fmt: skip
    assert made.code == 0, made.err
    ran = cli("run", "--app", "Marketing", "--variant", "plain", "--dataset", "1")
    assert ran.code == 0, ran.err


def test_create_rate_status_export_import(cli: Any, tmp_path: Path, mock_provider: Any) -> None:
    _setup(cli, tmp_path)
    made = cli(
        "review", "create", "--app", "Marketing", "--source", "run:1", "--name", "Tone",
        "--task", "Describe the event", "--good", "Names it", "--raters", "2", "--json",
    )  # fmt: skip
    assert made.code == 0, made.err
    review_id = made.json()["id"]
    assert made.json()["items"] == 10 and made.json()["needed"] == 20
    with session_scope() as session:
        raters = [
            actor_for_user(create_user(session=session, name=n, password="a long password 1",
                                       role="reviewer"))
            for n in ("rita", "ravi")
        ]  # fmt: skip
    for who in raters:
        with acting_as(who), session_scope() as session:
            while (item := next_item(session=session, review_id=review_id)) is not None:
                rate(session=session, review_id=review_id, item_id=item.item_id, rating="good")
    status = cli("review", "status", str(review_id))
    assert status.code == 0, status.err
    assert "20 of 20 ratings given (100%)" in status.out
    assert "10 of 10 decided items are good" in status.out
    assert "cannot be measured" in status.out  # every rating is 'good': a sentence, not NaN
    out, summary = tmp_path / "ratings.csv", tmp_path / "summary.csv"
    exported = cli("review", "export", str(review_id), "--out", str(out), "--summary", str(summary))
    assert exported.code == 0 and "Wrote 20 rating(s)" in exported.out
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert len(rows) == 20
    sheet = tmp_path / "more.csv"
    sheet.write_text("item,rater,rating\n" + f"{rows[0]['item']},sam,bad\n")
    imported = cli("review", "import", str(review_id), str(sheet))
    assert imported.code == 0 and "Imported 1 rating(s)" in imported.out
    listed = cli("review", "list", "--json").json()
    assert listed[0]["given"] == 20  # the item already had its two ratings


def test_bad_input_is_one_line(cli: Any, tmp_path: Path, mock_provider: Any) -> None:
    _setup(cli, tmp_path)
    wrong = cli("review", "create", "--app", "Marketing", "--source", "model:1", "--name", "x",
                "--task", "t")  # fmt: skip
    assert wrong.code == 1 and "is not run:ID" in wrong.err
    missing = cli("review", "create", "--app", "Marketing", "--source", "run:99", "--name", "x",
                  "--task", "t")  # fmt: skip
    assert missing.code == 1 and "No run 99" in missing.err
    kind = cli("review", "create", "--app", "Marketing", "--source", "run:1", "--name", "x",
               "--task", "t", "--kind", "stars")  # fmt: skip
    assert kind.code == 1 and "kind" in kind.err and "Traceback" not in kind.err
    bad_sheet = tmp_path / "bad.csv"
    bad_sheet.write_text("item,rater,rating\n1,sam,meh\n")
    made = cli("review", "create", "--app", "Marketing", "--source", "run:1", "--name", "x",
               "--task", "t", "--json")  # fmt: skip
    refused = cli("review", "import", str(made.json()["id"]), str(bad_sheet))
    assert refused.code == 1 and "line 2: rating 'meh'" in refused.err
    assert "No reviews yet" not in cli("review", "list").out


def test_judge_against_the_people(cli: Any, tmp_path: Path, mock_provider: Any) -> None:
    """`studio review judge`: the judge's agreement with the people, a sentence and the
    confusion table (and the same as JSON)."""
    from studio.services.evaluations import EvaluatorConfig, create_evaluation, evaluate_sync

    _setup(cli, tmp_path)
    made = cli(
        "review", "create", "--app", "Marketing", "--source", "run:1", "--name", "Tone",
        "--task", "Describe the event", "--raters", "1", "--json",
    )  # fmt: skip
    assert made.code == 0, made.err
    review_id = made.json()["id"]
    with session_scope() as session:
        evaluation = create_evaluation(
            session=session, app_id=1, name="judge", run_ids=[1],
            evaluators=[EvaluatorConfig(id="contains", options={"value": "Launch 1"})],
        )  # fmt: skip
        evaluation_id = evaluation.id or 0
        rita = actor_for_user(
            create_user(session=session, name="rita", password="a long password 1",
                        role="reviewer")
        )  # fmt: skip
    evaluate_sync(evaluation_id=evaluation_id)
    # rita calls rows 1 and 7 good; the "judge" passes only the output naming Launch 1
    with acting_as(rita), session_scope() as session:
        while (item := next_item(session=session, review_id=review_id)) is not None:
            rating = "good" if item.row_index in (1, 7) else "bad"
            rate(session=session, review_id=review_id, item_id=item.item_id, rating=rating)

    args = ["review", "judge", str(review_id), "--evaluation", str(evaluation_id)]
    shown = cli(*args, "--evaluator", "contains")
    assert shown.code == 0, shown.err
    assert "agrees with the human majority on 90% of 10 items" in shown.out, shown.out
    assert "Cohen's kappa 0.62" in shown.out and "People (rows)" in shown.out
    found = cli(*args, "--evaluator", "contains", "--json").json()
    assert found["percent"] == 0.9 and found["confusion"] == [[8, 0], [1, 1]]
    assert [d["row_index"] for d in found["disagreements"]] == [7]

    wrong = cli(*args, "--evaluator", "nope")
    assert wrong.code == 1 and "Traceback" not in wrong.err and wrong.err.strip(), wrong.err


def test_create_from_an_endpoints_logged_requests(
    cli: Any, tmp_path: Path, mock_provider: Any
) -> None:
    """`--source endpoint:NAME --sample N`: the endpoint's last N answered requests."""
    import json

    from studio.store.tables import Endpoint, RequestLog

    _setup(cli, tmp_path)
    deployed = cli("deploy", "--app", "Marketing", "--variant", "plain", "--name", "events")
    assert deployed.code == 0, deployed.err
    with session_scope() as session:
        endpoint = session.exec(select(Endpoint).where(Endpoint.name == "events")).one()
        for n in range(4):
            session.add(
                RequestLog(request_id=f"r{n}", endpoint_id=endpoint.id, app_id=endpoint.app_id,
                           route="POST /v1/endpoints/events/generate", status_code=200,
                           latency_ms=5.0, request_body=json.dumps({"inputs": {"event": f"E{n}"}}),
                           response_body=json.dumps({"output": f"About E{n}"}))
            )  # fmt: skip
    made = cli(
        "review", "create", "--app", "Marketing", "--source", "endpoint:events", "--sample", "3",
        "--name", "Live traffic", "--task", "Describe the event", "--json",
    )  # fmt: skip
    assert made.code == 0, made.err
    assert made.json()["items"] == 3  # 3 of the 4 logged requests (the newest ones)

    wrong = cli(
        "review", "create", "--app", "Marketing", "--source", "endpoint:nope", "--name", "x",
        "--task", "t",
    )  # fmt: skip
    assert wrong.code == 1 and "No endpoint 'nope' in this app." in wrong.err
    assert "Traceback" not in wrong.err
