"""Variants: immutable versions, no-op saves, diffs, forks, parameter checks."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session

from studio.core.errors import ConflictError, RequestValidationError
from studio.core.templates import PromptTemplate
from studio.services.apps import create_app
from studio.services.variants import (
    VariantConfig,
    archive_variant,
    create_variant,
    diff_versions,
    fork_variant,
    get_variant,
    get_version,
    history,
    list_variants,
    parse_config,
    rename_variant,
    save_version,
    version_config,
)
from studio.store.tables import Variant


def _config(template: str = "Email about {{event}}", **params: Any) -> VariantConfig:
    return VariantConfig(
        model="mock/echo",
        prompt=PromptTemplate.completion(template),
        parameters=params or {"max_tokens": 20},  # type: ignore[arg-type]
    )


def _app(session: Session) -> int:
    app = create_app(session=session, name="Marketing copy")
    assert app.id is not None
    return app.id


def test_saving_makes_a_new_version_and_keeps_the_old_one(session: Session) -> None:
    app_id = _app(session)
    v1 = create_variant(session=session, app_id=app_id, name="friendly", config=_config())
    v2 = save_version(
        session=session,
        variant_id=v1.variant_id,
        config=_config("Warm email about {{event}}"),
        note="warmer",
    )
    session.commit()
    assert (v1.version, v2.version) == (1, 2)
    assert v1.id != v2.id
    assert get_version(session=session, version_id=v1.id or 0).template == "Email about {{event}}"
    assert [v.version for v in history(session=session, variant_id=v1.variant_id)] == [2, 1]
    assert version_config(v2).prompt.template == "Warm email about {{event}}"


def test_saving_an_identical_config_makes_no_version(session: Session) -> None:
    app_id = _app(session)
    v1 = create_variant(session=session, app_id=app_id, name="friendly", config=_config())
    again = save_version(session=session, variant_id=v1.variant_id, config=_config(), note="x")
    assert again.id == v1.id
    assert len(history(session=session, variant_id=v1.variant_id)) == 1


def test_duplicate_name_in_the_same_app_is_a_conflict(session: Session) -> None:
    app_id = _app(session)
    create_variant(session=session, app_id=app_id, name="friendly", config=_config())
    with pytest.raises(ConflictError, match="friendly"):
        create_variant(session=session, app_id=app_id, name="friendly", config=_config())


def test_diff_shows_the_changed_line(session: Session) -> None:
    app_id = _app(session)
    v1 = create_variant(session=session, app_id=app_id, name="friendly", config=_config())
    v2 = save_version(
        session=session,
        variant_id=v1.variant_id,
        config=_config(max_tokens=50),
    )
    diff = diff_versions(session=session, a_id=v1.id or 0, b_id=v2.id or 0)
    changed = [
        line
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert changed == ["-  max_tokens: 20", "+  max_tokens: 50"]
    assert diff_versions(session=session, a_id=v1.id or 0, b_id=v1.id or 0) == ""


def test_fork_copies_the_chosen_version(session: Session) -> None:
    app_id = _app(session)
    v1 = create_variant(session=session, app_id=app_id, name="friendly", config=_config())
    save_version(session=session, variant_id=v1.variant_id, config=_config("Other {{event}}"))
    fork = fork_variant(session=session, variant_id=v1.variant_id, new_name="formal", version=1)
    forked = session.get(Variant, fork.variant_id)
    assert forked is not None and forked.forked_from_version_id == v1.id
    assert fork.version == 1
    assert version_config(fork) == version_config(v1)
    names = [s.name for s in list_variants(session=session, app_id=app_id)]
    assert names == ["formal", "friendly"]


def test_rename_archive_and_lookup(session: Session) -> None:
    app_id = _app(session)
    v1 = create_variant(session=session, app_id=app_id, name="friendly", config=_config())
    rename_variant(session=session, variant_id=v1.variant_id, name="warm")
    assert get_variant(session=session, app_id=app_id, ref="warm").id == v1.variant_id
    archive_variant(session=session, variant_id=v1.variant_id)
    assert list_variants(session=session, app_id=app_id) == []
    shown = list_variants(session=session, app_id=app_id, include_archived=True)
    assert [(s.name, s.latest_version) for s in shown] == [("warm", 1)]


def test_archived_variant_can_be_restored(session: Session) -> None:
    app_id = _app(session)
    v1 = create_variant(session=session, app_id=app_id, name="friendly", config=_config())
    archive_variant(session=session, variant_id=v1.variant_id)
    restored = archive_variant(session=session, variant_id=v1.variant_id, archived=False)
    assert restored.archived is False
    assert [s.name for s in list_variants(session=session, app_id=app_id)] == ["friendly"]


def test_summary_says_when_the_latest_version_was_saved(session: Session) -> None:
    app_id = _app(session)
    v1 = create_variant(session=session, app_id=app_id, name="friendly", config=_config())
    [summary] = list_variants(session=session, app_id=app_id)
    assert summary.last_saved == v1.created_at
    v2 = save_version(session=session, variant_id=v1.variant_id, config=_config("New {{event}}"))
    [summary] = list_variants(session=session, app_id=app_id)
    assert (summary.latest_version, summary.last_saved) == (2, v2.created_at)
    assert summary.last_saved >= summary.created_at


def test_chat_config_round_trips(session: Session) -> None:
    app_id = _app(session)
    prompt = PromptTemplate.chat([{"role": "user", "content": "{{q}}"}], system="Be brief.")
    config = VariantConfig(model="mock/echo", prompt=prompt)
    v1 = create_variant(session=session, app_id=app_id, name="chat", config=config)
    assert version_config(v1) == config


@pytest.mark.parametrize(
    ("params", "field", "rule"),
    [
        ({"temperature": 1.5}, "parameters.temperature", "<= 1"),
        ({"stop_sequences": ["a", "b", "c", "d", "e"]}, "parameters.stop_sequences", "at most 4"),
        ({"max_tokens": 0}, "parameters.max_tokens", ">= 1"),
        ({"colour": "red"}, "parameters.colour", "unknown field"),
    ],
)
def test_parameter_errors_name_the_field_and_rule(
    params: dict[str, Any], field: str, rule: str
) -> None:
    doc = {"model": "mock/echo", "prompt": {"template": "hi"}, "parameters": params}
    with pytest.raises(RequestValidationError) as info:
        parse_config(doc)
    message = str(info.value)
    assert field in message and rule in message


def test_a_run_of_a_prompt_saved_afterwards_becomes_a_run_of_that_version(
    session: Session, mock_provider: Any
) -> None:
    """Generate in the Playground, then Save as variant: the run is the version's (named in
    pickers, reused by an evaluation) and a run with other settings is not."""
    from studio.services.datasets import upload_dataset
    from studio.services.evaluation_runs import contender_runs
    from studio.services.runs import RunConfig, create_run, run_sync
    from studio.store.tables import Run

    app_id = _app(session)
    data = b"event\nlaunch\nsale\n"
    dataset = upload_dataset(
        session=session, app_id=app_id, name="events", data=data, filename="events.csv"
    )
    assert dataset.id is not None
    config = _config()

    def run_of(parameters: dict[str, Any]) -> int:
        run = create_run(
            session=session, app_id=app_id, dataset_version_id=dataset.id or 0,
            config=RunConfig(model=config.model, prompt=config.prompt, parameters=parameters),
        )  # fmt: skip
        session.commit()
        assert run.id is not None
        run_sync(run_id=run.id)
        return run.id

    same, other = run_of(config.parameter_dict()), run_of({"max_tokens": 21})
    saved = create_variant(session=session, app_id=app_id, name="launch mail", config=config)
    session.commit()
    session.expire_all()
    assert session.get(Run, same).variant_version_id == saved.id  # type: ignore[union-attr]
    assert session.get(Run, other).variant_version_id is None  # type: ignore[union-attr]

    found = contender_runs(
        session=session, app_id=app_id, dataset_version_id=dataset.id, variants=["launch mail@1"]
    )
    assert (found.run_ids, found.missing) == ([same], [])  # nothing generated a second time

    # a new version of the same variant takes the run made with its settings
    v2 = save_version(session=session, variant_id=saved.variant_id, config=_config(max_tokens=21))
    session.commit()
    session.expire_all()
    assert session.get(Run, other).variant_version_id == v2.id  # type: ignore[union-attr]
    assert session.get(Run, same).variant_version_id == saved.id  # type: ignore[union-attr]
