"""Fine-tuning through an OpenAI-compatible server: upload, create, follow, cancel, register."""

from __future__ import annotations

import json
import threading

import pytest
from sqlmodel import Session, select

from studio.core.errors import ConflictError, DatasetError
from studio.services import finetune, finetune_openai
from studio.services.finetune import FineTuneCreate
from studio.services.finetune_records import update_params
from studio.services.finetune_worker import run_job
from studio.store.tables import FineTunedModel, Model, ModelGroup
from tests.services.finetune_fakes import FineTuningServer, make_dataset


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(finetune_openai, "POLL_FIRST_S", 0.01)
    monkeypatch.setattr(finetune_openai, "POLL_MAX_S", 0.05)


def _ask(version_id: int, **extra: object) -> FineTuneCreate:
    return FineTuneCreate.model_validate(
        {
            "base_model": "acme/base-mini",
            "dataset_version_id": version_id,
            "prompt_column": "question",
            "completion_column": "answer",
            "validation_share": 0.25,
            **extra,
        }
    )


def test_a_job_uploads_trains_and_registers_the_model_in_the_bases_group(session: Session) -> None:
    _, version_id = make_dataset(session)
    with FineTuningServer(polls=3) as server:
        server.connect(session)
        job = finetune.create_job(data=_ask(version_id, epochs=2), actor="cli", start=False)
        assert job.state == "queued" and job.backend == "openai"
        assert (job.train_rows, job.validation_rows) == (6, 2)
        run_job(job.id)
    done = finetune.get_job(job_id=job.id)
    assert done.state == "succeeded", done.error
    assert done.model == "acme/ft:base-mini:studio::abc123"
    # the training file is chat-format JSON Lines with the answer last
    train = next(iter(server.files.values()))
    line = json.loads(train.splitlines()[0])
    assert line["messages"][-1]["role"] == "assistant"
    assert server.created[0]["model"] == "base-mini"
    assert server.created[0]["hyperparameters"]["n_epochs"] == 2
    assert "validation_file" in server.created[0]
    # losses per step, and the lineage beside the model in the base's group
    losses = [m.train_loss or 0.0 for m in finetune.job_metrics(job_id=job.id)]
    assert losses == sorted(losses, reverse=True) and len(losses) == 2
    session.expire_all()
    model = session.exec(select(Model).where(Model.name == done.model)).one()
    assert (model.connection, model.provider_model) == ("acme", "ft:base-mini:studio::abc123")
    group = session.get(ModelGroup, model.model_group_id)
    assert group is not None and group.name == "acme/base-mini"
    lineage = session.exec(select(FineTunedModel).where(FineTunedModel.job_id == job.id)).one()
    assert lineage.dataset_version_id == version_id
    assert lineage.columns == {"prompt": "question", "completion": "answer"}
    assert lineage.hyperparameters["epochs"] == 2
    assert lineage.final_train_loss == pytest.approx(1.0)
    logs = [line.message for line in finetune.job_logs(job_id=job.id)]
    assert any("Succeeded" in m for m in logs)


def test_a_failed_provider_job_fails_with_its_reason_and_registers_nothing(
    session: Session,
) -> None:
    _, version_id = make_dataset(session)
    with FineTuningServer(outcome="failed", polls=2) as server:
        server.connect(session)
        job = finetune.create_job(data=_ask(version_id), actor="cli", start=False)
        run_job(job.id)
    done = finetune.get_job(job_id=job.id)
    assert done.state == "failed"
    assert done.error is not None and "Row 3 has too many tokens" in done.error
    assert done.model is None
    session.expire_all()
    assert session.exec(select(FineTunedModel)).all() == []
    assert session.exec(select(Model).where(Model.connection == "acme")).all() == []


def test_a_rate_limited_poll_waits_out_retry_after_and_the_job_goes_on(session: Session) -> None:
    _, version_id = make_dataset(session)
    with FineTuningServer(polls=2, rate_limit_first_poll=True) as server:
        server.connect(session)
        job = finetune.create_job(data=_ask(version_id), actor="cli", start=False)
        run_job(job.id)
    assert finetune.get_job(job_id=job.id).state == "succeeded"
    polls = [(at, status) for at, method, path, status in server.log if path.endswith("ftjob-1")]
    assert polls[0][1] == 429
    assert polls[1][0] - polls[0][0] >= 0.9  # Retry-After: 1 was honoured


def test_cancel_stops_the_worker_and_cancels_the_providers_job(session: Session) -> None:
    _, version_id = make_dataset(session)
    with FineTuningServer(polls=10_000) as server:
        server.connect(session)
        job = finetune.create_job(data=_ask(version_id), actor="cli", start=False)
        worker = threading.Thread(target=run_job, args=(job.id,))
        worker.start()
        while not server.polled:
            worker.join(0.05)
        finetune.cancel_job(job_id=job.id)
        worker.join(30)
    assert not worker.is_alive()
    assert server.cancelled
    done = finetune.get_job(job_id=job.id)
    assert done.state == "cancelled" and done.model is None


def test_a_resumed_worker_follows_the_same_provider_job(session: Session) -> None:
    _, version_id = make_dataset(session)
    with FineTuningServer(polls=2) as server:
        server.connect(session)
        job = finetune.create_job(data=_ask(version_id), actor="cli", start=False)
        update_params(job.id, remote_job_id="ftjob-1")  # as if a worker died after creating it
        run_job(job.id)
    assert server.files == {} and server.created == []  # nothing uploaded or created again
    assert finetune.get_job(job_id=job.id).state == "succeeded"


def test_checks_happen_before_anything_starts(session: Session) -> None:
    _, version_id = make_dataset(session)
    with FineTuningServer() as server:
        server.connect(session)
        with pytest.raises(DatasetError, match=r"no column 'reply'.*question, answer"):
            finetune.create_job(
                data=_ask(version_id, completion_column="reply"), actor="cli", start=False
            )
        with pytest.raises(ConflictError, match="cannot be fine-tuned"):
            finetune.create_job(
                data=_ask(version_id, base_model="builtin/all-minilm-l6-v2"),
                actor="cli",
                start=False,
            )
    assert finetune.list_jobs() == []
    assert server.log == []
