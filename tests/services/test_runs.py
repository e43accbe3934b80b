"""The run engine: every row answered once, resumable, cancellable, cached."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlmodel import Session, select

from studio.core.errors import ProviderUnavailableError, StudioError
from studio.core.templates import PromptTemplate
from studio.services.apps import create_app
from studio.services.datasets import upload_dataset
from studio.services.runs import (
    RunConfig,
    RunProgress,
    create_run,
    list_results,
    retry_failed,
    run_sync,
)
from studio.store.tables import RunResult

CSV = "event,demographic\n" + "".join(f"Event {i},group {i % 3}\n" for i in range(30))


def _setup(session: Session, csv: str = CSV) -> tuple[int, int]:
    app = create_app(session=session, name="Marketing copy")
    assert app.id is not None
    version = upload_dataset(
        session=session, app_id=app.id, name="events", data=csv.encode(), filename="events.csv"
    )
    session.commit()
    assert version.id is not None
    return app.id, version.id


def _config(**kw: Any) -> RunConfig:
    base: dict[str, Any] = {
        "model": "mock/echo",
        "prompt": PromptTemplate(
            kind="completion", template="Email about {{event}} for {{demographic}}"
        ),
        "parameters": {"max_tokens": 20},
        "concurrency": 4,
    }
    base.update(kw)
    return RunConfig(**base)


def _run(session: Session, config: RunConfig) -> int:
    app_id, version_id = _setup(session)
    run = create_run(session=session, app_id=app_id, dataset_version_id=version_id, config=config)
    session.commit()
    assert run.id is not None
    return run.id


def test_every_row_gets_one_rendered_answer(session: Session, mock_provider: Any) -> None:
    run_id = _run(session, _config())
    seen: list[RunProgress] = []
    progress = run_sync(run_id=run_id, on_progress=lambda p: seen.append(p.model_copy()))
    assert (progress.status, progress.done, progress.errors) == ("done", 30, 0)
    results = list_results(session=session, run_id=run_id)
    assert [r.row_index for r in results] == list(range(30))
    assert results[7].rendered_prompt == "Email about Event 7 for group 1"
    assert results[7].output == "echo: Email about Event 7 for group 1"
    assert seen and seen[-1].done == 30 and seen[0].done <= seen[-1].done


def test_template_naming_a_missing_column_is_refused_up_front(
    session: Session, mock_provider: Any
) -> None:
    app_id, version_id = _setup(session)
    bad = _config(prompt=PromptTemplate(kind="completion", template="About {{size}}"))
    with pytest.raises(StudioError, match="size"):
        create_run(session=session, app_id=app_id, dataset_version_id=version_id, config=bad)


def test_failures_are_kept_per_row_and_can_be_retried(session: Session, mock_provider: Any) -> None:
    run_id = _run(session, _config(concurrency=1))
    for _ in range(3):
        mock_provider.replies.append(ProviderUnavailableError("HTTP 503", provider="mock"))
    first = run_sync(run_id=run_id)
    assert (first.done, first.errors) == (30, 3)
    assert retry_failed(session=session, run_id=run_id) == 3
    session.commit()
    second = run_sync(run_id=run_id)
    assert second.errors == 0 and second.done == 30
    results = list_results(session=session, run_id=run_id)
    assert len(results) == 30 and all(r.error is None for r in results)


def test_resume_answers_only_missing_rows(session: Session, mock_provider: Any) -> None:
    run_id = _run(session, _config(use_cache=False))
    for i in range(0, 30, 2):  # half the rows were answered before a crash
        session.add(RunResult(run_id=run_id, row_index=i, output="from before"))
    session.commit()
    progress = run_sync(run_id=run_id)
    assert progress.done == 30
    assert len(mock_provider.calls) == 15
    results = list_results(session=session, run_id=run_id)
    assert len(results) == 30
    assert {r.output for r in results if r.row_index % 2 == 0} == {"from before"}


def test_cancel_keeps_finished_rows_and_resume_completes(
    session: Session, mock_provider: Any
) -> None:
    run_id = _run(session, _config(concurrency=1))
    cancel = threading.Event()

    def stop_after_five(p: RunProgress) -> None:
        if p.done >= 5:
            cancel.set()

    progress = run_sync(run_id=run_id, on_progress=stop_after_five, cancel=cancel)
    assert progress.status == "cancelled"
    kept = len(list_results(session=session, run_id=run_id))
    assert 5 <= kept < 30
    final = run_sync(run_id=run_id)
    assert final.status == "done"
    rows = session.exec(select(RunResult.row_index).where(RunResult.run_id == run_id)).all()
    assert sorted(rows) == list(range(30))


def test_identical_calls_come_from_the_cache_unless_fresh_samples(
    session: Session, mock_provider: Any
) -> None:
    csv = "event,demographic\n" + "same,same\n" * 5
    app_id, version_id = _setup(session, csv)
    run = create_run(
        session=session, app_id=app_id, dataset_version_id=version_id, config=_config()
    )
    session.commit()
    assert run.id is not None
    progress = run_sync(run_id=run.id)
    assert progress.done == 5 and len(mock_provider.calls) <= 4 + 1
    calls_before = len(mock_provider.calls)
    again = create_run(
        session=session, app_id=app_id, dataset_version_id=version_id, config=_config()
    )
    session.commit()
    assert again.id is not None
    cached = run_sync(run_id=again.id)
    assert cached.cached == 5 and len(mock_provider.calls) == calls_before
    fresh = create_run(
        session=session,
        app_id=app_id,
        dataset_version_id=version_id,
        config=_config(use_cache=False, samples=2),
    )
    session.commit()
    assert fresh.id is not None
    sampled = run_sync(run_id=fresh.id)
    assert sampled.total == 10 and sampled.cached == 0
    assert len(mock_provider.calls) == calls_before + 10
