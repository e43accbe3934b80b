"""Journey: evaluate what a run's retrieval step found, in a real browser.

A finished run of a help-desk app whose rows stored the chunks they retrieved (written
directly, as the run service stores them); on Evaluations pick that run, tick Retrieval
hit rate and MRR in the Retrieval (RAG) tab, see the expected-document column chosen
from the dataset's columns, press Evaluate, and read the Retrieval figures with their
sentences and one row's chunks.
"""

from __future__ import annotations

from typing import Any

from studio.core.templates import PromptTemplate
from studio.services.apps import create_app
from studio.services.datasets import upload_dataset
from studio.services.runs import RunConfig, create_run
from studio.store import session_scope
from studio.store.tables import Run, RunResult
from tests.browser.helpers import full_shot, nav, settle
from tests.evaluators.rag_runs import retrieval_record

CSV = (
    b"question,expected_document\n"
    b"How much does Starter cost?,plans.md\n"
    b"Are yearly plans refunded?,refunds.md\n"
    b"Where is customer data stored?,data.md\n"
    b"Who answers the phone?,support.md\n"
)
FOUND = [
    ["plans.md", "refunds.md"],
    ["plans.md", "refunds.md"],
    ["data.md", "plans.md"],
    ["plans.md", "data.md"],
]


def _seed() -> int:
    with session_scope() as session:
        app = create_app(session=session, name="Help desk")
        assert app.id is not None
        version = upload_dataset(
            session=session, app_id=app.id, name="questions", data=CSV, filename="q.csv"
        )
        run = create_run(
            session=session,
            app_id=app.id,
            dataset_version_id=version.id or 0,
            config=RunConfig(
                model="builtin/echo", prompt=PromptTemplate.completion("{{question}}")
            ),
        )
        session.flush()
        assert run.id is not None
        for row, documents in enumerate(FOUND):
            session.add(
                RunResult(
                    run_id=run.id,
                    row_index=row,
                    rendered_prompt=f"Answer from the notes. Question {row}",
                    output=f"An answer from {documents[0]}.",
                    retrieval=retrieval_record(row, documents),
                )
            )
        stored = session.get(Run, run.id)
        assert stored is not None
        stored.status, stored.total_rows = "done", len(FOUND)
        session.add(stored)
        return run.id


def test_evaluate_retrieval_hit_rate_and_mrr_of_a_run(studio_url: str, page: Any) -> None:
    run_id = _seed()
    page.goto(studio_url)
    page.get_by_role("heading", name="Prompt Studio").wait_for(timeout=60_000)
    nav(page, "Evaluations")
    page.get_by_text("No evaluations yet").wait_for(timeout=30_000)

    runs = page.get_by_role("combobox", name="Finished runs of this dataset version")
    runs.click()
    page.get_by_role("option", name=f"Run {run_id}", exact=False).first.click()
    page.keyboard.press("Escape")
    settle(page)
    page.get_by_role("tab", name="Retrieval (RAG)").click()
    for name in ("Retrieval hit rate", "MRR (mean reciprocal rank)"):
        page.get_by_role("checkbox", name=name, exact=True).check(force=True)
        settle(page)
    column = page.get_by_role("combobox", name="Column naming the expected document").first
    column.wait_for(timeout=30_000)
    assert (
        "expected_document" in column.input_value()
        or page.get_by_text("expected_document").first.is_visible()
    )
    page.get_by_text("evaluate a run of a variant with retrieval").filter(
        visible=True
    ).first.wait_for()
    full_shot(page, "journey-rag-1-form")

    page.get_by_role("button", name="Evaluate", exact=True).click()
    page.get_by_role("heading", name="Retrieval").wait_for(timeout=120_000)
    settle(page)
    full_shot(page, "journey-rag-2-report")
    page.get_by_text("at least one retrieved chunk came from an expected document").filter(
        visible=True
    ).first.wait_for()
    content = page.content()
    assert "Chunks retrieved" in content and "the RAG evaluators judged these" in content
    assert "Something went wrong" not in content and "Traceback" not in content
