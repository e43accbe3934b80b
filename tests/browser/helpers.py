"""Steps the browser journeys share: screenshots, navigation, a small sample, downloads."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from tests.browser.conftest import ARTIFACTS


def full_shot(page: Any, name: str) -> None:
    """The whole page: Streamlit scrolls inside its main block, so grow the window to it."""
    height = page.evaluate(
        "() => document.querySelector('[data-testid=\"stMain\"]')?.scrollHeight || 1000"
    )
    page.set_viewport_size({"width": 1400, "height": min(int(height) + 50, 12_000)})
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1000})


def nav(page: Any, name: str) -> None:
    page.get_by_role("link", name=name, exact=True).click()
    page.get_by_role("heading", name=name, exact=True).wait_for(timeout=30_000)


def small_sample(sample: Path, rows: int, tmp_path: Path) -> Path:
    """The example's first rows, under the example's file name (a new version of it)."""
    lines = sample.read_text(encoding="utf-8").splitlines()
    small = tmp_path / "small" / sample.name
    small.parent.mkdir()
    small.write_text("\n".join(lines[: rows + 1]) + "\n", encoding="utf-8")
    return small


def download_csv(page: Any, label: str, path: Path) -> list[dict[str, str]]:
    with page.expect_download(timeout=60_000) as info:
        page.get_by_role("button", name=label).click()
    info.value.save_as(str(path))
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))


SETTLED = """() => !document.querySelector('[data-testid="stStatusWidgetRunningIcon"]')
    && !document.querySelector('[data-testid="stElementContainer"][data-stale="true"]')"""


def settle(page: Any, timeout: int = 60_000) -> None:
    """Wait until the script run is over: Streamlit draws a page element by element, and
    until the run ends the page can still show elements of the previous run (marked
    stale), e.g. the item just rated beside the new progress text."""
    page.wait_for_timeout(200)  # a run started by the last key press has begun
    page.wait_for_function(SETTLED, timeout=timeout)
    page.wait_for_timeout(200)
    page.wait_for_function(SETTLED, timeout=timeout)


def pick(page: Any, label: str, option: str, *, close: bool = False) -> None:
    """Pick an option of a select box or multiselect (opened again if a rerun closed it);
    ``close`` presses Escape after (a multiselect stays open)."""
    box = page.get_by_role("combobox", name=label, exact=True).first
    box.wait_for(timeout=30_000)
    settle(page)
    for _ in range(3):
        box.click()
        choice = page.get_by_role("option", name=option, exact=False).first
        try:
            choice.wait_for(timeout=5_000)
        except Exception:
            continue
        choice.click()
        if close:
            page.keyboard.press("Escape")
        settle(page)
        return
    raise AssertionError(f"no option {option!r} in {label!r}")


def page_text(page: Any) -> str:
    """The main block's visible text, once the script run is over."""
    settle(page)
    return str(page.locator('[data-testid="stMain"]').inner_text())
