"""The Review page, driven with AppTest: a rater's queue with keyboard-shortcut buttons, a
blind A/B item that never shows a contender's name, results for the app's people, and the
new-review form."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from studio.core.settings import reset_settings
from studio.core.templates import PromptTemplate
from studio.services.apps import create_app
from studio.services.datasets import upload_dataset
from studio.services.evaluations import EvaluatorConfig, create_evaluation
from studio.services.review_setup import ReviewSpec, create_review
from studio.services.runs import RunConfig, create_run, run_sync
from studio.services.users import create_user, start_session
from studio.store import session_scope
from studio.store.tables import ReviewRating

ROOT = Path(__file__).resolve().parent.parent
REVIEW = str(ROOT / "pages" / "review.py")
CSV = "event\n" + "".join(f"Launch {i}\n" for i in range(4))


def _page_text(at: AppTest) -> str:
    parts: list[str] = []
    for kind in ("markdown", "text", "caption", "info", "success", "error", "title"):
        parts += [str(getattr(e, "value", "")) for e in getattr(at, kind)]
    parts += [str(e.label) for e in at.button] + [str(e.label) for e in at.selectbox]
    parts += [str(o) for e in at.selectbox for o in e.options]
    parts += [e.proto.text for e in at.get("progress")]
    parts += [str(e.value) for e in at.table] + [str(e.value) for e in at.dataframe]
    return "\n".join(parts)


@pytest.fixture
def runs(session: Session, mock_provider: Any) -> dict[str, int]:
    app = create_app(session=session, name="Launches")
    version = upload_dataset(
        session=session, app_id=app.id or 0, name="events", data=CSV.encode(), filename="e.csv"
    )
    session.commit()
    ids = {}
    for name, template in (("plain", "{{event}}"), ("shouty", "LOUD {{event}}")):
        run = create_run(
            session=session, app_id=app.id or 0, dataset_version_id=version.id or 0,
            config=RunConfig(model="mock/echo",
                             prompt=PromptTemplate(kind="completion", template=template)),
        )  # fmt: skip
        session.commit()
        run_sync(run_id=run.id or 0)
        ids[name] = run.id or 0
    ids["app"] = app.id or 0
    return ids


def _signed_in_as(monkeypatch: pytest.MonkeyPatch, name: str, role: str) -> AppTest:
    monkeypatch.setenv("STUDIO_AUTH", "local")
    reset_settings()
    with session_scope() as session:
        user = create_user(session=session, name=name, password="a long password 1", role=role)
        token = start_session(session=session, user_id=user.id)
    at = AppTest.from_file(REVIEW, default_timeout=60)
    at.session_state["studio_session_token"] = token
    return at


def _review(runs: dict[str, int], **kw: Any) -> int:
    spec = ReviewSpec(
        **{"name": "Tone", "task": "Announce the event", "good": "Names it",
           "bad": "Anything else", "source_kind": "run", "source_id": runs["plain"],
           "item_order": "source", **kw}
    )  # fmt: skip
    with session_scope() as session:
        return create_review(session=session, app_id=runs["app"], spec=spec).id or 0


def test_without_reviews_each_tab_says_what_to_do(runs: dict[str, int]) -> None:
    at = AppTest.from_file(REVIEW, default_timeout=60).run()
    assert not at.exception
    text = _page_text(at)
    assert "Nothing to review yet" in text
    assert "has no review yet. Create one in the **New review** tab." in text


def test_a_reviewer_rates_with_the_buttons_and_resumes(
    runs: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    review_id = _review(runs)
    at = _signed_in_as(monkeypatch, "rita", "reviewer").run()
    assert not at.exception
    assert len(at.tabs) == 0  # a reviewer sees the queue only, no results or new review
    assert "Names it" in _page_text(at) and "Launch 0" in _page_text(at)
    good = at.button(key="review_give_good")
    assert good.proto.shortcut == "g"
    good.click().run()
    at.button(key="review_give_bad").click().run()
    assert "You have rated 2 of 4 items" in _page_text(at)
    at.button(key="review_undo").click().run()
    assert "Your last rating was taken back" in _page_text(at)
    with session_scope() as session:
        given = session.exec(select(ReviewRating.rating)).all()
    assert given == ["good"]
    again = AppTest.from_file(REVIEW, default_timeout=60)  # a new browser tab
    again.session_state["studio_session_token"] = at.session_state["studio_session_token"]
    again.run()
    assert "You have rated 1 of 4 items" in _page_text(again)
    for _ in range(3):
        again.button(key="review_give_good").click().run()
    assert "You have rated everything this review has for you" in _page_text(again)
    assert review_id


def test_a_blind_ab_item_never_names_a_contender(
    session: Session, runs: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    evaluation = create_evaluation(
        session=session, app_id=runs["app"], name="both",
        run_ids=[runs["plain"], runs["shouty"]], evaluators=[EvaluatorConfig(id="exact_match")],
    )  # fmt: skip
    _review(runs, kind="pairwise", source_kind="evaluation", source_id=evaluation.id or 0)
    at = _signed_in_as(monkeypatch, "rita", "reviewer").run()
    for _ in range(4):
        text = _page_text(at)
        assert "Left" in text and "Right" in text
        for name in ("mock/echo", "run ", "(run", "plain", "shouty"):
            assert name not in text, f"{name!r} shown in a blind review"
        at.button(key="review_give_left").click().run()
    assert "You have rated everything" in _page_text(at)


def test_results_show_hit_rate_and_agreement_and_the_form_creates_a_review(
    runs: dict[str, int],
) -> None:
    at = AppTest.from_file(REVIEW, default_timeout=60).run()
    at.text_input[0].set_value("Launch tone")  # the form's name field
    at.text_area[0].set_value("Announce the event")
    at.button[-1].click().run()  # "Create the review"
    assert not at.exception
    assert "Created review #1" in _page_text(at)
    for _ in range(4):  # the local user rates in the To review tab
        at.button(key="review_give_good").click().run()
    text = _page_text(at)
    assert "4 of 4 decided items are good (100%)" in text
    assert "95% Wilson interval" in text
    assert "Agreement needs at least two raters" in text
