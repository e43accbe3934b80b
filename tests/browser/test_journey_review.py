"""Browser journey: human review. A member creates a good/bad review with two raters per
item on a 10-row run; two reviewer accounts rate it with the keyboard; the member reads
the hit rate and Cohen's kappa on the results and downloads the CSV of its 20 ratings. A
blind A/B review never shows a contender's name in the page.

The studio runs with STUDIO_AUTH=local on 127.0.0.1. The accounts, the app and its runs
are made beforehand through the services (the runs answer with the test's mock
provider, whose outputs are stored, so the browser studio only reads them).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from studio.core.templates import PromptTemplate
from studio.services.apps import create_app
from studio.services.datasets import upload_dataset
from studio.services.evaluations import EvaluatorConfig, create_evaluation
from studio.services.members import add_member
from studio.services.review_setup import ReviewSpec, create_review
from studio.services.runs import RunConfig, create_run, run_sync
from studio.services.users import create_user
from studio.store import session_scope
from tests.browser.helpers import download_csv, full_shot, settle

PASSWORD = "a long enough password"
CSV = "event\n" + "".join(f"Launch {i}\n" for i in range(10))


@pytest.fixture
def review_url(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, mock_provider: Any
) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("STUDIO_AUTH", "local")
    with session_scope() as session:
        create_user(session=session, name="ada", password=PASSWORD, role="admin")
        for name, role in (("mia", "member"), ("rita", "reviewer"), ("ravi", "reviewer")):
            create_user(session=session, name=name, password=PASSWORD, role=role)
        app = create_app(session=session, name="Launches")
        add_member(session=session, app=app.id or 0, user="mia")
        version = upload_dataset(
            session=session, app_id=app.id or 0, name="events", data=CSV.encode(),
            filename="events.csv",
        )  # fmt: skip
        session.commit()
        runs = []
        for template in ("{{event}}", "Shouting {{event}}"):
            run = create_run(
                session=session, app_id=app.id or 0, dataset_version_id=version.id or 0,
                config=RunConfig(model="mock/echo",
                                 prompt=PromptTemplate(kind="completion", template=template)),
            )  # fmt: skip
            session.commit()
            runs.append(run.id or 0)
        app_id = app.id or 0
    for run_id in runs:
        run_sync(run_id=run_id)
    yield {"url": request.getfixturevalue("studio_url"), "app": app_id, "runs": runs}


def _body(page: Any) -> str:
    return str(page.inner_text("body"))


def _sign_in(page: Any, url: str, name: str) -> None:
    page.goto(f"{url}/review")
    page.get_by_role("heading", name="Sign in to Prompt Studio").wait_for(timeout=60_000)
    page.get_by_role("textbox", name="Name").fill(name)
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_text(f"Signed in as {name}").wait_for(timeout=60_000)


def _sign_out(page: Any) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="Sign in to Prompt Studio").wait_for(timeout=60_000)


def _open_review(page: Any) -> None:
    if page.get_by_role("heading", name="Review", exact=True).count() == 0:
        page.get_by_role("link", name="Review", exact=True).click()
    page.get_by_role("heading", name="Review", exact=True).wait_for(timeout=60_000)


def _rate_with_keys(page: Any, keys: list[str]) -> None:
    for done, key in enumerate(keys):
        page.get_by_text(f"You have rated {done} of").wait_for(timeout=60_000)
        settle(page)
        page.get_by_role("heading", name="Review", exact=True).click()  # focus the page
        page.keyboard.press(key)
    page.get_by_text("You have rated everything this review has for you").wait_for(timeout=60_000)


def _choose(page: Any, label: str, option: str) -> None:
    page.get_by_role("combobox", name=label, exact=True).click()
    page.get_by_role("option", name=option).first.click()
    settle(page)


def test_review_journey(review_url: dict[str, Any], page: Any, tmp_path: Path) -> None:
    url = review_url["url"]
    _sign_in(page, url, "mia")
    _open_review(page)
    page.get_by_role("tab", name="New review").click()
    _choose(page, "Which one", f"Run {review_url['runs'][0]}")
    page.get_by_role("textbox", name="Name").wait_for(timeout=60_000)
    page.get_by_role("textbox", name="Name").fill("Launch tone")
    page.get_by_role("textbox", name="The task").fill("Announce the event")
    page.get_by_role("textbox", name="A good output is…").fill("Names the event")
    page.get_by_role("textbox", name="A bad output is…").fill("Anything else")
    slider = page.get_by_role("slider", name="Raters per item")
    slider.focus()
    page.keyboard.press("ArrowRight")  # 1 -> 2 raters per item
    full_shot(page, "review-new")
    page.get_by_role("button", name="Create the review").click()
    page.get_by_text("Created review #1").wait_for(timeout=60_000)
    _sign_out(page)

    # rita calls the even rows good; ravi agrees except on rows 0 and 1 (source order is
    # random, so each answers by reading the row on screen)
    for name in ("rita", "ravi"):
        _sign_in(page, url, name)
        assert "Results" not in [t.strip() for t in page.get_by_role("tab").all_inner_texts()]
        for done in range(10):
            page.get_by_text(f"You have rated {done} of 10").wait_for(timeout=60_000)
            settle(page)  # the item on screen is the new one, not the one just rated
            text = _body(page)
            found = re.search(r"Launch (\d)(?!\d)", text)
            assert found, text
            row = int(found.group(1))
            good = row % 2 == 0
            if name == "ravi" and row in (0, 1):
                good = not good
            if done == 3:
                full_shot(page, f"review-rate-{name}")
            page.get_by_role("heading", name="Review", exact=True).click()
            page.keyboard.press("g" if good else "b")
        page.get_by_text("You have rated everything this review has for you").wait_for(
            timeout=60_000
        )
        _sign_out(page)

    _sign_in(page, url, "mia")
    _open_review(page)
    page.get_by_role("tab", name="Results").click()
    page.get_by_test_id("stProgress").get_by_text("20 of 20 ratings given").wait_for(timeout=60_000)
    settle(page)
    body = _body(page)
    assert "Cohen's kappa is 0.60" in body and "moderate" in body
    assert "4 of 8 decided items are good (50%)" in body
    full_shot(page, "review-results")
    rows = download_csv(page, "Every rating (CSV)", tmp_path / "ratings.csv")
    assert len(rows) == 20 and {r["rater"] for r in rows} == {"rita", "ravi"}


def test_a_blind_ab_review_never_shows_a_contenders_name(
    review_url: dict[str, Any], page: Any
) -> None:
    with session_scope() as session:
        evaluation = create_evaluation(
            session=session, app_id=review_url["app"], name="both", run_ids=review_url["runs"],
            evaluators=[EvaluatorConfig(id="exact_match")],
        )  # fmt: skip
        labels = [c["label"] for c in evaluation.contenders]
        spec = ReviewSpec(
            name="Which invitation", kind="pairwise", task="Announce the event",
            source_kind="evaluation", source_id=evaluation.id or 0, sample_size=4,
        )  # fmt: skip
        create_review(session=session, app_id=review_url["app"], spec=spec)
    _sign_in(page, review_url["url"], "rita")
    for done in range(4):
        page.get_by_text(f"You have rated {done} of 4").wait_for(timeout=60_000)
        settle(page)
        body = _body(page)
        assert "Left" in body and "Right" in body
        for label in labels:
            assert label not in body
        for hint in ("mock/echo", "(run ", "Contender"):
            assert hint not in body, hint
        page.get_by_role("heading", name="Review", exact=True).click()
        page.keyboard.press("1" if done % 2 else "2")
    page.get_by_text("You have rated everything this review has for you").wait_for(timeout=60_000)
