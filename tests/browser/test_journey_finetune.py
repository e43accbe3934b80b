"""Browser journey: start a short fine-tuning job on an OpenAI-compatible server (a fake
one on loopback), watch its loss curve, and ask the new model and its base the same
question side by side, then compare both on the job's validation rows on the Compare page.
Screenshots land in test-artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from studio.core.schemas import ModelType
from studio.models import registry
from studio.models.specs import ModelCreate
from studio.store import session_scope
from tests.browser.helpers import full_shot, nav, pick, settle
from tests.services.finetune_fakes import FineTuningServer, make_dataset


@pytest.fixture
def fine_tuning_server() -> Iterator[FineTuningServer]:
    with FineTuningServer(polls=4) as server:
        with session_scope() as session:
            make_dataset(session)
            server.connect(session)
            registry.create_model(
                session=session,
                data=ModelCreate(
                    name="acme-mini", model_type=ModelType.CHAT_COMPLETION,
                    connection="acme", provider_model="base-mini",
                ),
            )  # fmt: skip
        yield server


def test_start_a_job_watch_the_loss_and_compare_with_the_base(
    studio_url: str, page: Any, fine_tuning_server: FineTuningServer
) -> None:
    page.goto(studio_url)
    nav(page, "Fine-tuning")
    pick(page, "Base model", "acme-mini")
    full_shot(page, "finetune-form")
    page.get_by_role("button", name="Start fine-tuning").click()
    page.get_by_text("Fine-tuning job 1 started").wait_for(timeout=30_000)
    page.get_by_text("training loss").filter(visible=True).first.wait_for(timeout=60_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
    full_shot(page, "finetune-running")
    page.get_by_text("is ready").wait_for(timeout=90_000)
    settle(page)
    question = page.get_by_role("textbox", name="Ask both models")
    question.fill("What is product ZX-101?")
    question.press("Enter")
    settle(page)
    page.get_by_role("button", name="Ask both").click()
    page.get_by_text("Harbor lamp").wait_for(timeout=30_000)
    page.get_by_text("I do not know that product.").wait_for()
    page.wait_for_timeout(2_500)  # the job list redraws every 2 s: the answers stay
    assert page.get_by_text("Harbor lamp").is_visible()
    full_shot(page, "finetune-compare")

    # Compare with base: both models answer the validation row, scored on the Compare page
    page.get_by_role("button", name="Compare with base").click()
    page.get_by_role("heading", name="Compare", exact=True).wait_for(timeout=60_000)
    page.get_by_text("Against the baseline, A · base: acme-mini").wait_for(timeout=120_000)
    # the validation row: the fine-tuned model knows the product, the base does not
    page.get_by_text("passes 1 more of 1 rows than base: acme-mini").wait_for(timeout=60_000)
    settle(page)
    full_shot(page, "finetune-compare-with-base")
