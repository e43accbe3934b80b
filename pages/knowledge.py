"""Knowledge: an app's knowledge bases; upload documents, watch them embed, browse their
chunks, try a query (with a reranker, and the score distribution)."""

from __future__ import annotations

import streamlit as st

from studio.core.errors import StudioError
from studio.services.knowledge import list_knowledge_bases
from studio.ui import db_ready, page_header, show_error, studio_session
from studio.ui.knowledge_bases import KB_KEY, create_form, embedding_settings, show_flash
from studio.ui.knowledge_documents import document_list, documents_of
from studio.ui.knowledge_query import try_query
from studio.ui.knowledge_upload import ingestion_panel, upload_form
from studio.ui.pickers import pick_app

page_header(
    "Knowledge",
    "Your own documents, for prompts to answer from. A knowledge base cuts each document "
    "into chunks and gives every chunk a vector with an embedding model; a question then "
    "finds the chunks nearest to it.",
)
db_ready()
app = pick_app("knowledge_app", why="Knowledge bases belong to an app")
try:
    with studio_session() as session:
        bases = {kb.id: kb for kb in list_knowledge_bases(session=session, app_id=app.id)}
        for kb in bases.values():
            session.expunge(kb)
except StudioError as exc:
    show_error(exc)
    st.stop()
show_flash()

if not bases:
    st.info(
        f"{app.name} has no knowledge base yet. Create one here: give it a name, keep the "
        "built-in embedding model (or pick another), choose how documents are cut into "
        "chunks, then upload your documents."
    )
    create_form(app.id)
    st.stop()

if st.session_state.get(KB_KEY) not in bases:
    st.session_state[KB_KEY] = next(iter(bases))
left, right = st.columns([3, 1], vertical_alignment="bottom")
kb_id = left.selectbox(
    "Knowledge base", list(bases), key=KB_KEY, format_func=lambda i: bases[i].name
)
with right.popover("New knowledge base"):
    create_form(app.id)
kb = bases[kb_id]
assert kb.id is not None

busy = ingestion_panel(kb.id)
docs = documents_of(kb.id)
documents, query, settings = st.tabs(  # tracked: a rerun keeps the tab the person is on
    ["Documents", "Try a query", "Embedding model"], key="kb_tab", on_change="rerun"
)
with documents:
    upload_form(kb.id, busy)
    document_list(kb.id, docs)
with query:
    try_query(kb.id, docs)
with settings:
    embedding_settings(kb, busy)
