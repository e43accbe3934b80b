"""``studio kb create|upload|list|docs|query|delete|model`` and ``studio chunks rank``.

The same services as the gateway's knowledge routes: knowledge bases belong to an app;
uploads parse and chunk each file (a bad file is refused with a sentence, the others are
stored) and embed the new chunks through the model layer with a progress bar; ``query``
answers the nearest chunks with their scores. ``chunks rank`` ranks the chunks of a file
(one per line, or a JSON list) by a reranking model, embedding similarity or BM25.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from studio.cli.output import JsonOpt, out, print_json, session, table
from studio.core.errors import ConfigError

__all__ = ["register_knowledge_commands"]

KB_HELP = "Knowledge bases: documents chunked and embedded, searched by query."
CHUNKS_HELP = "Rank chunks for a query (reranking model, embedding similarity or BM25)."

kb_app = typer.Typer(help=KB_HELP, no_args_is_help=True)
chunks_app = typer.Typer(help=CHUNKS_HELP, no_args_is_help=True)


def register_knowledge_commands(app: typer.Typer) -> None:
    app.add_typer(kb_app, name="kb")
    app.add_typer(chunks_app, name="chunks")


def _kb_id(db: Any, ref: str, app: str | None) -> int:
    from studio.cli.apps import _app_id
    from studio.services.knowledge import get_knowledge_base

    app_id = _app_id(db, app) if app else None
    kb = get_knowledge_base(session=db, ref=ref, app_id=app_id)
    assert kb.id is not None
    return kb.id


AppOpt = Annotated[str | None, typer.Option("--app", help="The app (name or id).")]


@kb_app.command("create")
def kb_create(
    app: Annotated[str, typer.Option("--app", help="The app it belongs to (name or id).")],
    name: Annotated[str, typer.Option("--name", help="A short name, unique in the app.")],
    model: Annotated[
        str | None, typer.Option("--model", help="An embedding model (default: built-in MiniLM).")
    ] = None,
    chunking: Annotated[
        str, typer.Option("--chunking", help="characters, paragraphs or headings.")
    ] = "characters",
    chunk_size: Annotated[int, typer.Option("--chunk-size", help="Characters per chunk.")] = 800,
    overlap: Annotated[int, typer.Option("--overlap", help="Characters shared.")] = 100,
) -> None:
    """Create an empty knowledge base in APP."""
    from pydantic import ValidationError

    from studio.cli.apps import _app_id
    from studio.services.knowledge import DEFAULT_EMBEDDING_MODEL, create_knowledge_base
    from studio.services.knowledge_parse import ChunkingOptions

    try:
        options = ChunkingOptions.model_validate(
            {"method": chunking, "size": chunk_size, "overlap": overlap}
        )
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]) for e in exc.errors())
        raise ConfigError(f"Chunking options are not valid: {problems}.") from None
    with session() as db:
        kb = create_knowledge_base(
            session=db,
            app_id=_app_id(db, app),
            name=name,
            embedding_model=model or DEFAULT_EMBEDDING_MODEL,
            chunking=options,
        )
        kb_id, used = kb.id, kb.embedding_model
    out.print(f"Knowledge base {kb_id} '{name}' created (embeddings by {used}).")
    out.print(f"Add documents with `studio kb upload {kb_id} FILE...`.")


@kb_app.command("upload")
def kb_upload(
    kb: str,
    files: list[Path],
    app: AppOpt = None,
    text_column: Annotated[
        str | None,
        typer.Option("--text-column", help="The CSV column or JSON Lines field with the text."),
    ] = None,
) -> None:
    """Add FILES (text, Markdown, HTML, PDF, CSV, JSON Lines) to knowledge base KB."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from studio.core.errors import StudioError
    from studio.services.knowledge import DocumentResult, ingest_files

    with session() as db:
        kb_id = _kb_id(db, kb, app)
    loaded: list[tuple[str, bytes]] = []
    for path in files:
        try:
            loaded.append((path.name, path.read_bytes()))
        except OSError as exc:
            raise ConfigError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    with Progress(
        TextColumn("Embedding chunks"), BarColumn(), MofNCompleteColumn(), console=out,
        transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task("embed", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        results = ingest_files(
            kb_id=kb_id, files=loaded, text_column=text_column, progress=progress
        )
    failed = 0
    for result in results:
        if isinstance(result, DocumentResult):
            what = {"added": "added", "replaced": "replaced (changed)", "unchanged": "unchanged"}
            chunks = f"{result.chunks} chunk{'' if result.chunks == 1 else 's'}"
            out.print(f"{result.document.name}: {what[result.outcome]}, {chunks}.")
        else:
            assert isinstance(result, StudioError)
            failed += 1
            out.print(f"[red]refused[/red]: {result}")
    stored = len(results) - failed
    out.print(
        f"{stored} of {len(results)} files are in knowledge base {kb_id}; every chunk is embedded."
    )
    if failed:
        raise typer.Exit(1)


@kb_app.command("list")
def kb_list(app: AppOpt = None, as_json: JsonOpt = False) -> None:
    """The knowledge bases you may read (of one app with --app)."""
    from sqlmodel import col, func, select

    from studio.cli.apps import _app_id
    from studio.services.knowledge import list_knowledge_bases
    from studio.store.tables import KnowledgeDocument

    with session() as db:
        rows = list_knowledge_bases(session=db, app_id=_app_id(db, app) if app else None)
        by_kb = select(KnowledgeDocument.kb_id, func.count()).group_by(col(KnowledgeDocument.kb_id))
        counts: dict[int, int] = {int(k): int(n) for k, n in db.exec(by_kb).all()}
    data: list[dict[str, Any]] = [
        {
            "id": k.id, "app_id": k.app_id, "name": k.name, "documents": counts.get(k.id or 0, 0),
            "embedding_model": k.embedding_model, "serving_model": k.serving_model,
            "chunking": k.chunking,
        }
        for k in rows
    ]  # fmt: skip
    if as_json:
        print_json(data)
        return
    if not data:
        out.print("No knowledge bases yet; create one with `studio kb create --app APP --name N`.")
        return
    table(
        "Knowledge bases",
        ["id", "app", "name", "documents", "embedding model"],
        [[d["id"], d["app_id"], d["name"], d["documents"], d["embedding_model"]] for d in data],
    )


@kb_app.command("docs")
def kb_docs(kb: str, app: AppOpt = None, as_json: JsonOpt = False) -> None:
    """The documents of knowledge base KB."""
    from studio.services.knowledge import list_documents

    with session() as db:
        docs = list_documents(session=db, kb_id=_kb_id(db, kb, app))
    data: list[dict[str, Any]] = [
        {"id": d.id, "name": d.name, "kind": d.kind, "version": d.version,
         "chunks": d.chunk_count, "bytes": d.size_bytes}
        for d in docs
    ]  # fmt: skip
    if as_json:
        print_json(data)
        return
    if not data:
        out.print(f"Knowledge base {kb} has no documents yet.")
        return
    table(
        f"Documents of {kb}",
        ["id", "name", "kind", "version", "chunks"],
        [[d["id"], d["name"], d["kind"], d["version"], d["chunks"]] for d in data],
    )


@kb_app.command("query")
def kb_query(
    kb: str,
    question: str,
    app: AppOpt = None,
    top_k: Annotated[int, typer.Option("--top-k", min=1, max=100)] = 5,
    document: Annotated[
        list[str] | None, typer.Option("--document", help="Only these documents.")
    ] = None,
    hybrid: Annotated[bool, typer.Option("--hybrid", help="Fuse with BM25.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The chunks of KB nearest to QUESTION, best first, with their scores."""
    from studio.services.knowledge_search import search

    with session() as db:
        hits = search(
            session=db, kb_id=_kb_id(db, kb, app), query=question, top_k=top_k,
            documents=document or None, hybrid=hybrid,
        )  # fmt: skip
    data: list[dict[str, Any]] = [
        {"chunk_id": h.chunk_id, "document": h.document, "position": h.position,
         "score": round(h.score, 6), "text": h.text}
        for h in hits
    ]  # fmt: skip
    if as_json:
        print_json(data)
        return
    if not data:
        out.print("No chunks: the knowledge base has no embedded documents yet.")
        return
    table(
        f"Top {len(data)} for {question!r}",
        ["score", "document", "#", "text"],
        [[f"{d['score']:.3f}", d["document"], d["position"], d["text"][:160]] for d in data],
    )


@kb_app.command("model")
def kb_model(kb: str, model: str, app: AppOpt = None) -> None:
    """Re-embed KB with MODEL; its old vectors answer queries until the new are complete."""
    from studio.services.knowledge_ingest import embed_pending, set_embedding_model

    with session() as db:
        kb_id = _kb_id(db, kb, app)
        set_embedding_model(session=db, kb_id=kb_id, model=model)
    done = embed_pending(kb_id=kb_id)
    out.print(f"Knowledge base {kb_id}: {done.embedded} chunks embedded by {done.serving_model}.")


@kb_app.command("delete")
def kb_delete(
    kb: str,
    app: AppOpt = None,
    document: Annotated[
        str | None, typer.Option("--document", help="Delete only this document.")
    ] = None,
) -> None:
    """Delete knowledge base KB (or one of its documents) with its chunks and vectors."""
    from studio.services.knowledge import delete_document, delete_knowledge_base

    with session() as db:
        kb_id = _kb_id(db, kb, app)
        if document:
            doc = delete_document(session=db, kb_id=kb_id, document=document)
            message = f"Deleted document '{doc.name}' of knowledge base {kb_id} with its chunks."
        else:
            found = delete_knowledge_base(session=db, kb_id=kb_id)
            message = f"Deleted knowledge base {kb_id} '{found.name}' and its documents."
    out.print(message)


def _read_chunks(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read {path} as UTF-8 text: {exc}.") from None
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path} is not a JSON list of strings ({exc.msg}).") from None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ConfigError(f"{path} must be a JSON list of strings.")
        return items
    return [line for line in text.splitlines() if line.strip()]


@chunks_app.command("rank")
def chunks_rank(
    file: Path,
    query: Annotated[str, typer.Option("--query", help="The question to rank by.")],
    strategy: Annotated[
        str,
        typer.Option("--strategy", help="A reranking model, 'embedding[:MODEL]' or 'bm25'."),
    ] = "embedding",
    top_k: Annotated[int | None, typer.Option("--top-k", min=1)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Rank the chunks of FILE (one per line, or a JSON list) for QUERY, best first."""
    from studio.services.chunk_rank import rank_chunks

    chunks = _read_chunks(file)
    ranked = rank_chunks(query=query, relevant_chunks=chunks, rank_strategy=strategy, top_k=top_k)
    data: list[dict[str, Any]] = [
        {"chunk": r.chunk, "index": r.index, "score": round(r.score, 6)} for r in ranked
    ]
    if as_json:
        print_json(data)
        return
    table(
        f"{len(data)} of {len(chunks)} chunks for {query!r}",
        ["score", "#", "chunk"],
        [[f"{d['score']:.3f}", d["index"], d["chunk"][:160]] for d in data],
    )
