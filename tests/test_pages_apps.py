"""The Apps and Datasets pages, driven with AppTest."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from studio.services.apps import create_app, list_apps
from studio.services.datasets import list_datasets, list_versions, upload_dataset
from studio.store import session_scope

ROOT = Path(__file__).resolve().parent.parent
APPS = str(ROOT / "pages" / "apps.py")
DATASETS = str(ROOT / "pages" / "datasets.py")


def _create_through_form(at: AppTest, name: str, description: str = "") -> AppTest:
    at.text_input(key="apps_new_name").set_value(name)
    at.text_area(key="apps_new_description").set_value(description)
    return at.button(key="apps_create").click().run()


def test_apps_page_empty_state_says_what_to_do() -> None:
    at = AppTest.from_file(APPS, default_timeout=60).run()
    assert not at.exception
    assert any("No apps yet. Create your first app above" in i.value for i in at.info)


def test_create_an_app_through_the_form_and_see_it_listed() -> None:
    at = AppTest.from_file(APPS, default_timeout=60).run()
    _create_through_form(at, "Marketing copy", "Event announcements")
    assert not at.exception
    assert any("Created 'Marketing copy'" in s.value for s in at.success)
    table = at.dataframe[0].value
    assert list(table["Name"]) == ["Marketing copy"]
    assert list(table["Description"]) == ["Event announcements"]
    assert {"Variants", "Datasets", "Runs", "Last activity"} <= set(table.columns)
    assert at.text_input(key="apps_new_name").value == ""  # the form is ready for the next app
    with session_scope() as session:
        app_id = list_apps(session=session)[0].id
    assert at.session_state["current_app_id"] == app_id


def test_duplicate_app_name_shows_the_service_sentence() -> None:
    at = AppTest.from_file(APPS, default_timeout=60).run()
    _create_through_form(at, "Marketing copy")
    _create_through_form(at, "Marketing copy")
    assert not at.exception
    assert any("An app named 'Marketing copy' already exists." in e.value for e in at.error)
    assert len(at.dataframe[0].value) == 1


def test_rename_and_describe_the_selected_app() -> None:
    at = AppTest.from_file(APPS, default_timeout=60).run()
    _create_through_form(at, "Draft")
    app_id = at.session_state["current_app_id"]
    at.text_input(key=f"apps_edit_name_{app_id}").set_value("Support answers")
    at.text_area(key=f"apps_edit_description_{app_id}").set_value("Replies to tickets")
    at.button(key=f"apps_save_{app_id}").click().run()
    assert not at.exception
    assert list(at.dataframe[0].value["Name"]) == ["Support answers"]
    assert list(at.dataframe[0].value["Description"]) == ["Replies to tickets"]


def test_archive_hides_the_app_and_restore_brings_it_back() -> None:
    at = AppTest.from_file(APPS, default_timeout=60).run()
    _create_through_form(at, "Marketing copy")
    app_id = at.session_state["current_app_id"]
    at.button(key=f"apps_archive_{app_id}").click().run()
    assert not at.exception
    assert not at.dataframe
    assert any("No active apps" in i.value for i in at.info)
    assert at.session_state["current_app_id"] is None
    with session_scope() as session:
        assert list_apps(session=session) == []

    at.toggle(key="apps_show_archived").set_value(True).run()
    assert list(at.dataframe[0].value["Status"]) == ["archived"]
    at.button(key=f"apps_restore_{app_id}").click().run()
    with session_scope() as session:
        assert [a.name for a in list_apps(session=session)] == ["Marketing copy"]


def test_datasets_page_without_apps_points_to_the_apps_page() -> None:
    at = AppTest.from_file(DATASETS, default_timeout=60).run()
    assert not at.exception
    assert any("No apps yet" in i.value and "Apps page" in i.value for i in at.info)


def test_datasets_page_through_navigation_shows_a_link_to_apps() -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.switch_page("pages/datasets.py").run()
    assert not at.exception
    assert any("No apps yet" in i.value for i in at.info)


def _app_with_dataset() -> tuple[int, int]:
    with session_scope() as session:
        app = create_app(session=session, name="Support")
        version = upload_dataset(
            session=session,
            app_id=app.id,
            name="questions",
            data=b"question,answer\nHow do I log in?,Use SSO\nWhere is billing?,Settings\n",
            filename="questions.csv",
        )
        assert app.id is not None and version.id is not None
        return app.id, version.id


def test_datasets_page_shows_preview_rows_and_version() -> None:
    app_id, version_id = _app_with_dataset()
    at = AppTest.from_file(DATASETS, default_timeout=60)
    at.session_state["current_app_id"] = app_id
    at.run()
    assert not at.exception
    assert at.selectbox(key="datasets_app").value == app_id
    assert list(at.dataframe[0].value["Name"]) == ["questions"]
    assert at.selectbox(key="datasets_version_1").value == version_id
    assert any("Version 1: 2 row(s)" in c.value for c in at.caption)
    editor = next(d for d in at.dataframe if d.key == f"datasets_editor_{version_id}")
    assert list(editor.value["question"]) == ["How do I log in?", "Where is billing?"]
    history = at.dataframe[-1].value
    assert list(history["Version"]) == [1] and list(history["Source file"]) == ["questions.csv"]
    assert at.get("download_button")


def test_set_expected_column_makes_a_new_version() -> None:
    app_id, version_id = _app_with_dataset()
    at = AppTest.from_file(DATASETS, default_timeout=60)
    at.session_state["current_app_id"] = app_id
    at.run()
    at.selectbox(key=f"datasets_expected_{version_id}").set_value("answer")
    at.button(key=f"datasets_set_expected_{version_id}").click().run()
    assert not at.exception
    assert any("Saved version 2" in s.value for s in at.success)
    with session_scope() as session:
        versions = list_versions(session=session, dataset_id=1)
    assert [v.expected_column for v in versions] == [None, "answer"]
    assert at.selectbox(key="datasets_version_1").value == versions[-1].id


def test_sample_dataset_button_creates_a_dataset() -> None:
    with session_scope() as session:
        app_id = create_app(session=session, name="Support").id
    at = AppTest.from_file(DATASETS, default_timeout=60).run()
    assert any("No datasets in 'Support' yet" in i.value for i in at.info)
    at.button(key="datasets_sample_support_questions").click().run()
    assert not at.exception
    assert any("Added the sample 'support questions'" in s.value for s in at.success)
    assert app_id is not None
    with session_scope() as session:
        datasets = list_datasets(session=session, app_id=app_id)
    assert [d.name for d in datasets] == ["support questions"]
    assert datasets[0].expected_column == "expected_answer"
    assert datasets[0].row_count > 0
