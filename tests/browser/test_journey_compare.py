"""Journey: compare an example app's prompt on several models, in a real browser.

Open the "Review sentiment" example from Home, add a four-row version of its
dataset (so the built-in model answers quickly on two cores), then on Compare
pit its variant against the same prompt on the built-in chat model at
temperature 0 and 0.7 and on a fake provider's model, with the Contains check:
watch one progress panel, read the summary's sentences and verdicts, switch to
blind mode and pick winners, download both CSVs, and deploy the winner.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from studio.models.connections import ConnectionCreate, add_connection
from studio.services.endpoints import list_endpoints
from studio.store import session_scope
from tests.browser.conftest import ROOT
from tests.browser.helpers import download_csv, full_shot, nav, small_sample
from tests.providers.fakes import FaultyOpenAIServer

SAMPLE = ROOT / "data" / "sentiment_texts.csv"
ROWS = 4
BUILTIN = "builtin/smollm2-135m-instruct"


def _choose(page: Any, label: str, option: str) -> None:
    """Pick an option of a select box or multiselect (opened again if a rerun closed it)."""
    box = page.get_by_role("combobox", name=label, exact=True)
    box.wait_for(timeout=30_000)
    page.wait_for_timeout(500)
    for _ in range(3):
        box.click()
        choice = page.get_by_role("option", name=option, exact=True)
        try:
            choice.wait_for(timeout=5_000)
        except Exception:
            continue
        choice.click()
        page.keyboard.press("Escape")
        page.wait_for_timeout(800)
        return
    raise AssertionError(f"no option {option!r} in {label!r}")


@pytest.fixture
def fake_provider(
    studio_env: Path, faulty_server: Callable[..., FaultyOpenAIServer]
) -> FaultyOpenAIServer:
    """A connection named "local" to a fake OpenAI-compatible server (model fake-chat)."""
    server = faulty_server()
    with session_scope() as session:
        add_connection(
            session=session, data=ConnectionCreate(name="local", kind="openai", base_url=server.url)
        )
    return server


@pytest.mark.builtin_models
def test_compare_an_example_prompt_on_models_pick_winners_export_and_deploy(
    fake_provider: FaultyOpenAIServer, studio_url: str, page: Any, tmp_path: Path
) -> None:
    page.goto(studio_url)
    page.get_by_role("heading", name="Prompt Studio").wait_for(timeout=60_000)

    # 1. The example app, and a four-row version of its dataset.
    page.get_by_role("button", name="Review sentiment").click()
    page.get_by_role("heading", name="Playground", exact=True).wait_for(timeout=60_000)
    nav(page, "Datasets")
    page.get_by_text("Add a dataset").click()
    page.locator("input[type='file']").set_input_files(str(small_sample(SAMPLE, ROWS, tmp_path)))
    page.get_by_text(f"{ROWS} row(s), columns: text, label").wait_for(timeout=30_000)
    _choose(page, "Expected-output column", "label")
    page.get_by_role("button", name="Upload", exact=True).click()
    page.get_by_text(f"Uploaded 'sentiment texts' as version 2 ({ROWS} rows).").wait_for(
        timeout=30_000
    )

    # 2. Compare: the variant, the same prompt on the built-in model at 0 and 0.7, and on
    #    the fake provider's model; the Contains check against the label column.
    nav(page, "Compare")
    page.get_by_text("No comparisons yet").wait_for(timeout=30_000)
    page.get_by_text("one-word label v1").filter(visible=True).first.wait_for(timeout=30_000)
    page.get_by_text("at least two contenders (now 1)").wait_for(timeout=30_000)
    _choose(page, "Models", BUILTIN)
    _choose(page, "Models", "local/fake-chat")
    temps = page.get_by_role("textbox", name=f"Temperatures for {BUILTIN}")
    temps.fill("0, 0.7")
    temps.press("Enter")
    page.get_by_text("4 contenders:").wait_for(timeout=30_000)
    page.get_by_role("tab", name="Text checks").click()
    page.get_by_role("checkbox", name="Contains", exact=True).check(force=True)
    page.get_by_text("expected-output column, label").wait_for(timeout=30_000)
    full_shot(page, "journey-compare-1-form")
    assert "Something went wrong" not in page.content()

    # 3. One progress panel across the contenders, then scoring, then the summary.
    page.get_by_role("button", name="Compare", exact=True).click()
    page.get_by_text("Started comparison 1").wait_for(timeout=30_000)
    page.get_by_text("Generating the outputs").or_(
        page.get_by_text("Scoring the outputs")
    ).first.wait_for(timeout=60_000)
    full_shot(page, "journey-compare-2-progress")
    page.get_by_text("McNemar").filter(visible=True).first.wait_for(timeout=600_000)
    page.get_by_text(f"Rows 1 to {ROWS} of {ROWS} matching rows").wait_for(timeout=60_000)
    page.wait_for_timeout(1_500)  # charts and tables finish drawing
    page.get_by_text("Against the baseline,").filter(visible=True).first.wait_for()
    page.get_by_text("the true rate most likely lies").filter(visible=True).first.wait_for()
    assert "Something went wrong" not in page.content()
    assert "Traceback" not in page.content()
    assert "comparison=1" in page.url
    full_shot(page, "journey-compare-3-summary")

    # 4. Blind mode: names hidden, outputs numbered; pick winners for three rows.
    page.get_by_text("Blind mode", exact=True).click()
    page.get_by_text("Blind mode: names are hidden").wait_for(timeout=30_000)
    page.get_by_role("button", name="Output 1 is better").nth(0).click()
    page.get_by_text("Your choice: Output 1 is better").wait_for(timeout=30_000)
    page.get_by_role("button", name="Output 2 is better").nth(1).click()
    page.get_by_text("Your choice: Output 2 is better").wait_for(timeout=30_000)
    page.get_by_role("button", name="Tie", exact=True).nth(2).click()
    page.get_by_text("Your choice: a tie").wait_for(timeout=30_000)
    page.get_by_text("3 row(s) judged, 1 tie(s)").wait_for(timeout=30_000)
    page.wait_for_timeout(1_000)
    full_shot(page, "journey-compare-4-blind")

    # 5. Both downloads.
    rows = download_csv(page, "Download rows (CSV)", tmp_path / "rows.csv")
    assert len(rows) == ROWS
    expected = list(csv.DictReader(io.StringIO(SAMPLE.read_text(encoding="utf-8"))))[:ROWS]
    assert [r["text"] for r in rows] == [e["text"] for e in expected]
    verdict_columns = [c for c in rows[0] if c.endswith(" verdict")]
    assert len(verdict_columns) == 4
    assert all(r[c] in ("pass", "fail") for r in rows for c in verdict_columns)
    assert sum(1 for r in rows if r["preferred"]) == 3
    summary = download_csv(page, "Download summary and tests (CSV)", tmp_path / "summary.csv")
    assert [s["contender"] for s in summary] == ["A", "B", "C", "D"]
    assert all("McNemar" in s["sentence"] for s in summary[1:])

    # 6. Deploy the winner (a model contender is saved as a variant first).
    page.get_by_text("Blind mode", exact=True).click()
    page.get_by_text("Blind mode: names are hidden").wait_for(state="detached", timeout=30_000)
    page.wait_for_timeout(1_000)
    name_box = page.get_by_role("textbox", name="Variant name")
    if name_box.count():
        name_box.fill("sentiment winner")
        name_box.press("Enter")
        page.wait_for_timeout(800)
    page.get_by_role("button", name="Deploy the winner").click()
    page.get_by_text("to endpoint 'review-sentiment-").wait_for(timeout=60_000)
    assert "Something went wrong" not in page.content()
    full_shot(page, "journey-compare-5-deployed")
    with session_scope() as session:
        endpoints = list_endpoints(session=session, app=1)
    assert len(endpoints) == 1 and endpoints[0].active
