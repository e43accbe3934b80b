"""Retrieval options of ``studio variant``: ``create --kb handbook --top-k 4 ...`` makes
version 1 with a retrieval step, and ``studio variant retrieval NAME --app APP --kb KB``
saves a new version of the latest one with the step set (``--off``: without one). The
prompt then uses ``{{context}}`` (the chunks' text) or loops over ``{{chunks}}``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlmodel import Session

from studio.cli.output import JsonOpt, print_json
from studio.core.errors import ConfigError
from studio.store import session_scope

__all__ = [
    "HybridOpt",
    "KbOpt",
    "QueryOpt",
    "RerankerOpt",
    "TopKOpt",
    "retrieval_doc",
    "variant_retrieval",
]

KbOpt = Annotated[
    str | None,
    typer.Option("--kb", help="Search this knowledge base (name or id) into {{context}}."),
]
QueryOpt = Annotated[
    str | None,
    typer.Option("--query-template", help="The search query over the row's columns."),
]
TopKOpt = Annotated[int | None, typer.Option("--top-k", help="Chunks given to the prompt (1-20).")]
RerankerOpt = Annotated[
    str | None, typer.Option("--reranker", help="A reranking model that reorders the chunks.")
]
HybridOpt = Annotated[
    bool, typer.Option("--hybrid", help="Fuse BM25 keyword search with the vectors.")
]


def retrieval_doc(
    session: Session,
    app_id: int,
    kb: str | None,
    query_template: str | None,
    top_k: int | None,
    reranker: str | None,
    hybrid: bool,
) -> dict[str, Any] | None:
    """The retrieval step the options describe (None without ``--kb``)."""
    if kb is None:
        if query_template or top_k or reranker or hybrid:
            raise ConfigError(
                "The retrieval options need --kb: the knowledge base to search.",
                hint="List this app's knowledge bases with `studio kb list --app APP`.",
            )
        return None
    from studio.services.knowledge import get_knowledge_base

    found = get_knowledge_base(session=session, ref=kb, app_id=app_id)
    doc: dict[str, Any] = {"kb_id": found.id, "hybrid": hybrid, "reranker": reranker}
    if query_template is not None:
        doc["query_template"] = query_template
    if top_k is not None:
        doc["top_k"] = top_k
    return doc


def variant_retrieval(
    name: str,
    app_ref: Annotated[str, typer.Option("--app", help="App name or id.")],
    kb: KbOpt = None,
    query_template: QueryOpt = None,
    top_k: TopKOpt = None,
    reranker: RerankerOpt = None,
    hybrid: HybridOpt = False,
    off: Annotated[bool, typer.Option("--off", help="Save a version without retrieval.")] = False,
    note: Annotated[str, typer.Option(help="A note on this version.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Save a new version of a variant with a retrieval step (or, with --off, without)."""
    from studio.cli.apps import _app_id
    from studio.services.retrieval_spec import parse_retrieval
    from studio.services.variants import get_variant, latest_version, save_version, version_config

    if off == (kb is not None):
        raise ConfigError("Give exactly one of --kb KNOWLEDGE_BASE or --off.")
    with session_scope() as session:
        app_id = _app_id(session, app_ref)
        variant = get_variant(session=session, app_id=app_id, ref=name)
        assert variant.id is not None
        doc = retrieval_doc(session, app_id, kb, query_template, top_k, reranker, hybrid)
        config = version_config(latest_version(session=session, variant_id=variant.id))
        config = config.model_copy(update={"retrieval": parse_retrieval(doc)})
        version = save_version(session=session, variant_id=variant.id, config=config, note=note)
        info = version.model_dump(mode="json")
    if as_json:
        print_json(info)
        return
    what = "without retrieval" if off else f"searching knowledge base {kb}"
    typer.echo(f"Saved variant '{name}' version {info['version']} {what}.")
