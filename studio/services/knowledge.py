"""Knowledge bases: an app's documents, cut into chunks, embedded, and searched.

A knowledge base belongs to an app and has an embedding model (any EMBEDDING model of the
model layer; the built-in MiniLM by default) and chunking options
(:class:`~studio.services.knowledge_parse.ChunkingOptions`). :func:`add_document` parses
a file (refusing a bad one before anything is touched), and stores its chunks: the same
file again (same name, same bytes and options) is a no-op, a changed one replaces its
chunks (their vectors go with them). Embedding is :mod:`studio.services.knowledge_ingest`'s
work; :func:`ingest_files` does both, with progress.

Searching is :mod:`studio.services.knowledge_search`'s work.

Rules: a knowledge base is its app's (:mod:`studio.services.app_access`): reading and
searching need access to the app; creating, uploading, changing and deleting also the
admin or member role; reviewers none. Another app's knowledge base is not found.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, delete, select

from studio.core.errors import ConflictError, NotFoundError, StudioError
from studio.core.schemas import ModelType
from studio.models import registry
from studio.services.app_access import check_app, visible_apps
from studio.services.knowledge_parse import (
    ChunkingOptions,
    chunk_sections,
    document_kind,
    parse_document,
)
from studio.services.members import require_member_role
from studio.store import audit
from studio.store.tables import (
    ChunkVector,
    KnowledgeBase,
    KnowledgeChunk,
    KnowledgeDocument,
    utcnow,
)

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "DocumentResult",
    "add_document",
    "content_hash",
    "create_knowledge_base",
    "delete_document",
    "delete_knowledge_base",
    "get_knowledge_base",
    "ingest_files",
    "list_chunks",
    "list_documents",
    "list_knowledge_bases",
    "touch",
]

DEFAULT_EMBEDDING_MODEL = "builtin/all-minilm-l6-v2"
MAX_ID = 2**31 - 1  # PostgreSQL's INTEGER


@dataclass(frozen=True)
class DocumentResult:
    """What an upload did: ``added``, ``replaced`` (a changed file) or ``unchanged``."""

    document: KnowledgeDocument
    outcome: str
    chunks: int


def _require_embedding(session: Session, model: str) -> str:
    ref = model.strip()
    kind = registry.model_type(session=session, ref=ref, payload={"texts": ["x"]})
    if kind != ModelType.EMBEDDING:
        raise ConflictError(
            f"'{ref}' is a {kind.value} model; a knowledge base needs an EMBEDDING model.",
            hint="List embedding models with `studio model list`.",
        )
    return ref


def create_knowledge_base(
    *,
    session: Session,
    app_id: int,
    name: str,
    embedding_model: str = DEFAULT_EMBEDDING_MODEL,
    chunking: ChunkingOptions | None = None,
) -> KnowledgeBase:
    """A new, empty knowledge base of app ``app_id``."""
    actor = check_app(session=session, app_id=app_id, action="create knowledge bases")
    require_member_role("create knowledge bases")
    clean = name.strip()
    if not clean:
        raise ConflictError("A knowledge base needs a name.", hint="Give it a short name.")
    taken = select(KnowledgeBase).where(KnowledgeBase.app_id == app_id, KnowledgeBase.name == clean)
    if session.exec(taken).first() is not None:
        raise ConflictError(
            f"This app already has a knowledge base named '{clean}'.", hint="Pick another name."
        )
    model = _require_embedding(session, embedding_model)
    kb = KnowledgeBase(
        app_id=app_id,
        name=clean,
        embedding_model=model,
        serving_model=model,
        chunking=(chunking or ChunkingOptions()).model_dump(),
        created_by=actor.name,
    )
    session.add(kb)
    session.flush()
    audit.record(
        session,
        action="create",
        target_kind="knowledge_base",
        target_id=kb.id,
        target_name=clean,
        details={"app_id": app_id, "embedding_model": model},
    )
    return kb


def list_knowledge_bases(*, session: Session, app_id: int | None = None) -> list[KnowledgeBase]:
    """The knowledge bases the caller may read (of one app, when ``app_id`` is given)."""
    stmt = select(KnowledgeBase)
    if app_id is not None:
        check_app(session=session, app_id=app_id, action="list knowledge bases")
        stmt = stmt.where(KnowledgeBase.app_id == app_id)
    else:
        apps = visible_apps(session=session, action="list knowledge bases")
        if apps is not None:
            stmt = stmt.where(col(KnowledgeBase.app_id).in_(sorted(apps)))
    return list(session.exec(stmt.order_by(col(KnowledgeBase.id))).all())


def get_knowledge_base(
    *, session: Session, ref: int | str, app_id: int | None = None, action: str = "read"
) -> KnowledgeBase:
    """A knowledge base by id, or by name (within ``app_id``, or among those the caller
    may read when the name is unique); another app's is not found."""
    kb: KnowledgeBase | None = None
    text = str(ref).strip()
    if isinstance(ref, int):
        kb = session.get(KnowledgeBase, ref) if 0 < ref <= MAX_ID else None
    else:
        found = [k for k in list_knowledge_bases(session=session, app_id=app_id) if k.name == text]
        if len(found) > 1:
            raise ConflictError(
                f"Several apps have a knowledge base named '{text}'.",
                hint="Name it by id (`studio kb list`) or give the app (--app).",
            )
        kb = found[0] if found else None
        if kb is None and re.fullmatch(r"[0-9]{1,10}", text) and 0 < int(text) <= MAX_ID:
            kb = session.get(KnowledgeBase, int(text))  # a name wins over an id
            if kb is not None and app_id is not None and kb.app_id != app_id:
                kb = None
    if kb is None:
        raise NotFoundError(f"No knowledge base '{text}'.", hint="List them with `studio kb list`.")
    doing = f"{action} knowledge bases"
    check_app(session=session, app_id=kb.app_id, action=doing, what="knowledge base")
    return kb


def _writable(session: Session, kb_id: int, action: str) -> KnowledgeBase:
    kb = get_knowledge_base(session=session, ref=kb_id, action=action)
    require_member_role(f"{action} knowledge bases")
    return kb


def touch(session: Session, kb: KnowledgeBase) -> None:
    """Mark ``kb`` changed: loaded indexes of it are loaded again at the next search (in
    any process: the index cache compares ``updated_at``)."""
    from studio.services.knowledge_search import forget_index

    kb.updated_at = utcnow()
    session.add(kb)
    forget_index(kb.id)


def content_hash(data: bytes, options: dict[str, Any], chunking: dict[str, Any]) -> str:
    """SHA-256 of a file's bytes with how it was parsed and chunked."""
    digest = hashlib.sha256(data)
    digest.update(json.dumps([options, chunking], sort_keys=True).encode())
    return digest.hexdigest()


def add_document(
    *,
    session: Session,
    kb_id: int,
    filename: str,
    data: bytes,
    text_column: str | None = None,
) -> DocumentResult:
    """Parse ``data`` and store its chunks (not yet embedded). A file that cannot be read
    is refused (:class:`~studio.services.knowledge_parse.DocumentError`) before anything
    changes; the same file again is ``unchanged``; a changed one ``replaced``."""
    kb = _writable(session, kb_id, "upload documents to")
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    kind = document_kind(name)
    options = {"text_column": text_column} if text_column else {}
    digest = content_hash(data, options, kb.chunking)
    same_name = (KnowledgeDocument.kb_id == kb_id, KnowledgeDocument.name == name)
    existing = session.exec(select(KnowledgeDocument).where(*same_name)).first()
    if existing is not None and existing.content_hash == digest:
        return DocumentResult(existing, "unchanged", existing.chunk_count)
    chunks = chunk_sections(
        parse_document(name, data, text_column=text_column), ChunkingOptions(**kb.chunking)
    )
    if existing is None:
        doc = KnowledgeDocument(kb_id=kb_id, name=name, kind=kind, content_hash=digest)
        outcome = "added"
    else:
        doc = existing
        _delete_chunks(session, [doc.id])
        doc.version += 1
        doc.content_hash, doc.kind, doc.updated_at = digest, kind, utcnow()
        outcome = "replaced"
    doc.size_bytes, doc.chunk_count, doc.options = len(data), len(chunks), options
    session.add(doc)
    session.flush()
    assert doc.id is not None
    session.add_all(
        KnowledgeChunk(kb_id=kb_id, document_id=doc.id, position=i, text=text)
        for i, text in enumerate(chunks)
    )
    touch(session, kb)
    session.flush()
    return DocumentResult(doc, outcome, len(chunks))


def _delete_chunks(session: Session, document_ids: Sequence[int | None]) -> None:
    ids = [i for i in document_ids if i is not None]
    chunk_ids = select(KnowledgeChunk.id).where(col(KnowledgeChunk.document_id).in_(ids))
    session.exec(delete(ChunkVector).where(col(ChunkVector.chunk_id).in_(chunk_ids)))
    session.exec(delete(KnowledgeChunk).where(col(KnowledgeChunk.document_id).in_(ids)))


def list_documents(*, session: Session, kb_id: int) -> list[KnowledgeDocument]:
    get_knowledge_base(session=session, ref=kb_id)
    stmt = select(KnowledgeDocument).where(KnowledgeDocument.kb_id == kb_id)
    return list(session.exec(stmt.order_by(col(KnowledgeDocument.name))).all())


def _document(session: Session, kb_id: int, ref: int | str) -> KnowledgeDocument:
    for doc in list_documents(session=session, kb_id=kb_id):
        if doc.name == str(ref).strip() or str(doc.id) == str(ref).strip():
            return doc
    raise NotFoundError(
        f"Knowledge base {kb_id} has no document '{ref}'.",
        hint=f"List its documents with `studio kb docs {kb_id}`.",
    )


def list_chunks(*, session: Session, kb_id: int, document: int | str) -> list[KnowledgeChunk]:
    """The chunks of one document, in order."""
    doc = _document(session, kb_id, document)
    stmt = select(KnowledgeChunk).where(KnowledgeChunk.document_id == doc.id)
    return list(session.exec(stmt.order_by(col(KnowledgeChunk.position))).all())


def delete_document(*, session: Session, kb_id: int, document: int | str) -> KnowledgeDocument:
    """Delete a document with its chunks and their vectors."""
    kb = _writable(session, kb_id, "delete documents of")
    doc = _document(session, kb_id, document)
    _delete_chunks(session, [doc.id])
    session.delete(doc)
    touch(session, kb)
    session.flush()
    return doc


def delete_knowledge_base(*, session: Session, kb_id: int) -> KnowledgeBase:
    """Delete a knowledge base, its documents, chunks and vectors."""
    kb = _writable(session, kb_id, "delete")
    docs = session.exec(select(KnowledgeDocument.id).where(KnowledgeDocument.kb_id == kb_id)).all()
    _delete_chunks(session, list(docs))
    session.exec(delete(KnowledgeDocument).where(col(KnowledgeDocument.kb_id) == kb_id))
    audit.record(
        session,
        action="delete",
        target_kind="knowledge_base",
        target_id=kb.id,
        target_name=kb.name,
        details={"app_id": kb.app_id, "documents": len(docs)},
    )
    session.delete(kb)
    from studio.services.knowledge_search import forget_index

    forget_index(kb_id)
    session.flush()
    return kb


def ingest_files(
    *,
    kb_id: int,
    files: Sequence[tuple[str, bytes]],
    text_column: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[DocumentResult | StudioError]:
    """Add each file (in its own transaction: a bad file is refused, the others are
    stored), then embed every chunk not embedded yet. One result or error per file."""
    from studio.services.knowledge_ingest import embed_pending
    from studio.store import session_scope

    results: list[DocumentResult | StudioError] = []
    for filename, data in files:
        try:
            with session_scope() as session:
                results.append(
                    add_document(
                        session=session,
                        kb_id=kb_id,
                        filename=filename,
                        data=data,
                        text_column=text_column,
                    )
                )
        except StudioError as exc:
            results.append(exc)
    embed_pending(kb_id=kb_id, progress=progress)
    return results
