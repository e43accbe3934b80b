"""Compare with base: the job's validation rows, the base and the fine-tuned model, scored."""

from __future__ import annotations

import contextvars
import threading

import pytest
from sqlmodel import Session, select

from studio.core.errors import ConfigError, NotFoundError, PermissionDeniedError
from studio.core.identity import acting_as
from studio.services import finetune
from studio.services.comparison_summary import comparison_summary
from studio.services.datasets import get_version, load_rows
from studio.services.evaluations import evaluate_sync
from studio.services.finetune_compare import compare_with_base
from studio.services.finetune_records import load_split
from studio.services.finetune_worker import run_job
from studio.services.runs import run_sync
from studio.services.users import actor_for_user, create_user
from studio.store import session_scope
from studio.store.tables import Comparison, DatasetVersion, Job
from tests.services.finetune_fakes import FineTuningServer, make_dataset
from tests.services.test_finetune_openai import _ask, quick_polls  # noqa: F401  (autouse)

PASSWORD = "correct horse battery"


def test_compare_with_base_scores_both_models_on_the_validation_rows(session: Session) -> None:
    _, version_id = make_dataset(session)
    with FineTuningServer(polls=2) as server:
        server.connect(session)
        job = finetune.create_job(data=_ask(version_id), actor="ui", start=False)
        run_job(job.id)
        done = finetune.get_job(job_id=job.id)
        assert done.state == "succeeded" and done.model, done.error

        comparison, missing = compare_with_base(session=session, job_id=job.id, actor="ui")
        assert len(missing) == 2  # neither model has answered these rows yet
        labels = [c["label"] for c in comparison.contenders]
        assert labels == ["base: acme/base-mini", f"fine-tuned: {done.model}"]

        # the comparison's rows are exactly the job's validation rows, nothing it trained on
        session.expire_all()
        with session.no_autoflush:
            subset = get_version(session=session, version_id=comparison.dataset_version_id)
        assert subset.expected_column == "answer" and subset.row_count == 2
        job_row = session.get(Job, job.id)
        assert job_row is not None
        train, validation = load_split(job_row.params)
        compared = load_rows(session=session, version_id=subset.id or 0)
        assert [r["question"] for r in compared] == [e.prompt for e in validation]
        assert not {r["question"] for r in compared} & {e.prompt for e in train}

        for run_id in missing:
            run_sync(run_id=run_id)
        assert comparison.evaluation_id is not None
        evaluate_sync(evaluation_id=comparison.evaluation_id)
    summary = comparison_summary(session=session, comparison_id=comparison.id or 0)
    figures = {f["label"]: f for f in summary.contenders}
    assert figures[f"fine-tuned: {done.model}"]["passed"] == 2  # it learned the catalogue
    assert figures["base: acme/base-mini"]["passed"] == 0

    # asking again opens the same comparison, and makes no second copy of the rows
    versions = len(session.exec(select(DatasetVersion)).all())
    again, started = compare_with_base(session=session, job_id=job.id, actor="ui")
    assert (again.id, started) == (comparison.id, [])
    assert len(session.exec(select(DatasetVersion)).all()) == versions


def test_compare_with_base_needs_a_finished_model_and_the_apps_member(session: Session) -> None:
    _, version_id = make_dataset(session)
    with FineTuningServer(outcome="failed") as server:
        server.connect(session)
        job = finetune.create_job(data=_ask(version_id), actor="ui", start=False)
        run_job(job.id)
    assert finetune.get_job(job_id=job.id).state == "failed"
    with pytest.raises(ConfigError, match=r"has no model to compare yet \(failed\)"):
        compare_with_base(session=session, job_id=job.id, actor="ui")

    mia = create_user(session=session, name="mia", password=PASSWORD, role="member")
    rex = create_user(session=session, name="rex", password=PASSWORD, role="reviewer")
    session.commit()
    with acting_as(actor_for_user(mia)), pytest.raises(NotFoundError):
        compare_with_base(session=session, job_id=job.id, actor="ui")  # not her app
    with (
        acting_as(actor_for_user(rex)),
        pytest.raises(PermissionDeniedError, match="Only administrators or members"),
    ):
        compare_with_base(session=session, job_id=job.id, actor="ui")


def test_two_clicks_at_once_make_one_comparison(session: Session) -> None:
    """Compare with base pressed twice at the same moment (two tabs, two people): both get
    the same comparison, and one copy of the validation rows and of the runs."""
    _, version_id = make_dataset(session)
    with FineTuningServer(polls=2) as server:
        server.connect(session)
        job = finetune.create_job(data=_ask(version_id), actor="ui", start=False)
        run_job(job.id)
    versions_before = len(session.exec(select(DatasetVersion)).all())
    start = threading.Barrier(2)
    got: list[tuple[int, int]] = []
    failed: list[BaseException] = []

    def click() -> None:
        try:
            start.wait(10)
            with session_scope() as own:
                comparison, missing = compare_with_base(session=own, job_id=job.id, actor="ui")
                got.append((int(comparison.id or 0), len(missing)))
        except BaseException as exc:  # reported below, not lost in the thread
            failed.append(exc)

    threads = [threading.Thread(target=contextvars.copy_context().run, args=(click,))]
    threads.append(threading.Thread(target=contextvars.copy_context().run, args=(click,)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failed, failed
    assert len({comparison_id for comparison_id, _ in got}) == 1, got  # one comparison
    assert sorted(missing for _, missing in got) == [0, 2]  # its 2 runs started once
    session.expire_all()
    assert len(session.exec(select(Comparison)).all()) == 1
    assert len(session.exec(select(DatasetVersion)).all()) == versions_before + 1
