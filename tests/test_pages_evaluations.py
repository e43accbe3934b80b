"""The Evaluations page, driven with AppTest against the mock provider."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from studio.core.templates import PromptTemplate
from studio.evaluators.stats import wilson_interval
from studio.services.apps import create_app
from studio.services.datasets import upload_dataset
from studio.services.evaluations import list_evaluations
from studio.services.jobs import job_for_evaluation, job_for_run, wait_job
from studio.services.variants import VariantConfig, create_variant
from studio.store import session_scope
from studio.ui.evaluations_report import export_csv

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "evaluations.py")
# The mock model answers "echo: Say <word>": "hello" and "cats" contain the expected
# output, "world" does not contain "planet".
CSV = b"word,expected\nhello,hello\nworld,planet\ncats,cats\n"


def _open() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _table(at: AppTest, column: str) -> Any:
    """The first table with this column (the summary has "Judged", the outputs "Overall")."""
    for frame in at.dataframe:
        if column in frame.value.columns:
            return frame.value
    raise AssertionError(f"no table with a {column!r} column")


def _texts(at: AppTest, kind: str) -> list[str]:
    return [str(e.value) for e in getattr(at, kind)]


@pytest.fixture
def app_id(mock_provider: Any) -> int:
    with session_scope() as session:
        app = create_app(session=session, name="Greetings")
        assert app.id is not None
        upload_dataset(
            session=session,
            app_id=app.id,
            name="words",
            data=CSV,
            filename="words.csv",
            expected_column="expected",
        )
        create_variant(
            session=session,
            app_id=app.id,
            name="say it",
            config=VariantConfig(
                model="mock/echo",
                prompt=PromptTemplate.completion("Say {{word}}"),
                parameters={"temperature": 0.0, "max_tokens": 16},
            ),
        )
        return app.id


def _finish(at: AppTest, app_id: int) -> AppTest:
    """Let the evaluation's runs and then its scoring job end, as the page's timers would."""
    with session_scope() as session:
        evaluation = list_evaluations(session=session, app_id=app_id)[0]
    for contender in evaluation.contenders:
        job = job_for_run(run_id=contender["run_id"])
        if job is not None:
            wait_job(job_id=job.id, timeout=60)
    at.run()  # the runs are done: the page starts scoring
    assert evaluation.id is not None
    job = job_for_evaluation(evaluation_id=evaluation.id)
    assert job is not None, "the page started scoring once the runs were done"
    wait_job(job_id=job.id, timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_without_apps_the_page_says_to_create_one() -> None:
    at = _open()
    assert any("No apps yet" in t and "Apps page" in t for t in _texts(at, "info"))


def test_an_app_without_a_dataset_points_to_datasets(mock_provider: Any) -> None:
    with session_scope() as session:
        create_app(session=session, name="Empty")
    at = _open()
    assert any("no dataset yet" in t and "Datasets page" in t for t in _texts(at, "info"))


def test_an_app_without_variants_or_runs_points_to_the_playground(mock_provider: Any) -> None:
    with session_scope() as session:
        app = create_app(session=session, name="Data only")
        assert app.id is not None
        upload_dataset(session=session, app_id=app.id, name="w", data=CSV, filename="w.csv")
    at = _open()
    infos = _texts(at, "info")
    assert any("nothing to evaluate" in t and "Playground" in t for t in infos)
    assert any("No evaluations yet" in t and "Evaluate" in t for t in infos)


def test_the_form_says_which_column_is_the_reference(app_id: int) -> None:
    at = _open()
    assert at.multiselect(key="ev_variants").value == ["say it@1"]
    assert at.button(key="ev_evaluate").disabled  # no evaluator ticked yet
    assert any("pick an evaluator" in t for t in _texts(at, "caption"))
    at.checkbox(key="ev_use_contains").check().run()
    assert any("expected-output column, **expected**" in t for t in _texts(at, "caption"))
    assert not at.button(key="ev_evaluate").disabled
    # the option form comes from the Options model: defaults and descriptions as help
    assert at.text_input(key="ev_opt_contains_value").value == ""
    assert "Empty: the dataset's expected output" in (
        at.text_input(key="ev_opt_contains_value").help or ""
    )


def test_evaluate_two_evaluators_and_read_the_report_card(app_id: int) -> None:
    at = _open()
    at.checkbox(key="ev_use_contains").check()
    at.checkbox(key="ev_use_length").check().run()
    at.number_input(key="ev_opt_length_max").set_value(3).run()
    at.text_input(key="ev_name").set_value("first check")
    at.button(key="ev_evaluate").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Started evaluation 1" in t for t in _texts(at, "success"))
    at = _finish(at, app_id)

    summary = _table(at, "Judged")
    rows = {r["Evaluator"]: r for r in summary.to_dict("records")}
    assert set(rows) == {"Overall (every evaluator)", "Contains", "Length"}
    assert (rows["Contains"]["Judged"], rows["Contains"]["Passed"]) == (3, 2)
    assert rows["Contains"]["Pass rate"] == "67%"
    ci = wilson_interval(2, 3)
    assert ci is not None
    assert rows["Contains"]["95% CI"] == f"{ci.low:.0%} to {ci.high:.0%}"
    assert rows["Length"]["Pass rate"] == "100%"
    assert rows["Overall (every evaluator)"]["Passed"] == 2
    captions = " ".join(_texts(at, "caption"))
    assert "most likely lies in this range" in captions
    assert "left out of the pass rate" in captions

    outputs = _table(at, "Overall")
    assert list(outputs["Row"]) == [1, 2, 3]
    assert list(outputs["Overall"]) == ["✓ pass", "✗ fail", "✓ pass"]
    # failed rows only, with the chosen evaluator's reason
    at.selectbox(key="ev_filter_evaluator").set_value("contains")
    at.checkbox(key="ev_filter_failed").check().run()
    failed = _table(at, "Overall")
    assert list(failed["Row"]) == [2]
    assert "planet" in failed["Reason"].iloc[0]
    # the row detail: prompt, output, reference and each verdict with its reason
    assert any("Say world" in c.value for c in at.code)
    assert any("planet" in c.value for c in at.code)
    assert any(t.startswith("Contains: fail") for t in _texts(at, "error"))
    assert any(t.startswith("Length: pass") for t in _texts(at, "success"))
    # a search
    at.checkbox(key="ev_filter_failed").uncheck()
    at.text_input(key="ev_filter_search").set_value("cats").run()
    assert list(_table(at, "Overall")["Row"]) == [3]

    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Download results (wide CSV)", "Download results (long CSV)"]
    assert at.query_params["evaluation"] in ("1", ["1"])  # the deep link to it


def test_the_downloads_hold_every_row_and_verdict(app_id: int) -> None:
    at = _open()
    at.checkbox(key="ev_use_contains").check().run()
    at.button(key="ev_evaluate").click().run()
    _finish(at, app_id)
    wide = list(csv.DictReader(io.StringIO(export_csv(1, "wide").decode("utf-8-sig"))))
    assert [r["row"] for r in wide] == ["1", "2", "3"]
    assert [r["word"] for r in wide] == ["hello", "world", "cats"]
    assert [r["A contains pass"] for r in wide] == ["pass", "fail", "pass"]
    assert wide[0]["A output"] == "echo: Say hello"
    long = list(csv.DictReader(io.StringIO(export_csv(1, "long").decode("utf-8-sig"))))
    assert len(long) == 3
    assert {r["evaluator"] for r in long} == {"contains"}
    assert all(r["model"] == "mock/echo" for r in long)


def test_an_invalid_option_is_a_sentence_and_starts_nothing(app_id: int) -> None:
    at = _open()
    at.checkbox(key="ev_use_llm_judge").check().run()
    at.text_area(key="ev_opt_llm_judge_rubric").set_value("ok").run()  # under 3 characters
    at.button(key="ev_evaluate").click().run()
    assert not at.exception
    errors = _texts(at, "error")
    assert any(e.startswith("Invalid options for llm_judge: rubric") for e in errors), errors
    with session_scope() as session:
        assert list_evaluations(session=session, app_id=app_id) == []


def test_a_bad_json_schema_is_a_sentence(app_id: int) -> None:
    at = _open()
    at.checkbox(key="ev_use_json_schema").check().run()
    at.text_area(key="ev_opt_json_schema_json_schema").set_value('{"type": ').run()
    at.button(key="ev_evaluate").click().run()
    assert any("json_schema: is not JSON" in e for e in _texts(at, "error"))


def test_a_reload_finds_the_evaluation_again(app_id: int) -> None:
    at = _open()
    at.checkbox(key="ev_use_contains").check().run()
    at.button(key="ev_evaluate").click().run()
    _finish(at, app_id)
    fresh = AppTest.from_file(PAGE, default_timeout=60)
    fresh.query_params["evaluation"] = "1"
    fresh.run()
    assert not fresh.exception
    assert fresh.selectbox(key="ev_selected").value == 1
    assert _table(fresh, "Judged")["Passed"].tolist()[0] == 2
    assert any("Each point is one finished evaluation" in t for t in _texts(fresh, "caption"))


def test_a_judge_that_cannot_answer_is_an_evaluator_error_not_a_failure(app_id: int) -> None:
    at = _open()
    at.checkbox(key="ev_use_llm_judge").check().run()
    at.text_area(key="ev_opt_llm_judge_rubric").set_value("Says the word.")
    judge = at.selectbox(key="ev_opt_llm_judge_model")
    assert judge.value == "builtin/smollm2-135m-instruct"  # the default judge
    judge.set_value("mock/echo")  # a connected provider's model: it echoes, never JSON
    at.number_input(key="ev_opt_llm_judge_retries").set_value(0).run()
    at.button(key="ev_evaluate").click().run()
    at = _finish(at, app_id)
    row = _table(at, "Judged").to_dict("records")[1]
    assert (row["Evaluator"], row["Judged"], row["Errors"], row["Pass rate"]) == (
        "LLM judge",
        0,
        3,
        "-",
    )
    warnings = _texts(at, "warning")
    assert any("could not judge 3 output(s)" in w and "not failed outputs" in w for w in warnings)
    assert list(_table(at, "Overall")["LLM judge"]) == ["⚠ error"] * 3
    assert not any(t.startswith("LLM judge: fail") for t in _texts(at, "error"))
    # the trend says why this finished evaluation draws no point, instead of "none finished"
    [trend] = [t for t in _texts(at, "info") if "pass rate" in t]
    assert "evaluation 1" in trend and "none of its outputs could be judged" in trend
    assert "No finished evaluation yet" not in " ".join(_texts(at, "info"))
