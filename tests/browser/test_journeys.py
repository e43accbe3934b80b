"""Main journeys in a real browser. Screenshots land in test-artifacts/."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import ARTIFACTS


@pytest.mark.builtin_models
def test_first_run_try_a_builtin_model_then_see_its_usage(studio_url: str, page: Any) -> None:
    page.goto(studio_url)
    page.get_by_role("heading", name="Prompt Studio").wait_for(timeout=60_000)
    page.get_by_text("Get started").wait_for()
    box = page.get_by_label("Message")
    box.fill("Write a one-line greeting for new customers.")
    page.get_by_role("button", name="Generate").click()
    answer = page.get_by_text("response tokens")
    answer.wait_for(timeout=120_000)
    page.screenshot(path=str(ARTIFACTS / "home-answer.png"), full_page=True)
    assert "Something went wrong" not in page.content()

    page.get_by_role("link", name="Models").click()
    page.get_by_role("heading", name="Models").wait_for()
    page.get_by_text("builtin/all-minilm-l6-v2").first.wait_for(state="attached")
    # Usage of the chat model we just called shows one request.
    page.get_by_role("tab", name="Usage").click()
    page.locator("[data-testid='stSelectbox']").last.click()
    page.get_by_role("option", name="builtin/smollm2-135m-instruct").click()
    page.get_by_text("Requests").wait_for(timeout=30_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "models-usage.png"), full_page=True)
    metric = page.locator("[data-testid='stMetricValue']").first.inner_text()
    assert metric.strip() == "1"
