"""Retrieval in runs: each row searches the knowledge base with its own query, the prompt
sees the chunks as {{context}}, the run stores which chunks each row used, and what can go
wrong (another app's knowledge base, a misspelt column, an embedding model that goes down
mid-run, {{context}} without a retrieval step) is a sentence, not a traceback."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

import pytest
from sqlmodel import Session

from studio.core.errors import ConflictError, MissingColumnsError, NotFoundError, StudioError
from studio.core.identity import acting_as
from studio.core.templates import PromptTemplate
from studio.services.members import add_member
from studio.services.retrieval import aretrieve, check_retrieval, retrieve
from studio.services.retrieval_spec import RetrievalSpec
from studio.services.run_results import export_results, result_table, try_row
from studio.services.runs import RunConfig, create_run, list_results, retry_failed, run_sync
from studio.services.users import actor_for_user, create_user
from studio.store import session_scope
from studio.store.tables import Run
from tests.services.knowledge_files import WordsProvider
from tests.services.retrieval_setup import (
    FlakyWords,
    add_flaky_connection,
    handbook,
    help_app,
    questions,
    rag_config,
)


def _start(session: Session, app_id: int, version_id: int, config: RunConfig) -> int:
    run = create_run(session=session, app_id=app_id, dataset_version_id=version_id, config=config)
    session.commit()
    assert run.id is not None
    return run.id


def test_each_row_gets_the_chunk_that_answers_it_and_the_run_stores_it(
    session: Session, mock_provider: Any
) -> None:
    app_id = help_app(session)
    kb_id = handbook(session, app_id)
    run_id = _start(session, app_id, questions(session, app_id), rag_config(kb_id))

    progress = run_sync(run_id=run_id)

    assert (progress.done, progress.errors) == (3, 0)
    results = list_results(session=session, run_id=run_id)
    documents = [r.retrieval["chunks"][0]["document"] for r in results if r.retrieval]
    assert documents == ["plans.md", "refunds.md", "data.md"]
    first = results[0]
    assert first.retrieval is not None and first.retrieval["query"].startswith("How much")
    chunk = first.retrieval["chunks"][0]
    assert set(chunk) == {"id", "document_id", "document", "position", "score", "text"}
    assert "Starter costs 12 euros" in chunk["text"]
    assert first.rendered_prompt is not None and chunk["text"] in first.rendered_prompt
    # The run's configuration snapshot records the step it ran with.
    stored = session.get(Run, run_id)
    assert stored is not None and stored.config["retrieval"]["kb_id"] == kb_id


def test_the_results_table_and_csv_show_the_documents_chunk_ids_and_scores(
    session: Session, mock_provider: Any
) -> None:
    app_id = help_app(session)
    kb_id = handbook(session, app_id)
    run_id = _start(session, app_id, questions(session, app_id), rag_config(kb_id, top_k=2))
    run_sync(run_id=run_id)

    table = result_table(session=session, run_id=run_id)
    for column in ("retrieved_documents", "retrieved_chunk_ids", "retrieval_scores"):
        assert column in table.columns
    rows = list(
        csv.DictReader(
            io.StringIO(export_results(session=session, run_id=run_id, fmt="csv").decode())
        )
    )
    assert rows[2]["retrieved_documents"].split("; ")[0] == "data.md"
    ids = [int(i) for i in rows[2]["retrieved_chunk_ids"].split("; ")]
    scores = [float(s) for s in rows[2]["retrieval_scores"].split("; ")]
    assert len(ids) == len(scores) == 2 and scores[0] >= scores[1]


def test_a_run_without_retrieval_shows_no_retrieval_columns(
    session: Session, mock_provider: Any
) -> None:
    app_id = help_app(session)
    config = RunConfig(model="mock/echo", prompt=PromptTemplate.completion("Q: {{question}}"))
    run_id = _start(session, app_id, questions(session, app_id), config)
    run_sync(run_id=run_id)
    assert "retrieved_documents" not in result_table(session=session, run_id=run_id).columns


def test_context_without_a_retrieval_step_is_refused_with_a_sentence(
    session: Session, mock_provider: Any
) -> None:
    app_id = help_app(session)
    version_id = questions(session, app_id)
    config = RunConfig(
        model="mock/echo", prompt=PromptTemplate.completion("{{context}} {{question}}")
    )
    with pytest.raises(MissingColumnsError, match="retrieval step fills in") as caught:
        create_run(session=session, app_id=app_id, dataset_version_id=version_id, config=config)
    assert "Switch on retrieval" in str(caught.value)


def test_a_misspelt_column_in_the_query_template_is_refused_before_the_run(
    session: Session, mock_provider: Any
) -> None:
    app_id = help_app(session)
    kb_id = handbook(session, app_id)
    version_id = questions(session, app_id)
    config = rag_config(kb_id, query_template="{{questoin}}")
    with pytest.raises(MissingColumnsError) as caught:
        create_run(session=session, app_id=app_id, dataset_version_id=version_id, config=config)
    message = str(caught.value)
    assert "retrieval query template uses {{questoin}}" in message
    assert "did you mean 'question'" in message


def test_another_apps_knowledge_base_is_refused(session: Session, mock_provider: Any) -> None:
    mine, theirs = help_app(session, "Mine"), help_app(session, "Theirs")
    their_kb = handbook(session, theirs, name="theirs")
    with pytest.raises(ConflictError, match="belongs to another app"):
        check_retrieval(session=session, spec=RetrievalSpec(kb_id=their_kb), app_id=mine)
    # A member of only the first app is not even told the other one exists.
    mia = create_user(session=session, name="mia", password="correct horse battery")
    add_member(session=session, app="Mine", user="mia")
    session.commit()
    with acting_as(actor_for_user(mia)), session_scope() as s, pytest.raises(NotFoundError):
        check_retrieval(session=s, spec=RetrievalSpec(kb_id=their_kb), app_id=mine)


def test_the_reranker_must_be_a_reranking_model(session: Session, mock_provider: Any) -> None:
    app_id = help_app(session)
    kb_id = handbook(session, app_id)
    spec = RetrievalSpec(kb_id=kb_id, reranker="builtin/smollm2-135m-instruct")
    with pytest.raises(ConflictError, match="not a RERANKING model"):
        check_retrieval(session=session, spec=spec, app_id=app_id)


def test_a_reranker_reorders_the_candidates_and_keeps_top_k(
    session: Session, mock_provider: Any
) -> None:
    app_id = help_app(session)
    kb_id = handbook(session, app_id)
    spec = RetrievalSpec(kb_id=kb_id, top_k=1, reranker="mock/rerank", candidates=6)
    got = retrieve(session=session, spec=spec, row={"question": "Where are backups kept?"})
    assert len(got.hits) == 1 and got.hits[0].document == "data.md"
    reranked = [c for c in mock_provider.calls if c[0] == "rerank"]
    assert len(reranked) == 1 and len(reranked[0][2].chunks) == 6  # all candidates scored
    assert got.hits[0].score == pytest.approx(2 / 4)  # the reranker's score, not cosine


def test_templates_may_loop_over_the_chunks(session: Session, mock_provider: Any) -> None:
    app_id = help_app(session)
    kb_id = handbook(session, app_id)
    loop = "{% for c in chunks %}[{{ c.document }}] {{ c.text }}\n{% endfor %}Q: {{question}}"
    config = rag_config(kb_id, prompt=loop, top_k=2)
    tried = try_row(session=session, config=config, row={"question": "Are yearly plans refunded?"})
    assert tried.error is None
    assert tried.rendered.startswith("[refunds.md] Yearly plans are refunded")
    assert tried.retrieval is not None and len(tried.retrieval["chunks"]) == 2


def test_the_embedding_model_failing_mid_run_fails_only_its_rows_and_a_retry_fills_them(
    session: Session, mock_provider: Any
) -> None:
    app_id = help_app(session)
    kb_id = handbook(session, app_id, model=add_flaky_connection(session))
    run_id = _start(session, app_id, questions(session, app_id), rag_config(kb_id))
    FlakyWords.fail_on = "refunded"  # the server goes down for one row's query

    progress = run_sync(run_id=run_id)

    assert (progress.status, progress.done, progress.errors) == ("done", 3, 1)
    results = {r.row_index: r for r in list_results(session=session, run_id=run_id)}
    failed = results[1]
    assert failed.error is not None and failed.error.startswith("Retrieval failed")
    assert "embedding server is down" in failed.error and failed.retrieval is None
    assert results[0].error is None and results[2].error is None
    asked = len([c for c in mock_provider.calls if c[0] in ("chat", "complete")])
    assert asked == 2  # the failed row never reached the model

    FlakyWords.fail_on = None  # the server is back: the retry answers only the failed row
    assert retry_failed(session=session, run_id=run_id) == 1
    session.commit()
    again = run_sync(run_id=run_id)
    assert (again.done, again.errors) == (3, 0)
    after = len([c for c in mock_provider.calls if c[0] in ("chat", "complete")])
    assert after == asked + 1


def test_resuming_a_finished_run_searches_nothing_again(
    session: Session, mock_provider: Any
) -> None:
    app_id = help_app(session)
    kb_id = handbook(session, app_id)
    run_id = _start(session, app_id, questions(session, app_id), rag_config(kb_id))
    run_sync(run_id=run_id)
    searched = sum(WordsProvider.asked.values())
    run_sync(run_id=run_id)  # a resume after everything was answered
    assert sum(WordsProvider.asked.values()) == searched


def test_an_empty_query_is_a_sentence(session: Session, mock_provider: Any) -> None:
    app_id = help_app(session)
    kb_id = handbook(session, app_id)
    spec = RetrievalSpec(kb_id=kb_id)
    with pytest.raises(StudioError, match="retrieval query is empty"):
        retrieve(session=session, spec=spec, row={"question": "  "})


def test_the_async_path_reranks_and_fuses_like_the_sync_one(
    session: Session, mock_provider: Any
) -> None:
    app_id = help_app(session)
    kb_id = handbook(session, app_id)
    spec = RetrievalSpec(kb_id=kb_id, top_k=2, reranker="mock/rerank", hybrid=True)
    row = {"question": "Where are backups kept?"}
    synced = retrieve(session=session, spec=spec, row=row)
    awaited = asyncio.run(aretrieve(spec=spec, row=row))
    assert [h.chunk_id for h in awaited.hits] == [h.chunk_id for h in synced.hits]
    assert awaited.hits[0].document == "data.md"
    assert awaited.logged()["chunks"][0] == {
        "id": awaited.hits[0].chunk_id,
        "document": "data.md",
        "score": pytest.approx(0.5),
    }
