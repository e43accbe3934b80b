"""The Compare page, driven with AppTest against the mock provider."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from studio.core.templates import PromptTemplate
from studio.services.apps import create_app
from studio.services.comparison_preferences import preference_summary
from studio.services.comparisons import create_comparison, list_comparisons, parse_contender
from studio.services.datasets import upload_dataset
from studio.services.endpoints import list_endpoints
from studio.services.evaluations import EvaluatorConfig, evaluate_sync
from studio.services.jobs import job_for_evaluation, job_for_run, wait_job
from studio.services.runs import run_sync
from studio.services.variants import VariantConfig, create_variant, list_variants
from studio.store import session_scope
from studio.store.tables import ComparisonPreference
from studio.ui.compare_actions import _csv
from studio.ui.compare_detail import word_diff_html

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "compare.py")
# The mock model echoes its prompt: "echo: Say <word>" contains the expected word, while
# "echo: Shout <word>" does too; "Whisper" answers leave the word out (see _app).
CSV = b"word,expected\nhello,hello\nworld,world\ncats,cats\n"


def _open(query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(at: AppTest, kind: str) -> list[str]:
    return [str(e.value) for e in getattr(at, kind)]


def _frame(at: AppTest, column: str) -> Any:
    """The first table with this column (the summary has "Rows answered", preferences
    "Wins")."""
    for frame in at.dataframe:
        if column in frame.value.columns:
            return frame.value
    raise AssertionError(f"no table with a {column!r} column")


def _all_text(at: AppTest) -> str:
    kinds = ("markdown", "caption", "info", "success", "error", "warning", "text")
    return "\n".join(t for kind in kinds for t in _texts(at, kind))


@pytest.fixture
def app_id(mock_provider: Any) -> int:
    with session_scope() as session:
        app = create_app(session=session, name="Greetings")
        assert app.id is not None
        upload_dataset(
            session=session, app_id=app.id, name="words", data=CSV, filename="words.csv",
            expected_column="expected",
        )  # fmt: skip
        for name, template in (("say", "Say {{word}}"), ("whisper", "Whisper {{expected}}!")):
            create_variant(
                session=session, app_id=app.id, name=name,
                config=VariantConfig(model="mock/echo", prompt=PromptTemplate.completion(template),
                                     parameters={"temperature": 0.0, "max_tokens": 16}),
            )  # fmt: skip
        return app.id


def _stored(app_id: int, evaluators: bool = True) -> int:
    """A finished comparison of 'say' (A, baseline) and 'whisper' (B), scored by contains
    with the value "Say": A passes every row, B none (so they disagree on every row)."""
    with session_scope() as session:
        versions = {v.name: v.latest_version for v in list_variants(session=session, app_id=app_id)}
        comparison, missing = create_comparison(
            session=session, app_id=app_id, dataset_version_id=1,
            contenders=[parse_contender(f"variant:say@{versions['say']}"),
                        parse_contender("variant:whisper")],
            evaluators=[EvaluatorConfig(id="contains", options={"value": "Say"})] if evaluators
            else [],
            actor="ui",
        )  # fmt: skip
        comparison_id, evaluation_id = comparison.id or 0, comparison.evaluation_id
    for run_id in missing:
        run_sync(run_id=run_id)
    if evaluation_id is not None:
        evaluate_sync(evaluation_id=evaluation_id)
    return comparison_id


def test_without_apps_the_page_says_to_create_one() -> None:
    at = _open()
    assert any("No apps yet" in t and "Apps page" in t for t in _texts(at, "info"))


def test_an_app_without_a_dataset_points_to_datasets(mock_provider: Any) -> None:
    with session_scope() as session:
        create_app(session=session, name="Empty")
    at = _open()
    assert any("no dataset yet" in t and "Datasets page" in t for t in _texts(at, "info"))


def test_an_app_without_a_variant_points_to_the_playground(mock_provider: Any) -> None:
    with session_scope() as session:
        app = create_app(session=session, name="Data only")
        assert app.id is not None
        upload_dataset(session=session, app_id=app.id, name="w", data=CSV, filename="w.csv")
    at = _open()
    assert any("no saved variant yet" in t and "Playground" in t for t in _texts(at, "info"))


def test_one_contender_is_not_enough_and_no_evaluator_means_no_pass_rates(app_id: int) -> None:
    at = _open()
    assert any("No comparisons yet" in t for t in _texts(at, "info"))
    assert at.multiselect(key="cmp_variants").value == ["say@1"]
    assert at.button(key="cmp_compare").disabled
    captions = _texts(at, "caption")
    assert any("at least two contenders (now 1)" in t for t in captions)
    assert any("pass rates need evaluators" in t for t in captions)
    # the same prompt on the model at two temperatures: three contenders
    at.multiselect(key="cmp_models").set_value(["mock/echo"]).run()
    at.text_input(key="cmp_temps_mock_echo").set_value("0, 0.7").run()
    assert not at.button(key="cmp_compare").disabled
    assert any("3 contenders" in t and "temperature=0.7" in t for t in _texts(at, "caption"))
    at.text_input(key="cmp_temps_mock_echo").set_value("hot").run()
    assert any("'hot'" in t and "not a number" in t for t in _texts(at, "error"))
    assert at.button(key="cmp_compare").disabled


def test_compare_a_variant_with_a_model_runs_jobs_and_scores(app_id: int) -> None:
    at = _open()
    at.multiselect(key="cmp_models").set_value(["mock/echo"]).run()
    at.text_input(key="cmp_temps_mock_echo").set_value("0.7").run()
    at.checkbox(key="ev_use_contains").check().run()
    at.button(key="cmp_compare").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Started comparison 1" in t for t in _texts(at, "success"))
    with session_scope() as session:
        comparison = list_comparisons(session=session, app_id=app_id)[0]
    assert comparison.actor == "ui" and len(comparison.contenders) == 2
    for c in comparison.contenders:
        job = job_for_run(run_id=c["run_id"])
        assert job is not None, "each missing run is a job"
        wait_job(job_id=job.id, timeout=60)
    at.run()  # the runs are done: the page starts scoring
    assert comparison.evaluation_id is not None
    job = job_for_evaluation(evaluation_id=comparison.evaluation_id)
    assert job is not None, "the page started scoring once the runs were done"
    wait_job(job_id=job.id, timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    frame = _frame(at, "Rows answered")
    assert list(frame["Pass rate"]) == ["100%", "100%"]  # both echo the expected word
    assert "share no judged rows" not in _all_text(at)
    assert any(t.startswith("**B**:") for t in _texts(at, "markdown"))


def test_a_stored_comparison_shows_its_sentences_and_grid(app_id: int) -> None:
    comparison_id = _stored(app_id)
    at = _open({"comparison": str(comparison_id)})
    frame = _frame(at, "Rows answered")
    assert list(frame["Contender"]) == ["A (baseline)", "B"]
    assert list(frame["Pass rate"]) == ["100%", "0%"]
    assert list(frame["Rows answered"]) == ["3 of 3", "3 of 3"]
    text = _all_text(at)
    assert "**B**: whisper passes 3 fewer of 3 rows than say@1" in text
    assert "McNemar" in text  # the test's sentence
    assert "the true rate most likely lies" in text  # what the numbers mean
    # the grid: inputs first, then one column per contender with its badge and figures
    assert "Row 1 · **word**: hello" in text
    assert "echo: Say hello" in _texts(at, "text")
    assert "echo: Whisper hello\\!" not in _texts(at, "text")
    assert "echo: Whisper hello!" in _texts(at, "text")
    markdown = _texts(at, "markdown")
    assert markdown.count(":green-badge[:material/check: pass]") == 3  # A passes every row
    assert markdown.count(":red-badge[:material/close: fail]") == 3  # B fails every row
    assert any("ms" in t and "tokens" in t for t in _texts(at, "caption"))  # cell figures
    headers = _texts(at, "markdown")
    assert "**A · say@1**" in headers and "**B · whisper**" in headers
    assert "Rows 1 to 3 of 3 matching rows" in text


def test_the_disagree_and_search_filters(app_id: int) -> None:
    comparison_id = _stored(app_id)
    at = _open({"comparison": str(comparison_id)})
    at.checkbox(key="cmp_disagree").check().run()
    assert "Rows 1 to 3 of 3 matching rows" in _all_text(at)  # A passes, B fails: all rows
    at.text_input(key="cmp_search").set_value("cats").run()
    text = _all_text(at)
    assert "Rows 1 to 1 of 1 matching rows" in text
    assert "echo: Say cats" in _texts(at, "text") and "echo: Say hello" not in _texts(at, "text")
    at.text_input(key="cmp_search").set_value("nothing like it").run()
    assert any("No rows match these filters" in t for t in _texts(at, "info"))


def test_the_disagree_filter_leaves_out_rows_where_both_agree(app_id: int) -> None:
    with session_scope() as session:
        comparison, missing = create_comparison(
            session=session, app_id=app_id, dataset_version_id=1,
            contenders=[parse_contender("variant:say"), parse_contender("variant:whisper")],
            evaluators=[EvaluatorConfig(id="contains", options={"value": "l"})], actor="ui",
        )  # fmt: skip
        comparison_id, evaluation_id = comparison.id or 0, comparison.evaluation_id
    for run_id in missing:
        run_sync(run_id=run_id)
    assert evaluation_id is not None
    evaluate_sync(evaluation_id=evaluation_id)
    # "l": hello and world pass in both; "cats" fails in both; "Whisper" has no l... but the
    # word does: both contenders agree on every row.
    at = _open({"comparison": str(comparison_id)})
    at.checkbox(key="cmp_disagree").check().run()
    assert any("No rows match these filters" in t for t in _texts(at, "info"))


def test_blind_mode_hides_the_names_and_a_choice_is_stored(app_id: int) -> None:
    comparison_id = _stored(app_id)
    at = _open({"comparison": str(comparison_id)})
    at.toggle(key="cmp_blind").set_value(True).run()
    assert not any("-badge[" in t for t in _texts(at, "markdown")), "verdicts hidden too"
    headers = _texts(at, "markdown")
    assert "**A · say@1**" not in headers and "**B · whisper**" not in headers
    assert headers.count("**Output 1**") == 3 + 1  # each row, and the row detail
    assert "Blind mode: names are hidden" in _all_text(at)
    # pick the first shown output of row 1 as better: stored with the order shown, blind
    first = next(b for b in at.button if b.label == "Output 1 is better")
    first.click().run()
    assert not at.exception, [e.value for e in at.exception]
    with session_scope() as session:
        prefs = session.exec(select(ComparisonPreference)).all()
        summary = preference_summary(session=session, comparison_id=comparison_id)
    assert len(prefs) == 1 and prefs[0].blind and prefs[0].rater == "you"
    assert prefs[0].winner == prefs[0].shown[0]
    assert summary["rows_judged"] == 1
    assert any("Your choice: Output 1 is better" in t for t in _texts(at, "caption"))
    frame = _frame(at, "Wins")
    assert sorted(frame["Wins"]) == [0, 1]


def test_a_tie_click_outside_blind_mode_is_stored(app_id: int) -> None:
    comparison_id = _stored(app_id)
    at = _open({"comparison": str(comparison_id)})
    at.button(key=f"cmp_pref_{comparison_id}_2_tie").click().run()
    at.button(key=f"cmp_pref_{comparison_id}_1_B").click().run()
    with session_scope() as session:
        prefs = {p.row_index: p for p in session.exec(select(ComparisonPreference)).all()}
    assert prefs[2].winner == "tie" and not prefs[2].blind
    assert prefs[1].winner == "B" and prefs[1].shown == ["A", "B"]


def test_downloads_hold_the_rows_and_the_tests(app_id: int) -> None:
    comparison_id = _stored(app_id)
    at = _open({"comparison": str(comparison_id)})
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Download rows (CSV)", "Download summary and tests (CSV)"]
    rows = list(csv.DictReader(io.StringIO(_csv(comparison_id, "rows").decode("utf-8-sig"))))
    assert [r["word"] for r in rows] == ["hello", "world", "cats"]
    assert rows[0]["A (say@1) output"] == "echo: Say hello"
    assert [r["B (whisper) verdict"] for r in rows] == ["fail", "fail", "fail"]
    summary = list(csv.DictReader(io.StringIO(_csv(comparison_id, "summary").decode("utf-8-sig"))))
    assert [s["contender"] for s in summary] == ["A", "B"]
    assert summary[1]["only baseline passes"] == "3"
    assert "McNemar" in summary[1]["sentence"]


def test_deploy_the_winner_saves_a_model_contender_first(app_id: int) -> None:
    with session_scope() as session:
        comparison, missing = create_comparison(
            session=session, app_id=app_id, dataset_version_id=1,
            contenders=[parse_contender("variant:whisper"),
                        parse_contender("model:mock/echo,temperature=0.5")],
            evaluators=[EvaluatorConfig(id="contains")], actor="ui",
        )  # fmt: skip
        comparison_id, evaluation_id = comparison.id or 0, comparison.evaluation_id
    for run_id in missing:
        run_sync(run_id=run_id)
    assert evaluation_id is not None
    evaluate_sync(evaluation_id=evaluation_id)
    at = _open({"comparison": str(comparison_id)})
    assert at.selectbox(key="cmp_ship").value == "A"  # ties on pass rate: the first
    at.selectbox(key="cmp_ship").set_value("B").run()
    at.button(key="cmp_deploy").click().run()
    assert any("Type a name for the new variant" in t for t in _texts(at, "error"))
    at.text_input(key="cmp_variant_name").set_value("warm echo")
    at.text_input(key="cmp_endpoint").set_value("greetings-warm")
    at.button(key="cmp_deploy").click().run()
    assert not at.exception, [e.value for e in at.exception]
    success = " ".join(_texts(at, "success"))
    assert "Saved B (mock/echo (temperature=0.5)) as variant 'warm echo' v1." in success
    assert "Deployed 'warm echo' v1 to endpoint 'greetings-warm'" in success
    with session_scope() as session:
        endpoints = list_endpoints(session=session, app=app_id)
        variants = {v.name: v for v in list_variants(session=session, app_id=app_id)}
    assert [e.name for e in endpoints] == ["greetings-warm"]
    assert variants["warm echo"].model == "mock/echo"
    assert at.button(key="cmp_save_variant").disabled  # saved now


def test_add_contender_extends_a_stored_comparison(app_id: int) -> None:
    comparison_id = _stored(app_id, evaluators=False)
    at = _open({"comparison": str(comparison_id)})
    assert any("No evaluators were chosen" in t for t in _texts(at, "caption"))
    assert at.checkbox(key="cmp_disagree").disabled
    at.radio(key="cmp_add_kind").set_value("The same prompt on a model").run()
    at.selectbox(key="cmp_add_model").set_value("mock/echo")
    at.number_input(key="cmp_add_temperature").set_value(0.9).run()
    at.button(key="cmp_add").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Added C: mock/echo (temperature=0.9)" in t for t in _texts(at, "success")), (
        _texts(at, "success"),
        _texts(at, "error"),
    )
    with session_scope() as session:
        comparison = list_comparisons(session=session, app_id=app_id)[0]
    job = job_for_run(run_id=comparison.contenders[2]["run_id"])
    assert job is not None
    wait_job(job_id=job.id, timeout=60)
    at.run()
    assert list(_frame(at, "Rows answered")["Rows answered"]) == ["3 of 3"] * 3


def test_a_bad_deep_link_is_a_sentence(app_id: int) -> None:
    at = _open({"comparison": "99"})
    assert any("No comparison 99" in t for t in _texts(at, "error"))


def test_the_word_diff_escapes_outputs() -> None:
    html = word_diff_html("Hello <b>there</b> friend", "Hello <script>x</script> friend")
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html
    assert "<del" in html and "<ins" in html
    assert html.startswith("Hello ") and html.endswith(" friend")
