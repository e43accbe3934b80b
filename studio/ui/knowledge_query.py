"""Knowledge page, "Try a query": the top chunks with their scores, optionally hybrid and
filtered by document, side by side with a reranking model, and the score distribution.

One search (:func:`studio.services.knowledge_search.search`) asks for up to
:data:`SPREAD` chunks: the first ``top_k`` are the answer, all of them make the chart. The
reranker (:func:`studio.services.chunk_rank.rank_chunks`) reorders the first
``RERANK_POOL`` of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import plotly.express as px
import streamlit as st

from studio.core.errors import StudioError
from studio.services.chunk_rank import rank_chunks
from studio.services.knowledge_search import ChunkHit, search
from studio.store.tables import KnowledgeDocument
from studio.ui.common import show_error, studio_session
from studio.ui.knowledge_bases import models_of

__all__ = ["RERANK_POOL", "SPREAD", "try_query"]

SPREAD = 100  # chunks scored for the distribution chart
RERANK_POOL = 20  # the reranker sees this many candidates (at least top k)
NO_RERANKER = "(no reranker)"


@dataclass(frozen=True)
class _Answer:
    kb_id: int
    query: str
    top_k: int
    hybrid: bool
    hits: list[ChunkHit]
    reranker: str | None
    reranked: list[tuple[ChunkHit, float]]


def _frame(rows: list[tuple[ChunkHit, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Rank": n,
                "Document": h.document,
                "Position": h.position,
                "Score": round(score, 4),
                "Text": h.text,
            }
            for n, (h, score) in enumerate(rows, start=1)
        ]
    )


def _ask(kb_id: int) -> None:
    state = st.session_state
    query = str(state.get("knowledge_query") or "")
    top_k = int(state.knowledge_top_k)
    reranker = state.get("knowledge_reranker")
    reranker = None if reranker in (None, NO_RERANKER) else str(reranker)
    try:
        with studio_session() as session:
            hits = search(
                session=session,
                kb_id=kb_id,
                query=query,
                top_k=SPREAD,
                documents=list(state.get("knowledge_filter") or []) or None,
                hybrid=bool(state.get("knowledge_hybrid")),
            )
        reranked: list[tuple[ChunkHit, float]] = []
        if reranker and hits:
            pool = hits[: max(top_k, RERANK_POOL)]
            ranked = rank_chunks(
                query=query,
                relevant_chunks=[h.text for h in pool],
                rank_strategy=reranker,
                top_k=top_k,
            )
            reranked = [(pool[r.index], r.score) for r in ranked]
    except StudioError as exc:
        state.knowledge_query_error = exc
        state.pop("knowledge_answer", None)
        return
    state.knowledge_answer = _Answer(
        kb_id, query, top_k, bool(state.get("knowledge_hybrid")), hits, reranker, reranked
    )


def _chart(answer: _Answer) -> None:
    scores = pd.DataFrame(
        {
            "score": [h.score for h in answer.hits],
            "chunk": [
                "in the top k" if n < answer.top_k else "the rest" for n in range(len(answer.hits))
            ],
        }
    )
    what = "fused rank score" if answer.hybrid else "cosine similarity to the query"
    figure = px.histogram(
        scores,
        x="score",
        color="chunk",
        nbins=30,
        labels={"score": what, "count": "chunks"},
        color_discrete_map={"in the top k": "#2e7d32", "the rest": "#9e9e9e"},
        height=260,
    )
    figure.update_layout(margin={"l": 10, "r": 10, "t": 10, "b": 10}, yaxis_title="chunks")
    st.plotly_chart(figure, key="knowledge_chart")
    st.caption(
        f"How the {len(answer.hits)} chunks nearest to the query score ({what}; higher is "
        f"closer). The green bars are the {min(answer.top_k, len(answer.hits))} shown above. "
        "A clear gap between them and the grey rest means the query matched a few chunks "
        "well; one flat heap means no chunk stands out, and the answer may not be in the "
        "documents."
    )


def _best(label: str, rows: list[tuple[ChunkHit, float]]) -> None:
    if rows:
        hit, score = rows[0]
        st.markdown(f"{label}: **{hit.document}**, chunk {hit.position}, score {score:.3f}.")


def _show(answer: _Answer) -> None:
    top = [(h, h.score) for h in answer.hits[: answer.top_k]]
    if not top:
        st.info(
            "No chunk matched. Check the document filter, or wait until the embedding job "
            "has given the chunks their vectors."
        )
        return
    score = (
        "fused rank (reciprocal rank fusion of vectors and BM25)"
        if answer.hybrid
        else ("cosine similarity, from -1 to 1")
    )
    config = {"Text": st.column_config.TextColumn("Text", width="large")}
    if answer.reranker:
        left, right = st.columns(2)
        with left:
            st.markdown("**Hybrid search**" if answer.hybrid else "**Vector search**")
            st.caption(f"Score: {score}.")
            _best("Best match", top)
            st.dataframe(_frame(top), hide_index=True, column_config=config)
        with right:
            st.markdown(f"**Reranked by {answer.reranker}**")
            pool = min(len(answer.hits), max(answer.top_k, RERANK_POOL))
            st.caption(
                f"The model's score for each of the {pool} nearest chunks; higher fits the "
                "query better."
            )
            _best("Reranker's best match", answer.reranked)
            st.dataframe(_frame(answer.reranked), hide_index=True, column_config=config)
    else:
        st.caption(f"The {len(top)} chunks nearest to the query, best first. Score: {score}.")
        _best("Best match", top)
        st.dataframe(_frame(top), hide_index=True, column_config=config)
    _chart(answer)


def try_query(kb_id: int, docs: list[KnowledgeDocument]) -> None:
    """The query form and its last answer."""
    if not docs:
        st.info("Upload documents first (Documents tab); then ask a question here.")
        return
    st.text_input("Query", key="knowledge_query", placeholder="How much does the Growth plan cost?")
    left, middle, right = st.columns(3)
    left.slider("Top k", min_value=1, max_value=20, value=5, key="knowledge_top_k")
    middle.multiselect(
        "Only these documents",
        [d.name for d in docs],
        key="knowledge_filter",
        placeholder="All documents",
    )
    rerankers = models_of("RERANKING")
    right.selectbox("Reranker", [NO_RERANKER, *rerankers], key="knowledge_reranker")
    st.toggle(
        "Hybrid search",
        key="knowledge_hybrid",
        help="Also rank the chunks by the query's words (BM25) and fuse both rankings: "
        "helps with names, codes and numbers that embeddings blur.",
    )
    if not rerankers:
        st.caption(
            "No reranking model is ready. Add one on the Models page: a connection to a "
            "server with a rerank API, or a custom model from a reranking template."
        )
    st.button("Search chunks", key="knowledge_search", type="primary", on_click=_ask, args=(kb_id,))
    if "knowledge_query_error" in st.session_state:
        show_error(st.session_state.pop("knowledge_query_error"))
    answer = st.session_state.get("knowledge_answer")
    if isinstance(answer, _Answer) and answer.kb_id == kb_id:
        _show(answer)
