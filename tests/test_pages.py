"""Every page renders with AppTest, and the navigation lists every page file."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

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
