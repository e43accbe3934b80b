"""Browser journey: create a knowledge base from the handbook in data/handbook, watch the
ingestion job finish, browse a document's chunks, and ask a question whose answer is in
billing.md, with and without the built-in reranker. Screenshots land in test-artifacts/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlmodel import Session

from studio.services.apps import create_app
from tests.browser.helpers import full_shot, nav, settle

ROOT = Path(__file__).resolve().parents[2]
HANDBOOK = sorted((ROOT / "data" / "handbook").iterdir())
QUESTION = "How much does the Growth plan cost?"
RERANKER = "builtin/all-minilm-l6-v2-rerank"


def _pick(page: Any, label: str, option: str) -> None:
    """Pick an option of a select box (opened again if a rerun closed it)."""
    box = page.get_by_role("combobox", name=label, exact=True)
    box.wait_for(timeout=30_000)
    settle(page)
    for _ in range(3):
        box.click()
        choice = page.get_by_role("option", name=option, exact=True)
        try:
            choice.wait_for(timeout=5_000)
        except Exception:
            continue
        choice.click()
        settle(page)
        return
    raise AssertionError(f"no option {option!r} in {label!r}")


def test_knowledge_base_from_the_handbook_answers_from_billing(
    studio_url: str, page: Any, session: Session
) -> None:
    create_app(session=session, name="Support bot")
    session.commit()
    page.goto(studio_url)
    page.get_by_role("link", name="Knowledge").click(timeout=60_000)
    page.get_by_role("heading", name="Knowledge", exact=True).wait_for(timeout=60_000)
    page.get_by_text("Support bot has no knowledge base yet").wait_for(timeout=30_000)
    settle(page)
    full_shot(page, "knowledge-empty")

    page.get_by_role("textbox", name="Name").fill("Product handbook")
    page.get_by_text("By headings").click()
    settle(page)
    page.get_by_text("Markdown text is cut at its headings").wait_for()
    page.get_by_role("button", name="Create knowledge base").click()
    page.get_by_text("'Product handbook' is ready").wait_for(timeout=30_000)
    settle(page)

    page.locator("input[type=file]").first.set_input_files([str(p) for p in HANDBOOK])
    page.get_by_role("button", name="Upload and embed").click(timeout=30_000)
    # The job reads, then embeds (the built-in MiniLM loads first): the bar shows meanwhile.
    page.get_by_text("Embedding chunks:").or_(
        page.get_by_text("every chunk can be found")
    ).first.wait_for(timeout=60_000)
    page.screenshot(path=str(ROOT / "test-artifacts" / "knowledge-progress.png"))
    page.get_by_text("every chunk can be found by a query").wait_for(timeout=180_000)
    settle(page)
    page.get_by_text("6 added").wait_for()
    full_shot(page, "knowledge-documents")

    _pick(page, "Document", "billing.md")
    page.get_by_text("billing.md is cut into").wait_for()
    page.get_by_text("Growth costs 29 euros", exact=False).first.wait_for(state="attached")
    full_shot(page, "knowledge-chunks")

    page.get_by_role("tab", name="Try a query").click()
    page.get_by_role("textbox", name="Query").fill(QUESTION)
    page.get_by_role("button", name="Search chunks", exact=True).click()
    best = page.get_by_text("Best match: billing.md", exact=False)
    best.wait_for(timeout=120_000)
    settle(page)
    page.get_by_text("chunks nearest to the query score").wait_for()
    full_shot(page, "knowledge-query")

    _pick(page, "Reranker", RERANKER)
    page.get_by_role("button", name="Search chunks", exact=True).click()
    page.get_by_text(f"Reranked by {RERANKER}").wait_for(timeout=120_000)
    page.get_by_text("Reranker's best match: billing.md", exact=False).wait_for(timeout=60_000)
    settle(page)
    full_shot(page, "knowledge-reranked")

    nav(page, "Jobs")
    page.get_by_text("Show finished jobs", exact=True).click()
    page.get_by_text("knowledge base 1").filter(visible=True).first.wait_for(timeout=30_000)
    full_shot(page, "knowledge-jobs")
