"""Fine-tuning jobs: everything is checked before a job starts, and a job is its app's."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session

from studio.core.errors import DatasetError, NotFoundError, PermissionDeniedError
from studio.core.identity import acting_as
from studio.core.schemas import ModelType
from studio.models import registry
from studio.models.specs import ModelCreate
from studio.services import finetune
from studio.services.finetune import FineTuneCreate
from studio.services.finetune_records import claim, finish, register_model
from studio.services.members import add_member
from studio.services.users import actor_for_user, create_user
from studio.store.tables import FineTunedModel, Model
from tests.services.finetune_fakes import (
    FineTuningServer,
    csv_bytes,
    make_dataset,
    product_rows,
)

PASSWORD = "correct horse battery"


def _ask(version_id: int, **extra: object) -> FineTuneCreate:
    return FineTuneCreate.model_validate(
        {
            "base_model": "acme/base-mini",
            "dataset_version_id": version_id,
            "prompt_column": "question",
            "completion_column": "answer",
            **extra,
        }
    )


@pytest.fixture
def server(session: Session) -> object:
    with FineTuningServer() as fake:
        fake.connect(session)
        yield fake


def test_empty_targets_are_named_and_nothing_starts(session: Session, server: object) -> None:
    rows = product_rows()
    rows[2]["answer"] = " "
    rows[5]["answer"] = ""
    _, version_id = make_dataset(session, rows)
    with pytest.raises(DatasetError, match="'answer' is empty in rows 3, 6"):
        finetune.create_job(data=_ask(version_id), actor="cli", start=False)
    assert finetune.list_jobs() == []


def test_rows_longer_than_the_context_window_are_named(session: Session, server: object) -> None:
    rows = product_rows()
    rows[4]["question"] = "Tell me everything about this product. " * 40
    _, version_id = make_dataset(session, rows)
    registry.create_model(
        session=session,
        data=ModelCreate(
            name="acme-small",
            model_type=ModelType.CHAT_COMPLETION,
            connection="acme",
            provider_model="base-mini",
            context_window=100,
        ),
    )
    session.commit()
    with pytest.raises(DatasetError, match=r"Row 5 is longer than .* 100 tokens"):
        finetune.create_job(
            data=_ask(version_id, base_model="acme-small"), actor="cli", start=False
        )


def test_too_few_rows_and_bad_chat_rows_are_refused(session: Session, server: object) -> None:
    _, few = make_dataset(session, product_rows()[:3])
    with pytest.raises(DatasetError, match="has 3 rows; fine-tuning needs at least 4"):
        finetune.create_job(data=_ask(few), actor="cli", start=False)


def test_chat_conversations_train_like_prompt_and_completion(
    session: Session, server: object
) -> None:
    def talk(i: int) -> list[dict[str, str]]:
        return [
            {"role": "user", "content": f"Code ZX-{i}?"},
            {"role": "assistant", "content": f"Item {i}"},
        ]

    rows = [{"chat": json.dumps(talk(i))} for i in range(6)]
    _, good = make_dataset(session, [*rows, {"chat": json.dumps(talk(7)[:1])}])
    ask = FineTuneCreate(
        base_model="acme/base-mini", dataset_version_id=good, messages_column="chat"
    )
    with pytest.raises(DatasetError, match=r"does not end with an assistant message.* row 7"):
        finetune.create_job(data=ask, actor="cli", start=False)
    from studio.services.datasets import upload_dataset

    fixed = upload_dataset(
        session=session, app_id=1, name="products", data=csv_bytes(rows), filename="p.csv"
    )
    session.commit()
    assert fixed.id is not None
    job = finetune.create_job(
        data=ask.model_copy(update={"dataset_version_id": fixed.id}), actor="cli", start=False
    )
    assert (job.train_rows, job.validation_rows, job.columns) == (5, 1, {"messages": "chat"})


def test_a_job_is_its_apps(session: Session, server: object) -> None:
    _, version_id = make_dataset(session)
    job = finetune.create_job(data=_ask(version_id), actor="cli", start=False)
    mia = create_user(session=session, name="mia", password=PASSWORD, role="member")
    rex = create_user(session=session, name="rex", password=PASSWORD, role="reviewer")
    session.commit()
    with acting_as(actor_for_user(mia)):
        assert finetune.list_jobs() == []
        with pytest.raises(NotFoundError):
            finetune.get_job(job_id=job.id)
        with pytest.raises(NotFoundError):
            finetune.cancel_job(job_id=job.id)
        with pytest.raises(NotFoundError):
            finetune.create_job(data=_ask(version_id), actor="ui", start=False)
    with (
        acting_as(actor_for_user(rex)),
        pytest.raises(PermissionDeniedError, match="Only administrators or members"),
    ):
        finetune.create_job(data=_ask(version_id), actor="ui", start=False)
    add_member(session=session, app="Catalogue helper", user="mia")
    session.commit()
    with acting_as(actor_for_user(mia)):
        assert [j.id for j in finetune.list_jobs()] == [job.id]
        assert finetune.cancel_job(job_id=job.id).cancel_requested


def test_a_job_that_fails_while_registering_leaves_no_model(
    session: Session, server: object
) -> None:
    _, version_id = make_dataset(session)
    job = finetune.create_job(data=_ask(version_id), actor="cli", start=False)
    assert claim(job.id) is not None
    taken = ModelCreate(
        name="builtin-clash", model_type=ModelType.CHAT_COMPLETION, connection="acme",
        provider_model="x",
    )  # fmt: skip
    registry.create_model(session=session, data=taken)
    session.commit()
    assert register_model(job.id, model=taken, final_train_loss=1.0, final_val_loss=1.0) is None
    view = finetune.get_job(job_id=job.id)
    assert view.state == "failed" and "already exists" in (view.error or "")
    session.expire_all()
    assert session.query(FineTunedModel).count() == 0
    assert session.query(Model).filter_by(name="builtin-clash").count() == 1


def test_an_ended_job_stays_ended(session: Session, server: object) -> None:
    _, version_id = make_dataset(session)
    job = finetune.create_job(data=_ask(version_id), actor="cli", start=False)
    finetune.cancel_job(job_id=job.id)
    assert claim(job.id) is None  # cancelled before a worker took it
    finish(job.id, "failed", "too late")
    assert finetune.get_job(job_id=job.id).state == "cancelled"


def test_the_dataset_must_have_its_columns(session: Session, server: object) -> None:
    _, version_id = make_dataset(session, [{"q": "a", "a": "b"}] * 5)
    with pytest.raises(DatasetError, match="no column 'question' for the prompts"):
        finetune.create_job(data=_ask(version_id), actor="cli", start=False)
    assert csv_bytes([{"q": "a"}]).startswith(b"q")


def test_a_job_whose_worker_never_started_shows_stalled_and_cancels_at_once(
    session: Session, server: object
) -> None:
    from datetime import timedelta

    from studio.core.errors import ConflictError
    from studio.store.tables import Job, utcnow

    _, version_id = make_dataset(session)
    job = finetune.create_job(data=_ask(version_id), actor="cli", start=False)
    with pytest.raises(ConflictError, match="is queued: its worker is starting"):
        finetune.resume_job(job_id=job.id)
    row = session.get(Job, job.id)
    assert row is not None
    row.created_at = utcnow() - timedelta(hours=1)
    session.add(row)
    session.commit()
    assert finetune.get_job(job_id=job.id).stalled
    assert finetune.cancel_job(job_id=job.id).state == "cancelled"
