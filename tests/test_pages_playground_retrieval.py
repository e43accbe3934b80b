"""The Playground's Retrieval section, driven with AppTest: the empty state points to the
Knowledge page, the preview shows the chunks the chosen row retrieves, a run stores and
shows what each row used, and a saved variant keeps its retrieval step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from studio.core.templates import PromptTemplate
from studio.services.retrieval_spec import RetrievalSpec
from studio.services.runs import list_results
from studio.services.variants import VariantConfig, create_variant, latest_version, list_variants
from studio.store import session_scope
from studio.ui.run_jobs import run_jobs
from tests.services.retrieval_setup import PROMPT, handbook, help_app, questions

ROOT = Path(__file__).resolve().parent.parent
PLAYGROUND = str(ROOT / "pages" / "playground.py")


@pytest.fixture
def help_desk(mock_provider: Any) -> tuple[int, int | None]:
    """An app with the questions dataset (and no knowledge base yet)."""
    with session_scope() as session:
        app_id = help_app(session)
        questions(session, app_id)
    return app_id, None


def _open() -> AppTest:
    at = AppTest.from_file(PLAYGROUND, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _write(at: AppTest, template: str = PROMPT) -> AppTest:
    at.text_area(key="pg_template").set_value(template)
    at.selectbox(key="pg_model").set_value("mock/echo")
    return at.run()


def test_without_a_knowledge_base_it_says_to_create_one_on_the_knowledge_page(
    help_desk: tuple[int, int | None],
) -> None:
    at = _write(_open())
    at.toggle(key="pg_rag_on").set_value(True).run()
    assert not at.exception
    assert any("Create one on the Knowledge page" in i.value for i in at.info)
    # {{context}} with no knowledge base picked: a sentence, and nothing to generate.
    assert any("retrieval step fills in" in e.value for e in at.error)
    assert at.button(key="pg_generate").disabled


def test_the_preview_shows_the_chunks_the_row_retrieves_and_a_run_stores_them(
    help_desk: tuple[int, int | None],
) -> None:
    app_id, _ = help_desk
    with session_scope() as session:
        kb_id = handbook(session, app_id, name="handbook")
    at = _write(_open())
    at.toggle(key="pg_rag_on").set_value(True).run()
    at.number_input(key="pg_rag_top_k").set_value(1).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="pg_rag_kb").value == kb_id
    assert any("Retrieved for this row" in m.value for m in at.markdown)
    (chunks,) = [d.value for d in at.dataframe]
    assert list(chunks["document"]) == ["plans.md"]
    assert any("Starter costs 12 euros" in c.value for c in at.code)  # in the prompt
    assert any("cosine similarity" in c.value for c in at.caption)  # the score explained

    at.button(key="pg_generate").click().run()
    run_id = at.session_state["pg_run_id"]
    job = run_jobs().get(run_id)
    assert job is not None and job.wait(timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    shown = at.dataframe[-1].value
    assert list(shown["retrieved_documents"]) == ["plans.md", "refunds.md", "data.md"]
    with session_scope() as session:
        results = list_results(session=session, run_id=run_id)
    assert all(r.retrieval and len(r.retrieval["chunks"]) == 1 for r in results)

    at.text_input(key="pg_save_name").set_value("rag")
    at.button(key="pg_save").click().run()
    assert not at.exception
    with session_scope() as session:
        (variant,) = list_variants(session=session, app_id=app_id)
        saved = latest_version(session=session, variant_id=variant.id)
    assert saved.retrieval["kb_id"] == kb_id and saved.retrieval["top_k"] == 1


def test_a_misspelt_query_column_is_a_sentence_in_the_preview(
    help_desk: tuple[int, int | None],
) -> None:
    app_id, _ = help_desk
    with session_scope() as session:
        handbook(session, app_id, name="handbook")
    at = _write(_open())
    at.toggle(key="pg_rag_on").set_value(True).run()
    at.text_input(key="pg_rag_query").set_value("{{questoin}}").run()
    assert not at.exception
    assert any("did you mean 'question'" in e.value for e in at.error)
    assert at.button(key="pg_generate").disabled


def test_editing_a_retrieving_variant_on_the_variants_page_keeps_its_step(
    help_desk: tuple[int, int | None],
) -> None:
    app_id, _ = help_desk
    with session_scope() as session:
        kb_id = handbook(session, app_id, name="handbook")
        first = create_variant(
            session=session,
            app_id=app_id,
            name="rag",
            config=VariantConfig(
                model="mock/echo",
                prompt=PromptTemplate.completion(PROMPT),
                retrieval=RetrievalSpec(kb_id=kb_id, top_k=2),
            ),
        )
    at = AppTest.from_file(str(ROOT / "pages" / "variants.py"), default_timeout=60)
    at.session_state["variants_selected"] = first.variant_id
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("top 2 chunks of knowledge base 'handbook'" in m.value for m in at.markdown)
    prefix = f"variants_edit_{first.id}"
    at.text_area(key=f"{prefix}_template").set_value(PROMPT + " Be brief.")
    at.button(key=f"variants_save_{first.id}").click().run()
    assert not at.exception and not at.error
    with session_scope() as session:
        newest = latest_version(session=session, variant_id=first.variant_id)
    assert newest.version == 2 and newest.retrieval["kb_id"] == kb_id


def test_trying_a_row_sends_the_retrieved_chunks_to_the_model(
    help_desk: tuple[int, int | None], mock_provider: Any
) -> None:
    app_id, _ = help_desk
    with session_scope() as session:
        handbook(session, app_id, name="handbook")
    at = _write(_open())
    at.toggle(key="pg_rag_on").set_value(True).run()
    at.number_input(key="pg_preview_row").set_value(3).run()
    at.button(key="pg_try_button").click().run()
    assert not at.exception, [e.value for e in at.exception]
    _method, _model, request = mock_provider.calls[-1]
    sent = request.messages[-1].content
    assert "Customer data is stored in Frankfurt." in sent
    assert sent.endswith("Question: Where is customer data stored?")
    assert any("echo: Answer from these notes" in i.value for i in at.info)
