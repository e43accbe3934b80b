"""Variants, runs, their cache and endpoints reference a stored model by id, not by name.

Renaming a model keeps everything that uses it working (and shows the new name);
deleting a model that an endpoint or a variant's latest version uses is refused
with a sentence naming them; the 0005 migration fills the ids of existing data.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from alembic import command
from sqlalchemy import text
from sqlmodel import Session, select

from studio.core.errors import ConflictError, NotFoundError
from studio.core.prompting import build_payload
from studio.core.schemas import ModelType
from studio.core.templates import PromptTemplate
from studio.models import registry
from studio.models.specs import ModelCreate
from studio.services import endpoint_calls, endpoints
from studio.services.apps import create_app
from studio.services.datasets import upload_dataset
from studio.services.runs import RunConfig, _cache_key, create_run, run_sync
from studio.services.variants import (
    VariantConfig,
    archive_variant,
    create_variant,
    fork_variant,
    get_version,
    history,
    list_variants,
    save_version,
    version_config,
)
from studio.store import get_engine, session_scope
from studio.store.db import alembic_config
from studio.store.tables import ResponseCache, Run, RunResult, VariantVersion


def _model(session: Session, name: str = "support-bot") -> str:
    model = registry.create_model(
        session=session,
        data=ModelCreate(
            name=name, model_type="CHAT_COMPLETION", connection="mock", provider_model="echo"
        ),
    )
    return model.id


def _config(model: str, template: str = "Email about {{event}}") -> VariantConfig:
    return VariantConfig(model=model, prompt=PromptTemplate.completion(template))


@pytest.fixture
def app_id(session: Session, mock_provider: Any) -> int:
    app = create_app(session=session, name="Copy")
    assert app.id is not None
    return app.id


def _answer(name: str = "copy-email") -> str:
    endpoint_calls.clear_endpoint_cache()  # as a gateway process that reads the database anew
    return asyncio.run(endpoint_calls.generate(name=name, inputs={"event": "fair"})).output


def test_renaming_a_model_keeps_its_endpoint_answering_and_variants_show_the_new_name(
    session: Session, app_id: int
) -> None:
    model_id = _model(session)
    v1 = create_variant(session=session, app_id=app_id, name="email", config=_config("support-bot"))
    assert (v1.model, v1.model_id) == ("support-bot", model_id)
    endpoints.deploy(session=session, app="Copy", variant="email")
    session.commit()
    assert _answer() == "echo: Email about fair"

    registry.rename_model(session=session, ref="support-bot", new_name="helpdesk-bot")
    session.commit()

    assert _answer() == "echo: Email about fair"  # used to be "No model ... 'support-bot'"
    assert endpoints.get_endpoint(session=session, name="copy-email").model == "helpdesk-bot"
    version = get_version(session=session, version_id=v1.id or 0)
    assert version_config(version).model == "helpdesk-bot"
    assert [v.model for v in list_variants(session=session, app_id=app_id)] == ["helpdesk-bot"]
    # saving the same configuration under the new name is no new version
    again = save_version(session=session, variant_id=v1.variant_id, config=_config("helpdesk-bot"))
    assert again.id == v1.id
    fork = fork_variant(session=session, variant_id=v1.variant_id, new_name="fork")
    assert (fork.model, fork.model_id) == ("helpdesk-bot", model_id)
    # redeploying still finds the model
    endpoints.deploy(session=session, app="Copy", variant="email", name="copy-email")
    session.commit()
    assert _answer() == "echo: Email about fair"


def test_a_model_given_by_id_is_saved_under_its_name(session: Session, app_id: int) -> None:
    model_id = _model(session)
    v1 = create_variant(session=session, app_id=app_id, name="email", config=_config(model_id))
    assert (v1.model, v1.model_id) == ("support-bot", model_id)
    same = save_version(session=session, variant_id=v1.variant_id, config=_config("support-bot"))
    assert same.id == v1.id


def test_builtin_and_connection_names_are_their_own_reference(
    session: Session, app_id: int
) -> None:
    v1 = create_variant(session=session, app_id=app_id, name="email", config=_config("mock/echo"))
    v2 = create_variant(
        session=session,
        app_id=app_id,
        name="local",
        config=_config("builtin/smollm2-135m-instruct"),
    )
    assert (v1.model, v1.model_id) == ("mock/echo", None)
    assert (v2.model, v2.model_id) == ("builtin/smollm2-135m-instruct", None)
    endpoints.deploy(session=session, app="Copy", variant="email")
    session.commit()
    assert _answer() == "echo: Email about fair"


def _dataset(session: Session, app_id: int) -> int:
    csv = "event\n" + "".join(f"Event {i}\n" for i in range(5))
    version = upload_dataset(
        session=session, app_id=app_id, name="events", data=csv.encode(), filename="events.csv"
    )
    assert version.id is not None
    return version.id


def _run(session: Session, app_id: int, dataset_id: int, model: str) -> int:
    config = RunConfig(model=model, prompt=PromptTemplate.completion("About {{event}}"))
    run = create_run(session=session, app_id=app_id, dataset_version_id=dataset_id, config=config)
    session.commit()
    assert run.id is not None
    return run.id


def test_a_run_made_before_a_rename_resumes_and_its_cache_still_answers(
    session: Session, app_id: int, mock_provider: Any
) -> None:
    model_id = _model(session)
    dataset_id = _dataset(session, app_id)
    first = _run(session, app_id, dataset_id, "support-bot")
    assert run_sync(run_id=first).done == 5
    pending = _run(session, app_id, dataset_id, "support-bot")
    assert session.get(Run, pending) is not None

    registry.rename_model(session=session, ref="support-bot", new_name="helpdesk-bot")
    session.commit()

    calls = len(mock_provider.calls)
    resumed = run_sync(run_id=pending)  # made under the old name, run after the rename
    assert (resumed.status, resumed.done, resumed.errors) == ("done", 5, 0)
    assert resumed.cached == 5 and len(mock_provider.calls) == calls
    renamed = _run(session, app_id, dataset_id, "helpdesk-bot")  # new name, same model
    assert run_sync(run_id=renamed).cached == 5
    stored = session.get(Run, renamed)
    assert stored is not None and stored.config["model_id"] == model_id


def test_deleting_a_model_an_endpoint_or_variant_uses_is_refused_naming_them(
    session: Session, app_id: int
) -> None:
    _model(session)
    _model(session, "other-bot")
    v1 = create_variant(session=session, app_id=app_id, name="email", config=_config("support-bot"))
    endpoints.deploy(session=session, app="Copy", variant="email")
    session.commit()

    with pytest.raises(ConflictError, match="deployed endpoint 'copy-email' uses it") as exc:
        registry.delete_model(session=session, ref="support-bot")
    assert "Undeploy" in (exc.value.hint or "")
    endpoints.undeploy(session=session, name="copy-email")
    with pytest.raises(ConflictError, match="variant 'Copy / email' uses it"):
        registry.delete_model(session=session, ref="support-bot")
    archive_variant(session=session, variant_id=v1.variant_id)
    registry.delete_model(session=session, ref="support-bot")  # archived: allowed
    with pytest.raises(NotFoundError):
        registry.get_model(session=session, ref="support-bot")


def test_a_version_whose_model_was_deleted_says_so(session: Session, app_id: int) -> None:
    _model(session)
    _model(session, "other-bot")
    v1 = create_variant(session=session, app_id=app_id, name="email", config=_config("support-bot"))
    save_version(session=session, variant_id=v1.variant_id, config=_config("other-bot"))
    registry.delete_model(session=session, ref="support-bot")  # only the older version used it
    _model(session)  # a new model takes the deleted one's name
    session.commit()
    with pytest.raises(NotFoundError, match="The model 'support-bot' was deleted"):
        endpoints.deploy(session=session, app="Copy", variant="email", version=1)
    # a fork of version 1 keeps pointing at the deleted model, not at its namesake
    fork = fork_variant(session=session, variant_id=v1.variant_id, new_name="fork", version=1)
    assert (fork.model, fork.model_id) == ("support-bot", v1.model_id)
    # saving the old configuration again is a new version, on the new model
    v3 = save_version(session=session, variant_id=v1.variant_id, config=_config("support-bot"))
    assert v3.version == 3 and v3.model_id != v1.model_id
    assert [v.version for v in history(session=session, variant_id=v1.variant_id)] == [3, 2, 1]


def test_migration_0005_fills_model_ids_from_names(session: Session, app_id: int) -> None:
    model_id = _model(session)
    v1 = create_variant(session=session, app_id=app_id, name="email", config=_config("support-bot"))
    v2 = create_variant(session=session, app_id=app_id, name="echo", config=_config("mock/echo"))
    dataset_id = _dataset(session, app_id)
    run_id = _run(session, app_id, dataset_id, "support-bot")
    session.commit()
    session.close()
    engine = get_engine()
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    command.downgrade(cfg, "0004")
    with engine.begin() as conn:  # the run as it was stored before 0005: no model_id
        old = '{"model": "support-bot", "prompt": {"template": "About {{event}}"}}'
        conn.execute(text("UPDATE run SET config = :c WHERE id = :i"), {"c": old, "i": run_id})
    command.upgrade(cfg, "head")

    with session_scope() as s:
        assert s.get(VariantVersion, v1.id).model_id == model_id  # type: ignore[union-attr]
        assert s.get(VariantVersion, v2.id).model_id is None  # type: ignore[union-attr]
        run = s.get(Run, run_id)
        assert run is not None and run.config["model_id"] == model_id
        registry.rename_model(session=s, ref="support-bot", new_name="helpdesk-bot")
    assert run_sync(run_id=run_id).errors == 0  # found by id after the rename
    with session_scope() as s:
        endpoints.deploy(session=s, app="Copy", variant="email")
    assert _answer() == "echo: Email about fair"


def test_answers_cached_by_name_before_the_upgrade_still_answer(
    session: Session, app_id: int, mock_provider: Any
) -> None:
    _model(session)
    dataset_id = _dataset(session, app_id)
    first = _run(session, app_id, dataset_id, "support-bot")
    run_sync(run_id=first)
    # key the cache as the studio did before models were referenced by id: by name
    for row in session.exec(select(ResponseCache)).all():
        session.delete(row)
    payload = build_payload(ModelType.CHAT_COMPLETION, "About Event 0", {})
    session.add(
        ResponseCache(
            key=_cache_key("support-bot", payload, 0),
            model="support-bot",
            response={"message": {"role": "assistant", "content": "old answer"}},
        )
    )
    session.commit()
    second = _run(session, app_id, dataset_id, "support-bot")
    assert run_sync(run_id=second).cached == 1
    rows = session.exec(select(RunResult).where(RunResult.run_id == second)).all()
    assert {r.output for r in rows if r.cached} == {"old answer"}
