"""Journey (a): a first run on the built-in models, in a real browser.

Create an app, upload a CSV from data/, write a template, generate over all
rows, save a variant, download the results CSV and check what is in it.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from studio.services.variants import list_variants
from studio.store import session_scope
from tests.browser.conftest import ARTIFACTS, ROOT

SAMPLE = ROOT / "data" / "marketing_events.csv"
TEMPLATE = "Write one sentence inviting {{demographic}} to the {{event}}."


def _shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"journey-a-{name}.png"), full_page=True)


def _nav(page: Any, name: str) -> None:
    page.get_by_role("link", name=name, exact=True).click()
    page.get_by_role("heading", name=name, exact=True).wait_for(timeout=30_000)


@pytest.mark.builtin_models
def test_first_run_generate_over_a_sample_csv_save_and_download(
    studio_url: str, page: Any, tmp_path: Path
) -> None:
    page.goto(studio_url)
    page.get_by_role("heading", name="Prompt Studio").wait_for(timeout=60_000)

    # 1. Create an app.
    _nav(page, "Apps")
    page.get_by_role("textbox", name="Name").first.fill("Marketing copy")
    page.get_by_role("button", name="Create app").click()
    page.get_by_text("Created 'Marketing copy'").wait_for(timeout=30_000)
    _shot(page, "1-app")

    # 2. Upload a CSV from data/.
    _nav(page, "Datasets")
    page.locator("input[type='file']").set_input_files(str(SAMPLE))
    page.get_by_text("20 row(s), columns: event, demographic, size").wait_for(timeout=30_000)
    page.get_by_role("button", name="Upload", exact=True).click()
    page.get_by_text("version 1").filter(visible=True).first.wait_for(timeout=30_000)
    _shot(page, "2-dataset")

    # 3. Write a template in the Playground; the preview renders row 1.
    _nav(page, "Playground")
    page.get_by_role("textbox", name="Prompt template").fill(TEMPLATE)
    page.get_by_role("textbox", name="Prompt template").press("Control+Enter")
    page.get_by_text("Write one sentence inviting young professionals to the Spring").wait_for(
        timeout=30_000
    )
    max_tokens = page.get_by_role("spinbutton", name="Max tokens")
    assert max_tokens.input_value() == "128"  # the editor's default survived the first renders
    max_tokens.fill("24")
    max_tokens.press("Enter")
    page.wait_for_timeout(1_000)
    _shot(page, "3-prompt")

    # 4. Generate over all rows: progress, then the results.
    assert page.get_by_role("spinbutton", name="Parallel calls").input_value() == "8"
    page.get_by_role("button", name="Generate all 20 rows").click()
    page.get_by_role("button", name="Download CSV").wait_for(timeout=300_000)
    page.get_by_text("Status: done").wait_for(timeout=30_000)
    _shot(page, "4-results")
    assert "Something went wrong" not in page.content()

    # 5. Save the configuration as a variant.
    page.get_by_role("textbox", name="Variant name").fill("short invite")
    page.get_by_role("textbox", name="Note (what changed)").fill("first version")
    page.get_by_role("button", name="Save variant").click()
    page.get_by_text("Saved variant 'short invite' version 1.").wait_for(timeout=30_000)
    _shot(page, "5-saved")
    with session_scope() as session:
        variants = list_variants(session=session, app_id=1)
    assert [v.name for v in variants] == ["short invite"]

    # 6. Download the results and check them against the dataset.
    with page.expect_download(timeout=30_000) as info:
        page.get_by_role("button", name="Download CSV").click()
    path = tmp_path / "results.csv"
    info.value.save_as(str(path))
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    expected = list(csv.DictReader(io.StringIO(SAMPLE.read_text(encoding="utf-8"))))
    assert len(rows) == len(expected) == 20
    assert [r["event"] for r in rows] == [e["event"] for e in expected]
    assert [r["row"] for r in rows] == [str(i) for i in range(1, 21)]
    assert all(r["output"].strip() for r in rows), "every row has an output"
    assert not any(r["error"] for r in rows)
    assert all(int(r["response_tokens"]) <= 24 for r in rows)
