"""A variant version holds its retrieval step: saved, compared, forked, checked on save,
and used by every run of that version (also runs whose config does not repeat it, as an
evaluation's are)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session

from studio.core.errors import ConflictError, RequestValidationError
from studio.core.templates import PromptTemplate
from studio.services.retrieval_spec import RetrievalSpec, caller_variables, parse_retrieval
from studio.services.runs import RunConfig, create_run, list_results, run_sync
from studio.services.variants import (
    VariantConfig,
    create_variant,
    diff_versions,
    fork_variant,
    latest_version,
    save_version,
    version_config,
)
from tests.services.retrieval_setup import PROMPT, handbook, help_app, questions


def _config(kb_id: int | None, **retrieval: Any) -> VariantConfig:
    spec = RetrievalSpec(kb_id=kb_id, **retrieval) if kb_id is not None else None
    return VariantConfig(
        model="mock/echo", prompt=PromptTemplate.completion(PROMPT), retrieval=spec
    )


def test_retrieval_is_saved_with_the_version_and_a_change_makes_a_new_one(
    session: Session, mock_provider: Any
) -> None:
    app_id = help_app(session)
    kb_id = handbook(session, app_id)
    first = create_variant(session=session, app_id=app_id, name="rag", config=_config(kb_id))
    assert first.retrieval["kb_id"] == kb_id and first.retrieval["top_k"] == 4
    assert version_config(first).retrieval == RetrievalSpec(kb_id=kb_id)

    same = save_version(session=session, variant_id=first.variant_id, config=_config(kb_id))
    assert same.id == first.id  # unchanged: no new version
    more = save_version(
        session=session, variant_id=first.variant_id, config=_config(kb_id, top_k=6)
    )
    assert more.version == 2
    assert "top_k: 6" in diff_versions(session=session, a_id=first.id or 0, b_id=more.id or 0)
    off = save_version(session=session, variant_id=first.variant_id, config=_config(None))
    assert off.version == 3 and off.retrieval == {}

    fork = fork_variant(session=session, variant_id=first.variant_id, new_name="copy", version=2)
    assert version_config(fork).retrieval == RetrievalSpec(kb_id=kb_id, top_k=6)


def test_saving_a_step_on_another_apps_knowledge_base_is_refused(
    session: Session, mock_provider: Any
) -> None:
    mine, theirs = help_app(session, "Mine"), help_app(session, "Theirs")
    their_kb = handbook(session, theirs, name="theirs")
    with pytest.raises(ConflictError, match="belongs to another app"):
        create_variant(session=session, app_id=mine, name="rag", config=_config(their_kb))


def test_a_bad_step_names_the_field() -> None:
    with pytest.raises(RequestValidationError, match="top_k"):
        parse_retrieval({"kb_id": 1, "top_k": 50})
    assert parse_retrieval({}) is None


def test_a_run_of_a_variant_version_retrieves_even_when_its_config_does_not_say_so(
    session: Session, mock_provider: Any
) -> None:
    app_id = help_app(session)
    kb_id = handbook(session, app_id)
    created = create_variant(session=session, app_id=app_id, name="rag", config=_config(kb_id))
    version = latest_version(session=session, variant_id=created.variant_id)
    config = version_config(version)
    run = create_run(  # as an evaluation builds it: model, prompt and parameters only
        session=session,
        app_id=app_id,
        dataset_version_id=questions(session, app_id),
        config=RunConfig(model=config.model, prompt=config.prompt),
        variant_version_id=version.id,
    )
    session.commit()
    assert run.id is not None and run.config["retrieval"]["kb_id"] == kb_id
    run_sync(run_id=run.id)
    results = list_results(session=session, run_id=run.id)
    assert all(r.retrieval and r.retrieval["chunks"] for r in results)


def test_an_endpoint_caller_sends_the_query_columns_not_context() -> None:
    prompt = PromptTemplate.completion("{% for c in chunks %}{{ c.text }}{% endfor %} {{tone}}")
    spec = RetrievalSpec(kb_id=1, query_template="{{question}} ({{product}})")
    assert caller_variables(prompt, spec) == ["tone", "question", "product"]
    assert caller_variables(prompt, None) == ["chunks", "tone"]
