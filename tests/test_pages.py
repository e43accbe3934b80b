"""Every page renders with AppTest, and the navigation lists every page file."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from studio import registry
from studio.model_specs import ModelCreate
from studio.store import session_scope

ROOT = Path(__file__).resolve().parent.parent
PAGE_FILES = sorted(p.name for p in (ROOT / "pages").glob("*.py"))


@pytest.mark.parametrize("page", PAGE_FILES)
def test_every_page_renders_without_exceptions(page: str) -> None:
    at = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title, f"{page} has no title"


def test_navigation_lists_every_page_file() -> None:
    source = (ROOT / "app.py").read_text()
    for page in PAGE_FILES:
        assert f'"pages/{page}"' in source, f"{page} is missing from app.py navigation"


def test_app_entry_point_opens_the_home_page() -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "Prompt Studio"


def test_models_page_lists_builtins_and_shows_failed_deployments(tmp_path: Path) -> None:
    with session_scope() as session:
        registry.create_model(
            session=session,
            data=ModelCreate(
                name="broken-llama",
                model_template_id="llama-cpp-chat",
                model_creation_parameters={"model_path": str(tmp_path / "missing.gguf")},
            ),
        )
    at = AppTest.from_file(str(ROOT / "pages" / "models.py"), default_timeout=60).run()
    assert not at.exception
    names = list(at.dataframe[0].value["Name"])
    assert "builtin/smollm2-135m-instruct" in names and "broken-llama" in names
    assert any("broken-llama failed to deploy" in w.value for w in at.warning)
    at.multiselect(key="models_type_filter").set_value(["EMBEDDING"]).run()
    assert list(at.dataframe[0].value["Type"]) == ["EMBEDDING"]


def test_models_page_usage_empty_state_says_what_to_do() -> None:
    at = AppTest.from_file(str(ROOT / "pages" / "models.py"), default_timeout=60).run()
    assert any("No calls to" in i.value for i in at.info)


@pytest.mark.builtin_models
def test_home_page_generates_with_a_builtin_model() -> None:
    at = AppTest.from_file(str(ROOT / "pages" / "home.py"), default_timeout=120).run()
    at.text_area(key="home_prompt").set_value("Say hello to the team.")
    at.slider(key="home_max_tokens").set_value(16)
    at.button(key="home_generate").click().run()
    assert not at.exception
    assert at.info and at.info[0].value.strip()
    assert "response tokens" in at.caption[-1].value or any(
        "response tokens" in c.value for c in at.caption
    )
