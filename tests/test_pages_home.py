"""The Home page: examples that open in the Playground, and recent apps."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from studio.services.apps import create_app, list_apps
from studio.services.datasets import list_datasets
from studio.services.samples import EXAMPLES, create_example
from studio.services.variants import list_variants
from studio.store import session_scope

ROOT = Path(__file__).resolve().parent.parent


def test_an_example_opens_in_the_playground_ready_to_generate() -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert any("No apps yet" in c.value for c in at.caption)
    at.button(key="home_example_support").click().run()
    assert not at.exception
    assert at.title[0].value == "Playground"
    assert "{{question}}" in at.text_area(key="pg_template").value
    assert at.button(key="pg_generate").label.startswith("Generate all ")
    assert not at.button(key="pg_generate").disabled


def test_recent_apps_are_listed_newest_first() -> None:
    with session_scope() as session:
        create_app(session=session, name="Older")
        create_app(session=session, name="Newer")
    at = AppTest.from_file(str(ROOT / "pages" / "home.py"), default_timeout=60).run()
    names = [m.value for m in at.markdown if m.value in ("**Older**", "**Newer**")]
    assert names == ["**Newer**", "**Older**"]


def test_examples_are_created_once_with_data_and_a_variant() -> None:
    for key, example in EXAMPLES.items():
        with session_scope() as session:
            first = create_example(session=session, key=key)
        with session_scope() as session:
            assert create_example(session=session, key=key) == first  # idempotent
            datasets = list_datasets(session=session, app_id=first)
            assert len(datasets) == 1 and datasets[0].row_count >= 10
            assert datasets[0].expected_column == example.expected_column
            assert [v.name for v in list_variants(session=session, app_id=first)] == [
                example.variant
            ]
    with session_scope() as session:
        assert len(list_apps(session=session)) == len(EXAMPLES)
