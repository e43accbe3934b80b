"""The Knowledge page, driven with AppTest: the empty states, creating a knowledge base,
uploading the handbook with a file the studio must refuse (named in a sentence while the
others go in), the progress of the ingestion job, the chunks of a document, and a query."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from studio.services.apps import create_app
from studio.services.jobs import wait_job
from studio.services.knowledge import create_knowledge_base
from studio.services.knowledge_jobs import latest_ingestion
from studio.services.knowledge_parse import ChunkingOptions
from studio.store import session_scope
from studio.store.tables import KnowledgeBase
from tests.services.knowledge_files import add_words_connection

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "knowledge.py")
HANDBOOK = ROOT / "data" / "handbook"


def _open() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _app(session: Session) -> int:
    app = create_app(session=session, name="Support bot")
    session.commit()
    assert app.id is not None
    return app.id


def _kb(session: Session) -> int:
    """A knowledge base on bag-of-words embeddings (fast, no weights)."""
    model = add_words_connection(session)
    kb = create_knowledge_base(
        session=session,
        app_id=_app(session),
        name="Handbook",
        embedding_model=model,
        chunking=ChunkingOptions(method="headings", size=400, overlap=0),
    )
    session.commit()
    assert kb.id is not None
    return kb.id


def test_without_apps_the_page_says_to_create_one_first() -> None:
    at = _open()
    assert any("create one on the Apps page" in i.value for i in at.info)


def test_an_app_without_knowledge_base_offers_to_create_one(session: Session) -> None:
    _app(session)
    at = _open()
    assert any("has no knowledge base yet" in i.value for i in at.info)
    assert at.selectbox(key="knowledge_new_model").value == "builtin/all-minilm-l6-v2"
    captions = " ".join(c.value for c in at.caption)
    assert "By size" in " ".join(at.radio(key="knowledge_new_method").options)
    assert "largest natural break" in captions  # the chosen chunking method, explained

    at.radio(key="knowledge_new_method").set_value("headings").run()
    assert "Markdown text is cut at its headings" in " ".join(c.value for c in at.caption)
    at.text_input(key="knowledge_new_name").input("Product handbook")
    at.number_input(key="knowledge_new_size").set_value(600)
    at.button(key="knowledge_create").click().run()

    assert not at.exception
    assert any("'Product handbook' is ready" in s.value for s in at.success)
    with session_scope() as s:
        kb = s.get(KnowledgeBase, 1)
        assert kb is not None and kb.chunking["method"] == "headings"
        assert kb.chunking["size"] == 600
    assert any("No documents yet" in i.value for i in at.info)


def test_a_too_large_overlap_is_refused_with_a_sentence(session: Session) -> None:
    _app(session)
    at = _open()
    at.text_input(key="knowledge_new_name").input("kb")
    at.number_input(key="knowledge_new_size").set_value(100)
    at.number_input(key="knowledge_new_overlap").set_value(60)
    at.button(key="knowledge_create").click().run()
    assert any("too large for chunks of 100" in e.value for e in at.error)


def _upload_handbook(kb_id: int) -> AppTest:
    at = _open()
    files = [(p.name, p.read_bytes(), "application/octet-stream") for p in HANDBOOK.iterdir()]
    files.append(("scan.pdf", b"%PDF-1.4 this is not really a PDF", "application/pdf"))
    at.file_uploader[0].set_value(files).run()
    at.button(key="knowledge_upload").click().run()
    assert not at.exception, [e.value for e in at.exception]
    view = latest_ingestion(kb_id=kb_id)
    assert view is not None  # the page started a job, it did not ingest in its own thread
    wait_job(job_id=view.job.id, timeout=60)
    return at.run()


def test_uploading_the_handbook_refuses_the_bad_file_and_keeps_the_others(
    session: Session,
) -> None:
    kb_id = _kb(session)
    at = _upload_handbook(kb_id)

    assert not at.exception
    success = " ".join(s.value for s in at.success)
    assert "6 added" in success and "every chunk can be found" in success
    warnings = " ".join(w.value for w in at.warning)
    assert "Refused scan.pdf" in warnings and "'scan.pdf' is not a PDF" in warnings
    table = at.dataframe[0].value
    assert sorted(table["Document"]) == sorted(p.name for p in HANDBOOK.iterdir())
    assert set(table["Version"]) == {1}

    at.selectbox(key="knowledge_doc").select(
        next(i for i in at.selectbox(key="knowledge_doc").options if "billing" in str(i))
    ).run()
    chunks = at.dataframe[1].value
    assert any("Growth costs 29 euros" in t for t in chunks["Text"])


def test_a_query_shows_the_best_chunks_with_their_scores_and_a_chart(session: Session) -> None:
    kb_id = _kb(session)
    at = _upload_handbook(kb_id)

    at.text_input(key="knowledge_query").input("How much does the Growth plan cost?")
    at.button(key="knowledge_search").click().run()

    assert not at.exception, [e.value for e in at.exception]
    answer = at.dataframe[-1].value
    assert answer["Document"].iloc[0] == "billing.md"
    assert list(answer["Rank"]) == list(range(1, len(answer) + 1)) and len(answer) == 5
    assert answer["Score"].is_monotonic_decreasing
    captions = " ".join(c.value for c in at.caption)
    assert "chunks nearest to the query score" in captions  # the chart says what it shows
    assert at.get("plotly_chart")


def test_re_embedding_with_another_model_says_the_old_vectors_serve_meanwhile(
    session: Session,
) -> None:
    kb_id = _kb(session)
    at = _upload_handbook(kb_id)
    at.selectbox(key="knowledge_model_new").select("builtin/all-minilm-l6-v2").run()
    at.button(key="knowledge_reembed").click().run()

    assert not at.exception, [e.value for e in at.exception]
    said = " ".join(s.value for s in at.success)
    assert "Queries keep using the vectors of words/bag until it is done" in said
    view = latest_ingestion(kb_id=kb_id)
    assert view is not None and view.files == []  # a job that embeds only
    done = wait_job(job_id=view.job.id, timeout=120)
    assert done.state == "succeeded" and done.done == done.total > 0
    with session_scope() as s:
        kb = s.get(KnowledgeBase, kb_id)
        assert kb is not None and kb.serving_model == "builtin/all-minilm-l6-v2"
