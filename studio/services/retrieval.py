"""Retrieval into prompts: a row's query searched in a knowledge base, the chunks given
to the prompt as ``{{context}}`` and ``{{chunks}}``.

A variant version's retrieval step (:class:`~studio.services.retrieval_spec.RetrievalSpec`)
is checked once, when it is saved or a run starts (:func:`check_retrieval`): the knowledge
base exists, belongs to the variant's app and the caller may use it; a reranker is a
RERANKING model; the query template parses. Then per row or request:

* :func:`retrieve` (the pages, the CLI) renders the query, searches (``top_k`` chunks, or
  ``candidates`` for a reranker, which reorders them and keeps ``top_k``), all with the
  caller's session.
* :func:`aretrieve` (runs, deployed endpoints) does the same on the event loop holding no
  database session while a model embeds the query or reranks: the knowledge base is read
  and the index searched in worker threads with short sessions of their own.

:class:`Retrieved` gives the prompt variables, what a run stores per row
(``RunResult.retrieval``: ``{query, chunks: [{id, document_id, document, position, score,
text}]}``) and what the request log keeps (``{query, chunks: [{id, document, score}]}``).

Rules: searching needs access to the knowledge base's app
(:func:`~studio.services.knowledge.get_knowledge_base`), and a variant may only search its
own app's knowledge bases; embedding and reranking are model calls.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import anyio.to_thread
from sqlmodel import Session

from studio.core.errors import ConflictError, StudioError
from studio.core.schemas import ModelType
from studio.models import registry
from studio.services.knowledge import get_knowledge_base
from studio.services.knowledge_search import ChunkHit, search
from studio.services.retrieval_spec import (
    RetrievalSpec,
    parse_retrieval,
    query_variables,
    render_query,
)
from studio.store import session_scope

__all__ = [
    "Retrieved",
    "aretrieve",
    "arow_with_retrieval",
    "check_retrieval",
    "retrieve",
    "row_with_retrieval",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Retrieved:
    """The chunks one row's (or request's) query found, best first."""

    spec: RetrievalSpec
    query: str
    hits: tuple[ChunkHit, ...]

    def chunks(self) -> list[dict[str, Any]]:
        return [
            {
                "id": h.chunk_id,
                "document_id": h.document_id,
                "document": h.document,
                "position": h.position,
                "score": round(float(h.score), 6),
                "text": h.text,
            }
            for h in self.hits
        ]

    def variables(self) -> dict[str, Any]:
        """``context`` and ``chunks``, the prompt variables the step provides."""
        return {"context": self.spec.join.join(h.text for h in self.hits), "chunks": self.chunks()}

    def stored(self) -> dict[str, Any]:
        """What ``RunResult.retrieval`` keeps (text included: evaluators need no join)."""
        return {"query": self.query, "chunks": self.chunks()}

    def logged(self) -> dict[str, Any]:
        """What ``RequestLog.retrieval`` keeps (no text: the log stays small)."""
        return {
            "query": self.query,
            "chunks": [
                {"id": c["id"], "document": c["document"], "score": c["score"]}
                for c in self.chunks()
            ],
        }


def check_retrieval(
    *, session: Session, spec: RetrievalSpec | dict[str, Any] | None, app_id: int
) -> RetrievalSpec | None:
    """``spec`` validated for a variant of app ``app_id`` (None: no retrieval step)."""
    parsed = parse_retrieval(spec)
    if parsed is None:
        return None
    query_variables(parsed)  # the query template parses (a sentence naming the line if not)
    kb = get_knowledge_base(session=session, ref=parsed.kb_id, action="use")
    if kb.app_id != app_id:
        raise ConflictError(
            f"Knowledge base '{kb.name}' belongs to another app.",
            hint="A variant searches its own app's knowledge bases: create one for this app "
            "on the Knowledge page.",
        )
    if parsed.reranker:
        kind = registry.model_type(
            session=session, ref=parsed.reranker, payload={"query": "", "chunks": []}
        )
        if kind != ModelType.RERANKING:
            raise ConflictError(
                f"'{parsed.reranker}' is a {kind.value} model, not a RERANKING model.",
                hint="Pick a reranking model, or none.",
            )
    return parsed


def _rerank_payload(query: str, hits: list[ChunkHit]) -> dict[str, Any]:
    return {"query": query, "chunks": [h.text for h in hits]}


def _reranked(spec: RetrievalSpec, hits: list[ChunkHit], response: Any) -> list[ChunkHit]:
    scores = [float(s) for s in response.model_dump(mode="json")["chunk_scores"]]
    if len(scores) != len(hits):
        raise StudioError(
            f"The reranking model answered {len(scores)} scores for {len(hits)} chunks.",
            hint="Check the model's server.",
        )
    order = sorted(range(len(hits)), key=lambda i: (-scores[i], i))
    return [replace(hits[i], score=scores[i]) for i in order[: spec.top_k]]


def _unexpected(spec: RetrievalSpec, exc: Exception) -> StudioError:
    return StudioError(
        f"Searching knowledge base {spec.kb_id} failed: {type(exc).__name__}: {exc}",
        hint="Check the knowledge base on the Knowledge page (its embedding model and vectors).",
    )


def retrieve(*, session: Session, spec: RetrievalSpec, row: Mapping[str, Any]) -> Retrieved:
    """The chunks for one row, with the caller's session (pages, CLI)."""
    query = render_query(spec, dict(row))
    try:
        hits = search(
            session=session, kb_id=spec.kb_id, query=query, top_k=spec.fetch, hybrid=spec.hybrid
        )
        if spec.reranker and hits:
            payload = _rerank_payload(query, hits)
            answer = registry.execute(
                session=session, ref=spec.reranker, payload=payload, source="retrieval"
            )
            hits = _reranked(spec, hits, answer)
    except StudioError:
        raise
    except Exception as exc:
        raise _unexpected(spec, exc) from exc
    return Retrieved(spec, query, tuple(hits[: spec.top_k]))


async def _in_thread(func: Callable[..., T], *args: Any) -> T:
    """``func`` in a worker thread, as the caller (the actor is a context variable)."""
    return await anyio.to_thread.run_sync(contextvars.copy_context().run, func, *args)


def _serving_model(kb_id: int) -> str:
    with session_scope() as session:
        return get_knowledge_base(session=session, ref=kb_id, action="search").serving_model


def _search_with(spec: RetrievalSpec, query: str, model: str, vector: list[float]) -> list[Any]:
    def embedded(session: Session, serving: str, text: str) -> list[float]:
        if serving != model:  # the serving model changed meanwhile: embed again, with it
            from studio.services.knowledge_search import embed_query

            return embed_query(session, serving, text)
        return vector

    with session_scope() as session:
        return search(
            session=session,
            kb_id=spec.kb_id,
            query=query,
            top_k=spec.fetch,
            hybrid=spec.hybrid,
            embed=embedded,
        )


async def aretrieve(*, spec: RetrievalSpec, row: Mapping[str, Any]) -> Retrieved:
    """:func:`retrieve` for the event loop: no session is held while a model answers."""
    query = render_query(spec, dict(row))
    try:
        model = await _in_thread(_serving_model, spec.kb_id)
        response = await registry.aexecute(
            ref=model, payload={"texts": [query]}, source="knowledge"
        )
        vector = [float(x) for x in response.model_dump(mode="json")["embeddings"][0][1]]
        hits: list[ChunkHit] = await _in_thread(_search_with, spec, query, model, vector)
        if spec.reranker and hits:
            payload = _rerank_payload(query, hits)
            answer = await registry.aexecute(ref=spec.reranker, payload=payload, source="retrieval")
            hits = _reranked(spec, hits, answer)
    except StudioError:
        raise
    except Exception as exc:
        raise _unexpected(spec, exc) from exc
    return Retrieved(spec, query, tuple(hits[: spec.top_k]))


def _failed(exc: StudioError) -> StudioError:
    return StudioError(f"Retrieval failed, so the model was not asked: {exc}")


def row_with_retrieval(
    *, session: Session, spec: RetrievalSpec | None, row: Mapping[str, Any]
) -> tuple[dict[str, Any], Retrieved | None]:
    """``row`` with the step's variables added (what the prompt renders from), and what
    was retrieved (None without a step). A failure is a sentence saying so."""
    if spec is None:
        return dict(row), None
    try:
        got = retrieve(session=session, spec=spec, row=row)
    except StudioError as exc:
        raise _failed(exc) from exc
    return {**row, **got.variables()}, got


async def arow_with_retrieval(
    spec: RetrievalSpec | None, row: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """:func:`row_with_retrieval` for the run engine: the row to render, and what
    ``RunResult.retrieval`` stores."""
    if spec is None:
        return dict(row), None
    try:
        got = await aretrieve(spec=spec, row=row)
    except StudioError as exc:
        raise _failed(exc) from exc
    return {**row, **got.variables()}, got.stored()
