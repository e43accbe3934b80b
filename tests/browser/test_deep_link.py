"""A bookmark opened as the very first request shows the studio's navigation.

Streamlit lists the files of ``pages/`` on its own (``home``, ``apps``,
``datasets``…, lowercase, leading to an empty page) until the app script
has called ``st.navigation``. On a fresh server the first script run is slow
(database, embedded gateway), so a user saw that list for seconds. The test
watches the sidebar from the moment the page is committed until the studio's
own links are there, and fails if the file-name list showed up at any time.
"""

from __future__ import annotations

import time
from typing import Any

from tests.browser.conftest import ARTIFACTS

STUDIO_LABELS = ("Home", "Apps", "Datasets", "Playground", "Variants", "Models", "Deploy")
FILE_NAMES = ("home", "apps", "datasets", "playground", "variants", "models", "deploy")


def _sidebar_labels(page: Any) -> list[str]:
    """The link labels in the sidebar right now (Streamlit's list or ours).

    A link's text starts with its icon's name (material icons are ligatures: "home"),
    so the label is the last line.
    """
    texts = page.locator("[data-testid='stSidebar'] a").all_inner_texts()
    return [t.strip().splitlines()[-1].strip() for t in texts if t.strip()]


def test_deep_link_first_request_shows_studio_navigation(studio_url: str, page: Any) -> None:
    page.goto(f"{studio_url}/models", wait_until="commit")
    seen: list[list[str]] = []
    deadline = time.time() + 60
    while time.time() < deadline:
        labels = _sidebar_labels(page)
        if labels:
            seen.append(labels)
        if all(label in labels for label in STUDIO_LABELS):
            break
        page.wait_for_timeout(100)
    page.get_by_role("heading", name="Models").wait_for(timeout=60_000)
    page.get_by_text("builtin/all-minilm-l6-v2").first.wait_for(state="attached", timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "deep-link-models.png"), full_page=True)

    final = _sidebar_labels(page)
    assert all(label in final for label in STUDIO_LABELS), final
    leaked = [labels for labels in seen if any(name in labels for name in FILE_NAMES)]
    assert not leaked, f"Streamlit's own list of page files was shown: {leaked[0]}"
    assert "Something went wrong" not in page.content()
