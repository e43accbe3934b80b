"""Browser journey: connect an OpenAI-compatible server, find its models, chat with one.

The server is a real HTTP server on loopback started by the test, so the
studio (a separate `streamlit run` process) reaches it like any self-hosted
model server. Screenshots land in test-artifacts/.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.test_pages_models import OpenAIStyleServer

KEY = "sk-journey-Secret-0123456789"


@pytest.fixture
def model_server() -> Iterator[OpenAIStyleServer]:
    srv = OpenAIStyleServer(models=("team-chat-7b", "team-embed"))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _tab(page: Any, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def test_connect_a_server_see_its_models_and_chat(
    studio_url: str, page: Any, model_server: OpenAIStyleServer
) -> None:
    page.goto(studio_url)
    page.get_by_role("link", name="Models").click(timeout=60_000)
    page.get_by_role("heading", name="Models").wait_for(timeout=60_000)
    # Dataframe cells are drawn on a canvas; their text lives in a hidden grid.
    page.get_by_text("builtin/smollm2-135m-instruct").first.wait_for(
        state="attached", timeout=30_000
    )

    _tab(page, "Connections")
    page.get_by_text("Add a connection").wait_for()
    page.get_by_label("What do you want to connect?").click()
    page.get_by_role("option", name="OpenAI-compatible server").click()
    name = page.get_by_role("textbox", name="Connection name")
    name.wait_for()
    page.wait_for_timeout(500)
    name.fill("team")
    page.get_by_role("textbox", name="Base URL").last.fill(f"{model_server.url}/v1")
    page.get_by_text("API key (optional)").wait_for()
    page.locator("input[type=password]").first.fill(KEY)
    page.screenshot(path=str(ARTIFACTS / "models-connection-form.png"), full_page=True)
    page.get_by_role("button", name="Save and test").click()
    page.get_by_text("Saved connection 'team'").wait_for(timeout=30_000)
    page.get_by_text("Test call: Connection 'team' answered in").wait_for()
    page.get_by_text("Test, edit or remove 'team'").wait_for()  # the rerun has finished
    page.screenshot(path=str(ARTIFACTS / "models-connection-saved.png"), full_page=True)
    assert KEY not in page.content()

    _tab(page, "Model zoo")
    page.get_by_text("team/team-chat-7b").first.wait_for(state="attached", timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "models-zoo-with-connection.png"), full_page=True)

    _tab(page, "Try it")
    page.get_by_label("Model", exact=True).locator("visible=true").click()
    page.get_by_role("option", name="team/team-chat-7b").click()
    box = page.get_by_placeholder("Message team/team-chat-7b")
    box.wait_for(timeout=30_000)
    box.fill("Draft a welcome line for new customers.")
    box.press("Enter")
    page.get_by_text("Hello from the fake server").filter(visible=True).first.wait_for(
        timeout=30_000
    )
    page.get_by_text("Copy as CLI command").click()
    page.get_by_text("studio model execute team/team-chat-7b request.json").wait_for()
    page.screenshot(path=str(ARTIFACTS / "models-try-chat.png"), full_page=True)
    assert "Something went wrong" not in page.content()
    assert KEY not in page.content()
    assert model_server.received[-1][0] == "/v1/chat/completions"

    _tab(page, "Usage")
    page.get_by_label("Model", exact=True).locator("visible=true").click()
    page.get_by_role("option", name="team/team-chat-7b").click()
    page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "models-usage-connection.png"), full_page=True)
