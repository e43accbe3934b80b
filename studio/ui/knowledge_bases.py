"""Knowledge page: pick or create a knowledge base, change its embedding model, delete it.

The model lists come from the model zoo (every callable model of the studio): any READY
EMBEDDING model can embed a knowledge base, any READY RERANKING model can rerank a query's
chunks. Every change goes through :mod:`studio.services.knowledge` (its checks).
"""

from __future__ import annotations

import streamlit as st
from pydantic import ValidationError

from studio.core.errors import StudioError
from studio.services.knowledge import (
    DEFAULT_EMBEDDING_MODEL,
    create_knowledge_base,
    delete_knowledge_base,
)
from studio.services.knowledge_ingest import set_embedding_model
from studio.services.knowledge_jobs import enqueue_embedding
from studio.services.knowledge_parse import ChunkingOptions
from studio.store.tables import KnowledgeBase
from studio.ui.common import show_error, studio_session
from studio.ui.models_zoo import load_zoo

__all__ = [
    "CHUNKING_HELP",
    "KB_KEY",
    "create_form",
    "embedding_settings",
    "flash",
    "models_of",
]

KB_KEY = "knowledge_kb"
FLASH = "knowledge_flash"
CHUNKING_HELP = {
    "characters": "By size: each chunk is cut at the largest natural break that fits "
    "(a paragraph, then a line, a sentence, a word).",
    "paragraphs": "By paragraphs: text is cut at blank lines first, so a chunk is one "
    "paragraph; a paragraph longer than the size is cut by size.",
    "headings": "By headings: Markdown text is cut at its headings first, so a chunk is "
    "one section; a section longer than the size is cut by size.",
}


def models_of(model_type: str) -> list[str]:
    """Names of the callable (READY) models of one type, the built-ins first."""
    try:
        entries, _problems = load_zoo()
    except StudioError as exc:
        show_error(exc)
        return []
    return [e.name for e in entries if e.model_type == model_type and e.status == "READY"]


def flash(message: str) -> None:
    """A success sentence shown once, on the next run of the page."""
    st.session_state[FLASH] = message


def show_flash() -> None:
    message = st.session_state.pop(FLASH, None)
    if message:
        st.success(message)


def _create(app_id: int) -> None:
    state = st.session_state
    try:
        chunking = ChunkingOptions(
            method=state.knowledge_new_method,
            size=int(state.knowledge_new_size),
            overlap=int(state.knowledge_new_overlap),
        )
    except ValidationError:
        st.session_state.knowledge_create_error = StudioError(
            f"An overlap of {state.knowledge_new_overlap} characters is too large for chunks "
            f"of {state.knowledge_new_size}.",
            hint="Make the overlap less than half the chunk size.",
        )
        return
    try:
        with studio_session() as session:
            kb = create_knowledge_base(
                session=session,
                app_id=app_id,
                name=state.knowledge_new_name or "",
                embedding_model=state.knowledge_new_model or DEFAULT_EMBEDDING_MODEL,
                chunking=chunking,
            )
            kb_id, name = kb.id, kb.name
    except StudioError as exc:
        st.session_state.knowledge_create_error = exc
        return
    state[KB_KEY] = kb_id
    state.knowledge_new_name = ""
    flash(f"Knowledge base '{name}' is ready. Upload documents to it below.")


def create_form(app_id: int) -> None:
    """Name, embedding model and chunking of a new knowledge base, each explained."""
    if "knowledge_new_name" not in st.session_state:
        st.session_state.knowledge_new_name = ""
    st.text_input("Name", key="knowledge_new_name", placeholder="Product handbook")
    embeddings = models_of("EMBEDDING") or [DEFAULT_EMBEDDING_MODEL]
    if st.session_state.get("knowledge_new_model") not in embeddings:
        default = DEFAULT_EMBEDDING_MODEL if DEFAULT_EMBEDDING_MODEL in embeddings else None
        st.session_state.knowledge_new_model = default or embeddings[0]
    st.selectbox("Embedding model", embeddings, key="knowledge_new_model")
    st.caption(
        "The model that turns every chunk, and later every question, into a vector; "
        "a question finds the chunks whose vectors are nearest to its own. The built-in "
        "MiniLM runs on this machine, offline. You can change it later (the documents are "
        "then embedded again)."
    )
    method = st.radio(
        "Chunking",
        list(CHUNKING_HELP),
        key="knowledge_new_method",
        horizontal=True,
        format_func=lambda m: {"characters": "By size"}.get(m, f"By {m}"),
    )
    st.caption(CHUNKING_HELP[method])
    left, right = st.columns(2)
    left.number_input(
        "Chunk size (characters)", min_value=50, max_value=20_000, value=800, step=50,
        key="knowledge_new_size",
    )  # fmt: skip
    left.caption(
        "The longest a chunk may be. Smaller chunks match a question more precisely; "
        "larger ones bring more context into a prompt."
    )
    right.number_input(
        "Overlap (characters)", min_value=0, max_value=9_999, value=100, step=10,
        key="knowledge_new_overlap",
    )  # fmt: skip
    right.caption(
        "Characters that neighbouring chunks share, so a sentence cut at a boundary is "
        "still whole in one of them. Less than half the chunk size."
    )
    st.button(
        "Create knowledge base",
        key="knowledge_create",
        type="primary",
        on_click=_create,
        args=(app_id,),
    )
    if "knowledge_create_error" in st.session_state:
        show_error(st.session_state.pop("knowledge_create_error"))


def _reembed(kb_id: int) -> None:
    model = st.session_state.knowledge_model_new
    try:
        with studio_session() as session:
            kb = set_embedding_model(session=session, kb_id=kb_id, model=model)
            serving = kb.serving_model
        enqueue_embedding(kb_id=kb_id)
    except StudioError as exc:
        st.session_state.knowledge_model_error = exc
        return
    if serving != model:
        flash(
            f"Embedding every chunk again with {model}. Queries keep using the vectors of "
            f"{serving} until it is done."
        )


def _delete(kb_id: int, name: str) -> None:
    try:
        with studio_session() as session:
            delete_knowledge_base(session=session, kb_id=kb_id)
    except StudioError as exc:
        st.session_state.knowledge_model_error = exc
        return
    st.session_state.pop(KB_KEY, None)
    flash(f"Deleted knowledge base '{name}' with its documents, chunks and vectors.")


def embedding_settings(kb: KnowledgeBase, busy: bool) -> None:
    """The base's models and chunking, re-embedding with another model, and deleting it."""
    assert kb.id is not None
    chunking = ChunkingOptions(**kb.chunking)
    st.markdown(
        f"**Embedding model:** {kb.embedding_model}  \n"
        f"**Chunking:** {CHUNKING_HELP[chunking.method]} At most {chunking.size} characters, "
        f"{chunking.overlap} shared with the neighbour."
    )
    if kb.serving_model != kb.embedding_model:
        st.info(
            f"Queries are answered with the vectors of {kb.serving_model} while the chunks "
            f"are embedded with {kb.embedding_model}; the new vectors take over when every "
            "chunk has one."
        )
    embeddings = models_of("EMBEDDING")
    if not embeddings:
        st.info("No embedding model is ready. Add one on the Models page.")
        return
    if st.session_state.get("knowledge_model_new") not in embeddings:
        current = kb.embedding_model
        st.session_state.knowledge_model_new = current if current in embeddings else embeddings[0]
    st.selectbox("Embed with", embeddings, key="knowledge_model_new")
    st.caption(
        "Re-embedding makes a new vector for every chunk with the chosen model, as a job "
        "with progress. Until it is complete, queries keep using the old vectors: nothing "
        "stops working meanwhile."
    )
    st.button(
        "Re-embed with this model",
        key="knowledge_reembed",
        on_click=_reembed,
        args=(kb.id,),
        disabled=busy or st.session_state.knowledge_model_new == kb.embedding_model,
        help="Wait for the running job first." if busy else None,
    )
    if "knowledge_model_error" in st.session_state:
        show_error(st.session_state.pop("knowledge_model_error"))
    with st.popover("Delete this knowledge base"):
        st.write(f"Deletes '{kb.name}' with all its documents, chunks and vectors.")
        st.button(
            "Delete for good",
            key="knowledge_delete_kb",
            type="primary",
            on_click=_delete,
            args=(kb.id, kb.name),
        )
