"""The Playground page, driven with AppTest against the mock provider."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from studio.core.errors import ProviderUnavailableError
from studio.services.apps import create_app
from studio.services.datasets import upload_dataset
from studio.services.run_results import list_runs
from studio.services.runs import list_results
from studio.services.variants import history, list_variants
from studio.store import session_scope
from studio.ui.run_jobs import run_jobs

ROOT = Path(__file__).resolve().parent.parent
PLAYGROUND = str(ROOT / "pages" / "playground.py")
CSV = (
    b"event,demographic,size\n"
    b"Launch party,students,40\nWine tasting,retirees,12\nHackathon,developers,=90\n"
)
TEMPLATE = "Invite {{demographic}} to the {{event}} ({{size}} seats)"


@pytest.fixture
def app_with_data(mock_provider: Any) -> int:
    with session_scope() as session:
        app = create_app(session=session, name="Marketing copy")
        assert app.id is not None
        upload_dataset(
            session=session, app_id=app.id, name="events", data=CSV, filename="events.csv"
        )
        return app.id


def _open() -> AppTest:
    at = AppTest.from_file(PLAYGROUND, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _write(at: AppTest, template: str = TEMPLATE, model: str = "mock/echo") -> AppTest:
    at.text_area(key="pg_template").set_value(template)
    at.selectbox(key="pg_model").set_value(model)
    return at.run()


def _generate_and_wait(at: AppTest) -> AppTest:
    at.button(key="pg_generate").click().run()
    assert not at.exception, [e.value for e in at.exception]
    run_id = at.session_state["pg_run_id"]
    job = run_jobs().get(run_id)
    assert job is not None and job.wait(timeout=60)
    return at.run()


def test_without_apps_the_page_says_to_create_one() -> None:
    at = _open()
    assert any("No apps yet" in i.value for i in at.info)


def test_an_app_without_data_can_start_from_the_sample_dataset() -> None:
    with session_scope() as session:
        create_app(session=session, name="Marketing copy")
    at = _open()
    assert any("has no dataset yet" in i.value for i in at.info)
    at.button(key="pg_add_sample").click().run()
    assert not at.exception
    assert "{{event}}" in at.text_area(key="pg_template").value
    assert at.button(key="pg_generate").label == "Generate all 20 rows"
    assert any("`event`" in m.value for m in at.markdown)


def test_model_list_offers_builtins_and_connected_models(app_with_data: int) -> None:
    at = _open()
    options = at.selectbox(key="pg_model").options
    assert "builtin/smollm2-135m-instruct" in options
    assert "mock/echo" in options
    assert "builtin/all-minilm-l6-v2" not in options  # embeddings cannot write text


def test_preview_renders_the_chosen_row(app_with_data: int) -> None:
    at = _write(_open())
    at.number_input(key="pg_preview_row").set_value(2).run()
    assert any("Invite retirees to the Wine tasting (12 seats)" in c.value for c in at.code)


def test_a_missing_column_is_named_with_a_suggestion(app_with_data: int) -> None:
    at = _write(_open(), template="Invite {{demographics}} to {{event}}")
    messages = [e.value for e in at.error]
    assert any(
        "no column 'demographics'" in m and "did you mean 'demographic'" in m for m in messages
    )
    assert at.button(key="pg_generate").disabled
    assert at.button(key="pg_try_button").disabled


def test_try_one_row_shows_the_output_and_saves_nothing(app_with_data: int) -> None:
    at = _write(_open())
    at.button(key="pg_try_button").click().run()
    assert not at.exception
    assert any("echo: Invite students to the Launch party (40 seats)" in i.value for i in at.info)
    with session_scope() as session:
        assert list_runs(session=session, app_id=app_with_data) == []


def test_generate_answers_every_row_and_the_csv_download_matches(app_with_data: int) -> None:
    at = _generate_and_wait(_write(_open()))
    table = at.dataframe[0].value
    assert list(table["output"]) == [
        "echo: Invite students to the Launch party (40 seats)",
        "echo: Invite retirees to the Wine tasting (12 seats)",
        "echo: Invite developers to the Hackathon (=90 seats)",
    ]
    assert {"event", "latency (ms)", "prompt tokens", "cost", "error"} <= set(table.columns)
    assert at.metric[0].value == "3 / 3"
    assert at.metric[1].value == "0"
    with session_scope() as session:
        run_id = list_runs(session=session, app_id=app_with_data)[0].id
        assert run_id is not None
        from studio.services.run_results import export_results

        data = export_results(session=session, run_id=run_id, fmt="csv")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert [r["event"] for r in rows] == ["Launch party", "Wine tasting", "Hackathon"]
    assert rows[2]["size"] == "'=90"  # a formula cell is escaped for spreadsheets
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Download CSV", "Download JSON Lines"]


def test_failed_rows_show_errors_and_rerun_answers_only_them(
    app_with_data: int, mock_provider: Any
) -> None:
    at = _write(_open())
    at.number_input(key="pg_concurrency").set_value(1).run()
    mock_provider.replies.append(
        ProviderUnavailableError("The provider is down (503).", provider="mock")
    )
    at = _generate_and_wait(at)
    table = at.dataframe[0].value
    failed = table["error"][table["error"] != ""]  # rows without an error show an empty cell
    assert len(failed) == 1
    assert "The provider is down" in str(failed.iloc[0])
    assert at.metric[1].value == "1"
    calls_before = len(mock_provider.calls)
    at.button(key="pg_retry").click().run()
    run_id = at.session_state["pg_run_id"]
    job = run_jobs().get(run_id)
    assert job is not None and job.wait(timeout=60)
    at.run()
    assert at.metric[1].value == "0"
    assert at.metric[0].value == "3 / 3"
    assert len(mock_provider.calls) - calls_before == 1  # only the failed row was asked again
    with session_scope() as session:
        assert len(list_results(session=session, run_id=run_id)) == 3


def test_save_as_variant_then_save_a_new_version_of_it(app_with_data: int) -> None:
    at = _write(_open())
    at.text_input(key="pg_save_name").set_value("friendly")
    at.text_input(key="pg_save_note").set_value("first try")
    at.button(key="pg_save").click().run()
    assert any("Saved variant 'friendly' version 1" in s.value for s in at.success)
    at.text_area(key="pg_template").set_value(TEMPLATE + " Be brief.").run()
    at.button(key="pg_save").click().run()
    assert any("Saved variant 'friendly' version 2" in s.value for s in at.success)
    with session_scope() as session:
        variants = list_variants(session=session, app_id=app_with_data)
        assert [v.name for v in variants] == ["friendly"]
        versions = history(session=session, variant_id=variants[0].id)
        by_number = {v.version: v for v in versions}
        assert set(by_number) == {1, 2}
        assert by_number[1].note == "first try"
        assert by_number[1].template == TEMPLATE
        assert by_number[2].template == TEMPLATE + " Be brief."


def test_a_run_of_a_saved_variant_pins_its_version(app_with_data: int) -> None:
    at = _write(_open())
    at.text_input(key="pg_save_name").set_value("friendly")
    at.button(key="pg_save").click().run()
    at = _generate_and_wait(at)
    with session_scope() as session:
        run = list_runs(session=session, app_id=app_with_data)[0]
        assert run.variant_version_id is not None


def test_starting_from_a_variant_loads_it_into_the_editor(app_with_data: int) -> None:
    at = _write(_open(), template="Chat about {{event}}")
    at.slider(key="pg_temperature").set_value(0.7)
    at.text_input(key="pg_save_name").set_value("saved")
    at.button(key="pg_save").click().run()
    fresh = _open()
    assert fresh.text_area(key="pg_template").value == ""
    variant_id = fresh.selectbox(key="pg_variant").options[1]
    assert "saved" in variant_id
    fresh.selectbox(key="pg_variant").select_index(1).run()
    assert fresh.text_area(key="pg_template").value == "Chat about {{event}}"
    assert fresh.slider(key="pg_temperature").value == pytest.approx(0.7)
    assert fresh.selectbox(key="pg_model").value == "mock/echo"


def test_chat_prompts_send_system_and_messages(app_with_data: int, mock_provider: Any) -> None:
    at = _open()
    at.radio(key="pg_kind").set_value("Chat").run()
    at.text_area(key="pg_system").set_value("You write for {{demographic}}.")
    at.text_area(key="pg_msg_content_0").set_value("Announce {{event}}.")
    at.selectbox(key="pg_model").set_value("mock/echo")
    at.run()
    at.button(key="pg_try_button").click().run()
    assert any("echo: Announce Launch party." in i.value for i in at.info)
    method, _model, request = mock_provider.calls[-1]
    assert method == "chat"
    assert [m.role for m in request.messages] == ["system", "user"]
    assert request.messages[0].content == "You write for students."


def test_an_empty_prompt_is_refused_with_a_sentence(app_with_data: int) -> None:
    at = _write(_open(), template="   ")
    at.button(key="pg_generate").click().run()
    assert not at.exception
    assert any("The prompt is empty." in e.value for e in at.error)


def test_large_results_are_shown_a_page_at_a_time(mock_provider: Any) -> None:
    from studio.core.templates import PromptTemplate
    from studio.services.runs import RunConfig, create_run
    from studio.store.tables import RunResult

    data = "question\n" + "".join(f"q{i}\n" for i in range(1200))
    with session_scope() as session:
        app = create_app(session=session, name="Big")
        assert app.id is not None
        version = upload_dataset(
            session=session, app_id=app.id, name="big", data=data.encode(), filename="big.csv"
        )
        run = create_run(
            session=session,
            app_id=app.id,
            dataset_version_id=version.id,
            config=RunConfig(model="mock/echo", prompt=PromptTemplate.completion("{{question}}")),
        )
        run.status = "done"
        assert run.id is not None
        session.add_all(
            RunResult(
                run_id=run.id, row_index=i, output=f"a{i}", prompt_tokens=1, response_tokens=2
            )
            for i in range(1200)
        )
    at = _open()
    assert len(at.dataframe[0].value) == 1000
    assert at.metric[0].value == "1200 / 1200"
    assert at.metric[2].value == "3600"  # the totals count every row, not just the page
    at.number_input(key=f"pg_results_page_{run.id}").set_value(2).run()
    page = at.dataframe[0].value
    assert list(page["row"])[:2] == [1001, 1002] and len(page) == 200
    assert any("Rows 1001 to 1200 of 1200" in c.value for c in at.caption)
