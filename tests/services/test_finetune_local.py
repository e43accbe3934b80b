"""Local LoRA fine-tuning of the built-in SmolLM2 in a worker process: losses per step,
SIGKILL then resume from the last checkpoint, the model registered and callable, and a
format the base model does not use learned from the sample dataset."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from studio.core.templates import PromptTemplate
from studio.models import registry
from studio.services import endpoints, finetune
from studio.services.apps import create_app
from studio.services.datasets import upload_dataset
from studio.services.finetune import FineTuneCreate
from studio.services.finetune_worker import run_job
from studio.services.variants import VariantConfig, create_variant
from studio.store import session_scope
from studio.store.tables import FineTunedModel, Job, Model, ModelGroup, utcnow
from tests.services.finetune_fakes import make_dataset

pytestmark = pytest.mark.builtin_models

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "capitals_format.csv"
BASE = "builtin/smollm2-135m-instruct"
# countries the sample dataset does not name: the model has never seen these questions
HELD_OUT = ["Netherlands", "Croatia", "Iceland", "Pakistan", "Ghana", "Bolivia"]


@pytest.fixture(scope="session")
def base_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One converted base model for the whole session (converting it takes a minute)."""
    return tmp_path_factory.mktemp("finetune-base")


@pytest.fixture(autouse=True)
def shared_base(studio_env: Path, base_cache: Path) -> Iterator[None]:
    (studio_env / "finetune").mkdir(parents=True, exist_ok=True)
    (studio_env / "finetune" / "base").symlink_to(base_cache, target_is_directory=True)
    yield


def _wait_for(check: object, timeout: float = 900.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the worker made no progress"
        time.sleep(0.5)


def test_sigkill_then_resume_finishes_from_the_last_checkpoint(session: Session) -> None:
    app_id, version_id = make_dataset(session)
    ask = FineTuneCreate(
        base_model="builtin/smollm2-135m-instruct",
        dataset_version_id=version_id,
        prompt_column="question",
        completion_column="answer",
        validation_share=0.25,
        epochs=2,
        batch_size=2,
        lora_rank=4,
        learning_rate=1e-3,
        checkpoint_every=1,
    )
    job = finetune.create_job(data=ask, actor="cli")
    assert (job.train_rows, job.validation_rows, job.total_steps) == (6, 2, 6)
    _wait_for(lambda: len(finetune.job_metrics(job_id=job.id)) >= 2)
    with session_scope() as s:
        row = s.get(Job, job.id)
        assert row is not None
        pid = int(row.params["worker_pid"])
    os.kill(pid, signal.SIGKILL)
    _wait_for(lambda: not _alive(pid), timeout=30)
    kept = len(finetune.job_metrics(job_id=job.id))
    with session_scope() as s:  # as if the worker had been gone for a while
        row = s.get(Job, job.id)
        assert row is not None and row.state == "running"
        row.heartbeat_at = utcnow() - timedelta(hours=1)
        s.add(row)
    assert finetune.get_job(job_id=job.id).stalled
    finetune.resume_job(job_id=job.id)
    done = finetune.wait_job(job_id=job.id, timeout=900)
    assert done.state == "succeeded", done.error
    logs = [line.message for line in finetune.job_logs(job_id=job.id)]
    assert any(m.startswith(f"Resuming after step {kept}") for m in logs), logs
    metrics = finetune.job_metrics(job_id=job.id)
    assert [m.step for m in metrics] == [1, 2, 3, 4, 5, 6]
    assert metrics[-1].val_loss is not None and metrics[2].val_loss is not None
    assert metrics[-1].val_loss < metrics[2].val_loss  # it learned from the examples
    # registered in the base's group, with its lineage, and callable like any model
    session.expire_all()
    model = session.exec(select(Model).where(Model.name == done.model)).one()
    group = session.get(ModelGroup, model.model_group_id)
    assert group is not None and group.name == "builtin/smollm2-135m-instruct"
    lineage = session.exec(select(FineTunedModel).where(FineTunedModel.job_id == job.id)).one()
    assert lineage.final_val_loss == pytest.approx(metrics[-1].val_loss)
    assert Path(lineage.artifact or "", "adapter.gguf").is_file()
    answer = registry.execute(
        session=session,
        ref=model.name,
        payload={"messages": [{"role": "user", "content": "What is product ZX-101?"}],
                 "max_tokens": 8, "temperature": 0},
    )  # fmt: skip
    assert answer.model_dump()["message"]["content"]
    deployment = registry.resolve_model(session=session, ref=model.name).deployment
    assert deployment is not None and deployment.status == "READY"
    # and it deploys like any model: a variant on it, pinned to an endpoint
    prompt = PromptTemplate.chat([{"role": "user", "content": "{{question}}"}])
    create_variant(
        session=session, app_id=app_id, name="tuned",
        config=VariantConfig(model=model.name, prompt=prompt),
    )  # fmt: skip
    endpoint = endpoints.deploy(session=session, app=app_id, variant="tuned")
    assert endpoint.active and endpoint.model == model.name


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a killed child of this process stays a zombie until reaped
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return False


def _ask(session: Session, model: str, country: str) -> str:
    answer = registry.execute(
        session=session,
        ref=model,
        payload={"messages": [{"role": "user", "content": f"What is the capital of {country}?"}],
                 "max_tokens": 12, "temperature": 0},
    )  # fmt: skip
    return str(answer.model_dump()["message"]["content"] or "").strip()


def test_the_sample_job_learns_a_format_the_base_model_does_not_use(session: Session) -> None:
    """data/capitals_format.csv answers "CAPITAL: PARIS"; with the form's defaults the new
    model answers held-out questions that way and the base model does not."""
    app = create_app(session=session, name="Geography")
    assert app.id is not None
    version = upload_dataset(
        session=session, app_id=app.id, name="capitals", data=SAMPLE.read_bytes(),
        filename=SAMPLE.name,
    )  # fmt: skip
    session.commit()
    assert version.id is not None
    ask = FineTuneCreate(  # the defaults a person gets from the form
        base_model=BASE, dataset_version_id=version.id, prompt_column="question",
        completion_column="answer",
    )  # fmt: skip
    job = finetune.create_job(data=ask, actor="cli", start=False)
    run_job(job.id)  # what the worker process runs
    done = finetune.get_job(job_id=job.id)
    assert done.state == "succeeded" and done.model, done.error
    metrics = finetune.job_metrics(job_id=job.id)
    assert metrics[-1].train_loss is not None and metrics[0].train_loss is not None
    assert metrics[-1].train_loss < metrics[0].train_loss / 2  # the loss falls

    tuned = [_ask(session, done.model, country) for country in HELD_OUT]
    base = [_ask(session, BASE, country) for country in HELD_OUT]
    in_format = [a for a in tuned if a.startswith("CAPITAL: ")]
    assert len(in_format) >= 5, tuned
    assert not [a for a in base if a.startswith("CAPITAL:")], base
