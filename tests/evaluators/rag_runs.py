"""A finished run whose rows carry what a retrieval step found (written directly, as the
run service stores it), for the tests of the RAG evaluators' service, page and CLI."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from studio.core.templates import PromptTemplate
from studio.services.apps import create_app
from studio.services.datasets import upload_dataset
from studio.services.runs import RunConfig, create_run, run_sync
from studio.store import session_scope
from studio.store.tables import RunResult

__all__ = ["retrieval_record", "run_with_retrieval"]


def retrieval_record(row: int, documents: list[str]) -> dict[str, Any]:
    """``RunResult.retrieval`` for chunks of ``documents`` in rank order (ids 10*row+rank)."""
    return {
        "query": f"question {row}",
        "chunks": [
            {
                "id": 10 * row + rank,
                "document_id": rank,
                "document": document,
                "position": 0,
                "score": 1.0 - rank / 10,
                "text": f"Text of {document}.",
            }
            for rank, document in enumerate(documents, start=1)
        ],
    }


def run_with_retrieval(
    csv: bytes, found: list[list[str]], app_name: str = "Handbook"
) -> tuple[int, int, int]:
    """(app id, dataset version id, run id) of a run of mock/echo over ``csv`` whose row i
    retrieved chunks of ``found[i]``."""
    with session_scope() as session:
        app = create_app(session=session, name=app_name)
        assert app.id is not None
        version = upload_dataset(
            session=session, app_id=app.id, name="questions", data=csv, filename="q.csv"
        )
        run = create_run(
            session=session,
            app_id=app.id,
            dataset_version_id=version.id or 0,
            config=RunConfig(model="mock/echo", prompt=PromptTemplate.completion("{{question}}")),
        )
        session.commit()
        assert run.id is not None and version.id is not None
        ids = (app.id, version.id, run.id)
    run_sync(run_id=ids[2])
    with session_scope() as session:
        for result in session.exec(select(RunResult).where(RunResult.run_id == ids[2])):
            result.retrieval = retrieval_record(result.row_index, found[result.row_index])
            session.add(result)
    return ids
