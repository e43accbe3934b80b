"""Knowledge page: the documents of a knowledge base, deleting one, browsing its chunks."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from studio.core.errors import StudioError
from studio.services.knowledge import delete_document, list_chunks, list_documents
from studio.store.tables import KnowledgeDocument
from studio.ui.common import show_error, studio_session
from studio.ui.knowledge_bases import flash

__all__ = ["document_list", "documents_of"]


def documents_of(kb_id: int) -> list[KnowledgeDocument]:
    try:
        with studio_session() as session:
            docs = list_documents(session=session, kb_id=kb_id)
            for doc in docs:
                session.expunge(doc)
            return docs
    except StudioError as exc:
        show_error(exc)
        return []


def _delete(kb_id: int, doc_id: int, name: str) -> None:
    try:
        with studio_session() as session:
            delete_document(session=session, kb_id=kb_id, document=doc_id)
    except StudioError as exc:
        st.session_state.knowledge_doc_error = exc
        return
    flash(f"Deleted {name} with its chunks and their vectors.")


def _frame(docs: list[KnowledgeDocument]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Document": d.name,
                "Kind": d.kind,
                "Chunks": d.chunk_count,
                "Version": d.version,
                "Updated": d.updated_at,
            }
            for d in docs
        ]
    )


def document_list(kb_id: int, docs: list[KnowledgeDocument]) -> None:
    """The documents as a table, one to delete, and the chunks of one."""
    if not docs:
        st.info(
            "No documents yet. Upload files above: they are cut into chunks and embedded, "
            "and then a query finds the chunks that answer it."
        )
        return
    st.dataframe(
        _frame(docs),
        hide_index=True,
        column_config={
            "Updated": st.column_config.DatetimeColumn("Updated", format="YYYY-MM-DD HH:mm"),
            "Version": st.column_config.NumberColumn(
                "Version", help="Goes up each time a changed file of the same name replaces it."
            ),
        },
    )
    by_id = {d.id: d for d in docs}
    if st.session_state.get("knowledge_doc") not in by_id:
        st.session_state.knowledge_doc = docs[0].id
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    doc_id = left.selectbox(
        "Document", list(by_id), key="knowledge_doc", format_func=lambda i: by_id[i].name
    )
    doc = by_id[doc_id]
    assert doc.id is not None
    with right.popover("Delete document"):
        st.write(f"Deletes {doc.name} with its {doc.chunk_count} chunks and their vectors.")
        st.button(
            "Delete for good",
            key="knowledge_delete_doc",
            type="primary",
            on_click=_delete,
            args=(kb_id, doc_id, doc.name),
        )
    if "knowledge_doc_error" in st.session_state:
        show_error(st.session_state.pop("knowledge_doc_error"))
    try:
        with studio_session() as session:
            chunks = list_chunks(session=session, kb_id=kb_id, document=doc.id)
            rows = [
                {"Position": c.position, "Characters": len(c.text), "Text": c.text} for c in chunks
            ]
    except StudioError as exc:
        show_error(exc)
        return
    st.caption(
        f"{doc.name} is cut into {len(rows)} chunks, in the order they appear in the file. "
        "A query answers with whole chunks, so each should make sense on its own."
    )
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        column_config={"Text": st.column_config.TextColumn("Text", width="large")},
    )
