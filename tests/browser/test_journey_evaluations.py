"""Journey: evaluate an example app's prompt with three evaluators, in a real browser.

Open the "Review sentiment" example from Home, add a four-row version of its
dataset (so the built-in model answers and judges quickly on two cores), then on
Evaluations tick Classification, Length and the LLM judge (on the built-in chat
model), press Evaluate, watch the progress, read the report card, and download
both CSVs and check what is in them.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import ROOT
from tests.browser.helpers import download_csv, full_shot, nav, small_sample

SAMPLE = ROOT / "data" / "sentiment_texts.csv"
ROWS = 4
VERDICTS = {"pass", "fail", "error"}


def _tick(page: Any, tab: str, evaluator: str) -> None:
    page.get_by_role("tab", name=tab).click()
    page.get_by_role("checkbox", name=evaluator, exact=True).check(force=True)  # under its label
    page.wait_for_timeout(500)


def _choose(page: Any, label: str, option: str) -> None:
    """Pick an option of a select box (opened again if a rerun closed it)."""
    box = page.get_by_role("combobox", name=label)
    box.wait_for(timeout=30_000)
    page.wait_for_timeout(500)  # the rerun that drew it has finished
    for _ in range(3):
        box.click()
        choice = page.get_by_role("option", name=option, exact=True)
        try:
            choice.wait_for(timeout=5_000)
        except Exception:
            continue
        choice.click()
        return
    raise AssertionError(f"no option {option!r} in {label!r}")


def _fill(page: Any, label: str, value: str) -> None:
    box = page.get_by_role("textbox", name=label, exact=True)
    box.wait_for(timeout=30_000)
    box.fill(value)
    box.press("Control+Enter")  # a text area sends its value on Ctrl+Enter or blur
    page.wait_for_timeout(500)


@pytest.mark.builtin_models
def test_evaluate_an_example_app_read_the_report_card_and_download_it(
    studio_url: str, page: Any, tmp_path: Path
) -> None:
    page.goto(studio_url)
    page.get_by_role("heading", name="Prompt Studio").wait_for(timeout=60_000)

    # 1. Open the example app: it lands in the Playground with its dataset and prompt.
    page.get_by_role("button", name="Review sentiment").click()
    page.get_by_role("heading", name="Playground", exact=True).wait_for(timeout=60_000)

    # 2. A four-row version of its dataset keeps the built-in model's work short.
    nav(page, "Datasets")
    page.get_by_text("Add a dataset").click()
    page.locator("input[type='file']").set_input_files(str(small_sample(SAMPLE, ROWS, tmp_path)))
    page.get_by_text(f"{ROWS} row(s), columns: text, label").wait_for(timeout=30_000)
    _choose(page, "Expected-output column", "label")
    page.get_by_role("button", name="Upload", exact=True).click()
    page.get_by_text(f"Uploaded 'sentiment texts' as version 2 ({ROWS} rows).").wait_for(
        timeout=30_000
    )

    # 3. On Evaluations, the first evaluation's form is open with the example's variant.
    nav(page, "Evaluations")
    page.get_by_text("No evaluations yet").wait_for(timeout=30_000)
    page.get_by_text("one-word label v1").filter(visible=True).first.wait_for(timeout=30_000)
    _tick(page, "Metrics and labels", "Classification")
    page.get_by_text("expected-output column, label").wait_for(timeout=30_000)
    _fill(page, "Labels, one per line (required)", "positive\nnegative\nneutral")
    _tick(page, "Metrics and labels", "Length")
    max_words = page.get_by_role("spinbutton", name="Max", exact=True)
    max_words.fill("5")
    max_words.press("Enter")
    page.wait_for_timeout(500)
    _tick(page, "Model-backed", "LLM judge (calls a model)")
    _fill(
        page,
        "Rubric (required)",
        "The output is one word naming the review's sentiment, and it matches the reference.",
    )
    judge = page.get_by_role("combobox", name="Model", exact=True)
    assert judge.input_value() == "builtin/smollm2-135m-instruct"  # the default judge
    full_shot(page, "journey-eval-1-form")
    assert "Something went wrong" not in page.content()

    # 4. Evaluate: the run is generated first, then the outputs are scored, with progress.
    page.get_by_role("button", name="Evaluate", exact=True).click()
    page.get_by_text("Started evaluation 1").wait_for(timeout=30_000)
    progress = page.get_by_text("Generating the outputs first").or_(
        page.get_by_text("Scoring the outputs")
    )
    progress.first.wait_for(timeout=60_000)
    full_shot(page, "journey-eval-2-progress")
    page.get_by_role("button", name="Download results (wide CSV)").wait_for(timeout=600_000)
    page.wait_for_timeout(1_500)  # the chart and tables finish drawing

    # 5. The report card: figures with their sentences, the classification figures.
    page.get_by_text("most likely lies in this range").filter(visible=True).first.wait_for(
        timeout=30_000
    )
    page.get_by_text("left out of the pass rate").filter(visible=True).first.wait_for()
    page.get_by_role("heading", name="Classification · one-word label v1").wait_for()
    page.get_by_text("Accuracy", exact=True).filter(visible=True).first.wait_for()
    page.get_by_text("Each point is one finished evaluation").wait_for()
    assert "Something went wrong" not in page.content()
    assert "Traceback" not in page.content()
    full_shot(page, "journey-eval-3-report")
    assert "evaluation=1" in page.url  # a link to this report card

    # 6. Both downloads: one line per row (wide), one per row and evaluator (long).
    wide = download_csv(page, "Download results (wide CSV)", tmp_path / "wide.csv")
    expected = list(csv.DictReader(io.StringIO(SAMPLE.read_text(encoding="utf-8"))))[:ROWS]
    assert [r["row"] for r in wide] == [str(i) for i in range(1, ROWS + 1)]
    assert [r["text"] for r in wide] == [e["text"] for e in expected]
    assert [r["expected"] for r in wide] == [e["label"] for e in expected]
    for column in ("A output", "A overall"):
        assert column in wide[0], f"no column {column!r} in {list(wide[0])}"
    for evaluator in ("classification", "length", "llm_judge"):
        assert all(r[f"A {evaluator} pass"] in VERDICTS for r in wide), evaluator
        assert all(r[f"A {evaluator} reason"].strip() for r in wide), evaluator
    assert all(r["A output"].strip() for r in wide), "every row has an output"

    long = download_csv(page, "Download results (long CSV)", tmp_path / "long.csv")
    assert len(long) == ROWS * 3
    assert {r["evaluator"] for r in long} == {"classification", "length", "llm_judge"}
    assert {r["pass"] for r in long} <= VERDICTS
    assert {r["model"] for r in long} == {"builtin/smollm2-135m-instruct"}
    assert sorted({r["row"] for r in long}) == [str(i) for i in range(1, ROWS + 1)]
