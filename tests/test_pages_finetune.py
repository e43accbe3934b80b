"""The Fine-tuning page, driven with AppTest: empty states, a refused dataset shown as a
sentence with no job started, a running job's steps, loss curve and Cancel, and a job
started from the form."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from studio.core.schemas import ModelType
from studio.models import registry
from studio.models.specs import ModelCreate
from studio.services import finetune
from studio.services.apps import create_app
from studio.services.comparisons import list_comparisons
from studio.services.finetune import FineTuneCreate
from studio.services.finetune_records import claim, record_metric
from tests.services.finetune_fakes import FineTuningServer, make_dataset

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "finetuning.py")


def _open() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def server(session: Session) -> Iterator[FineTuningServer]:
    with FineTuningServer(polls=2) as fake:
        fake.connect(session)
        registry.create_model(
            session=session,
            data=ModelCreate(
                name="acme-mini", model_type=ModelType.CHAT_COMPLETION, connection="acme",
                provider_model="base-mini",
            ),
        )  # fmt: skip
        session.commit()
        yield fake


def test_without_apps_or_datasets_the_page_says_what_to_do(session: Session) -> None:
    at = _open()
    assert any("No apps yet" in i.value for i in at.info)
    create_app(session=session, name="Empty")
    session.commit()
    at = _open()
    assert any("no datasets yet" in i.value for i in at.info)
    assert any("No fine-tuning jobs in this app yet" in i.value for i in at.info)


def test_a_dataset_the_job_cannot_learn_from_is_refused_with_a_sentence(
    session: Session, server: FineTuningServer
) -> None:
    make_dataset(session)
    at = _open()
    at.selectbox(key="ft_base").select("acme-mini")
    at.selectbox(key="ft_prompt").select("answer")
    at.selectbox(key="ft_completion").select("answer").run()
    at.button(key="ft_start").click().run()
    assert not at.exception
    assert any("are both column 'answer'" in e.value for e in at.error)
    assert finetune.list_jobs() == []


def test_start_from_the_form_runs_the_job_in_a_worker(
    session: Session, server: FineTuningServer
) -> None:
    make_dataset(session)
    at = _open()
    at.selectbox(key="ft_base").select("acme-mini").run()
    at.button(key="ft_start").click().run()
    assert not at.exception
    assert any("Fine-tuning job 1 started: 7 training rows" in s.value for s in at.success)
    done = finetune.wait_job(job_id=1, timeout=120)
    assert done.state == "succeeded", done.error


def test_a_running_job_shows_its_steps_loss_curve_and_cancel(
    session: Session, server: FineTuningServer
) -> None:
    _, version_id = make_dataset(session)
    ask = FineTuneCreate(
        base_model="acme-mini", dataset_version_id=version_id, prompt_column="question",
        completion_column="answer",
    )  # fmt: skip
    job = finetune.create_job(data=ask, actor="ui", start=False)
    assert claim(job.id) is not None
    from studio.services.finetune_records import update_params

    update_params(job.id, total_steps=6)
    record_metric(job.id, step=1, epoch=0.5, train_loss=2.5)
    record_metric(job.id, step=2, epoch=1.0, train_loss=2.0, val_loss=2.2)
    at = _open()
    text = at.get("progress")[0].proto.text
    assert "step 2 of 6" in text and "training loss 2.000" in text
    assert "validation loss 2.200" in text
    assert len(at.get("plotly_chart")) == 1
    at.button(key=f"ft_cancel_{job.id}").click().run()
    assert not at.exception
    assert finetune.get_job(job_id=job.id).cancel_requested


def test_compare_with_base_opens_the_comparison_on_the_compare_page(
    session: Session, server: FineTuningServer
) -> None:
    from studio.services.finetune_worker import run_job

    _, version_id = make_dataset(session)
    ask = FineTuneCreate(
        base_model="acme-mini", dataset_version_id=version_id, prompt_column="question",
        completion_column="answer", validation_share=0.25,
    )  # fmt: skip
    job = finetune.create_job(data=ask, actor="ui", start=False)
    run_job(job.id)
    assert finetune.get_job(job_id=job.id).state == "succeeded"
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.switch_page("pages/finetuning.py").run()
    assert not at.exception
    compare = at.button(key=f"ft_compare_{job.id}")
    assert compare.label == "Compare with base"
    assert any("both models answer the 2 validation rows" in m.value for m in at.markdown)
    compare.click().run()
    assert not at.exception, [e.value for e in at.exception]
    # the Compare page, with the new comparison selected: base against the fine-tuned model
    assert not at.error, [e.value for e in at.error]
    session.rollback()  # a new transaction sees what the page wrote
    [comparison] = list_comparisons(session=session, app_id=job.app_id or 0)
    assert at.session_state["cmp_selected"] == comparison.id
    assert at.selectbox(key="cmp_selected").value == comparison.id
    assert [t.value for t in at.title] == ["Compare"]
    assert [c["label"] for c in comparison.contenders] == [
        "base: acme-mini",
        f"fine-tuned: {finetune.get_job(job_id=job.id).model}",
    ]
