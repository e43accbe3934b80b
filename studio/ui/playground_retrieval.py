"""The Playground's Retrieval section: switch a retrieval step on for the edited prompt
(knowledge base of the app, query template, top k, optional reranker, hybrid search), and
the chunks the preview row retrieves.

State lives under ``pg_rag_*`` keys, like the rest of the editor, so :func:`load_retrieval`
can put a saved variant's step into the widgets and :func:`current_retrieval` reads it back
as a :class:`~studio.services.retrieval_spec.RetrievalSpec`.
"""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from studio.core.errors import StudioError
from studio.core.identity import current_actor
from studio.core.schemas import ModelType
from studio.models import registry
from studio.services.knowledge import list_knowledge_bases
from studio.services.retrieval import retrieve
from studio.services.retrieval_spec import MAX_TOP_K, RetrievalSpec, parse_retrieval
from studio.ui.common import show_error, studio_session
from studio.ui.pickers import link_to

__all__ = [
    "current_retrieval",
    "init_retrieval",
    "load_retrieval",
    "retrieval_editor",
    "retrieval_preview",
    "retrieved_table",
]

NO_RERANKER = ""
DEFAULTS: dict[str, Any] = {
    "pg_rag_on": False,
    "pg_rag_kb": None,
    "pg_rag_query": "{{question}}",
    "pg_rag_top_k": 4,
    "pg_rag_reranker": NO_RERANKER,
    "pg_rag_hybrid": False,
}


def init_retrieval() -> None:
    for key, value in DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = value


def load_retrieval(spec: RetrievalSpec | None) -> None:
    """Put a saved variant's retrieval step (or none) into the widgets."""
    state = st.session_state
    state.pg_rag_on = spec is not None
    if spec is None:
        return
    state.pg_rag_kb = spec.kb_id
    state.pg_rag_query = spec.query_template
    state.pg_rag_top_k = spec.top_k
    state.pg_rag_reranker = spec.reranker or NO_RERANKER
    state.pg_rag_hybrid = spec.hybrid


def current_retrieval() -> RetrievalSpec | None:
    """The edited retrieval step; None when it is off (or no knowledge base is picked)."""
    state = st.session_state
    if not state.get("pg_rag_on") or state.get("pg_rag_kb") is None:
        return None
    return parse_retrieval(
        {
            "kb_id": int(state.pg_rag_kb),
            "query_template": str(state.pg_rag_query),
            "top_k": int(state.pg_rag_top_k),
            "reranker": state.pg_rag_reranker or None,
            "hybrid": bool(state.pg_rag_hybrid),
        }
    )


def _rerankers() -> list[str]:
    with studio_session() as session:
        return [
            m.name
            for m in registry.model_overview(session=session)
            if m.model_type == ModelType.RERANKING.value and m.status == "READY"
        ]


def retrieval_editor(app_id: int) -> None:
    """The Retrieval section: a toggle, then the step's settings."""
    st.toggle(
        "Give the prompt chunks from a knowledge base",
        key="pg_rag_on",
        help="Search a knowledge base with each row's question and give the prompt the chunks "
        "it finds as {{context}} (or loop over {{chunks}}).",
    )
    if not st.session_state.pg_rag_on:
        return
    with studio_session() as session:
        bases = {kb.id: kb for kb in list_knowledge_bases(session=session, app_id=app_id)}
    if not bases:
        st.info(
            "This app has no knowledge base yet. Create one on the Knowledge page and upload "
            "your documents, then pick it here."
        )
        link_to("pages/knowledge.py", "Go to Knowledge", ":material/menu_book:")
        return
    if st.session_state.pg_rag_kb not in bases:
        st.session_state.pg_rag_kb = next(iter(bases))
    kb_col, k_col = st.columns([3, 1])
    kb_col.selectbox(
        "Knowledge base",
        list(bases),
        key="pg_rag_kb",
        format_func=lambda i: bases[i].name,
    )
    k_col.number_input("Top k", 1, MAX_TOP_K, key="pg_rag_top_k", help="Chunks in {{context}}.")
    st.text_input(
        "Query template",
        key="pg_rag_query",
        help="What is searched for each row, e.g. {{question}}. Uses the dataset's columns.",
    )
    options = [NO_RERANKER, *_rerankers()]
    if st.session_state.pg_rag_reranker not in options:
        options.append(st.session_state.pg_rag_reranker)  # a saved variant's stays selectable
    rr_col, hy_col = st.columns([3, 1], vertical_alignment="bottom")
    rr_col.selectbox(
        "Reranker (optional)",
        options,
        key="pg_rag_reranker",
        format_func=lambda m: m or "None: keep the search's order",
        help="A reranking model reorders more candidates and keeps the top k.",
    )
    hy_col.checkbox("Hybrid", key="pg_rag_hybrid", help="Also match keywords (BM25).")
    st.caption("Use {{context}} in the prompt for the chunks' text, joined.")


@st.cache_data(ttl=120, max_entries=64, show_spinner="Searching the knowledge base…")
def _retrieved(spec_json: str, row_json: str, caller: str) -> dict[str, Any]:
    """The chunks for one row (cached: the preview redraws on every keystroke; per
    ``caller``, so a cached answer never skips the access check for someone else)."""
    spec = RetrievalSpec.model_validate_json(spec_json)
    with studio_session() as session:
        got = retrieve(session=session, spec=spec, row=json.loads(row_json))
    return {"variables": got.variables(), "stored": got.stored()}


def retrieval_preview(spec: RetrievalSpec, row: dict[str, str]) -> dict[str, Any] | None:
    """Show the chunks ``row`` retrieves; the prompt variables they give, or None (the
    error is shown)."""
    try:
        actor = current_actor()
        caller = f"{actor.kind}:{actor.user_id}:{actor.key_id}:{actor.name}"
        found = _retrieved(spec.model_dump_json(), json.dumps(row, sort_keys=True), caller)
    except StudioError as exc:
        show_error(exc)
        return None
    stored = found["stored"]
    chunks = stored["chunks"]
    st.markdown(f"**Retrieved for this row** (query: _{stored['query']}_)")
    if not chunks:
        st.info(
            "The knowledge base returned no chunks: it may have no documents yet. Upload "
            "some on the Knowledge page."
        )
    else:
        retrieved_table(chunks)
    return dict(found["variables"])


def retrieved_table(chunks: list[dict[str, Any]]) -> None:
    """Chunks best first: document, score and text."""
    st.dataframe(
        [{"document": c["document"], "score": c["score"], "text": c["text"]} for c in chunks],
        hide_index=True,
        width="stretch",
        column_config={
            "score": st.column_config.NumberColumn(format="%.3f"),
            "text": st.column_config.TextColumn(width="large"),
        },
    )
    st.caption(
        "Score: how close the chunk is to the query (cosine similarity from 0 to 1; with "
        "a reranker, its score; with hybrid search, a fused rank score). Best first."
    )
