"""The run engine against a real OpenAI-compatible server that misbehaves.

The server (:class:`FaultyOpenAIServer`) answers each prompt with a reply that
names it, so every result can be checked against its own row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlmodel import Session, func, select

from studio.core.settings import reset_settings
from studio.core.templates import PromptTemplate
from studio.models.connections import ConnectionCreate, add_connection, clear_provider_cache
from studio.services.apps import create_app
from studio.services.datasets import upload_dataset
from studio.services.runs import RunConfig, create_run, list_results, retry_failed, run_sync
from studio.store.tables import ModelCall
from tests.providers.fakes import FAULTS, FaultyOpenAIServer, answer_for

StartServer = Callable[..., FaultyOpenAIServer]


def _prompt(i: int) -> str:
    return f"Email about Event {i} for group {i % 7}"


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short timeouts and many quick retries, as an operator would set them in the env."""
    monkeypatch.setenv("STUDIO_REQUEST_TIMEOUT", "1.0")
    monkeypatch.setenv("STUDIO_MAX_RETRIES", "12")
    monkeypatch.setenv("STUDIO_RETRY_BASE_DELAY", "0.005")
    monkeypatch.setenv("STUDIO_RETRY_MAX_DELAY", "0.05")
    reset_settings()
    clear_provider_cache()


def _start_run(
    session: Session, server: FaultyOpenAIServer, rows: int, concurrency: int = 32
) -> int:
    add_connection(
        session=session,
        data=ConnectionCreate(
            name="flaky", kind="openai", base_url=server.url, options={"concurrency": concurrency}
        ),
    )
    app = create_app(session=session, name="Marketing copy")
    assert app.id is not None
    csv = "event,demographic\n" + "".join(f"Event {i},group {i % 7}\n" for i in range(rows))
    version = upload_dataset(
        session=session, app_id=app.id, name="events", data=csv.encode(), filename="events.csv"
    )
    config = RunConfig(
        model="flaky/fake-chat",
        prompt=PromptTemplate(
            kind="completion", template="Email about {{event}} for {{demographic}}"
        ),
        parameters={"max_tokens": 30},
        concurrency=concurrency,
        use_cache=False,
    )
    assert version.id is not None
    run = create_run(session=session, app_id=app.id, dataset_version_id=version.id, config=config)
    session.commit()
    assert run.id is not None
    return run.id


def test_a_third_of_calls_failing_still_answers_every_row_once(
    session: Session, faulty_server: StartServer, fast_retries: None
) -> None:
    server = faulty_server(fault_rate=1 / 3, latency_s=0.005, slow_s=1.3, retry_after="0.05")
    run_id = _start_run(session, server, rows=1000)

    progress = run_sync(run_id=run_id)

    assert (progress.status, progress.done, progress.errors) == ("done", 1000, 0)
    results = list_results(session=session, run_id=run_id)
    assert [r.row_index for r in results] == list(range(1000))
    for r in results:
        assert r.error is None
        assert r.rendered_prompt == _prompt(r.row_index)
        assert r.output == answer_for(_prompt(r.row_index))
    # The faults really happened, every kind of them, on about a third of the calls.
    assert set(server.injected) == set(FAULTS)
    faults = sum(server.injected.values())
    assert 0.25 < faults / server.calls < 0.42
    # The provider answered each prompt successfully exactly once: no row was asked twice
    # once it had an answer.
    assert set(server.answered) == {_prompt(i) for i in range(1000)}
    assert set(server.answered.values()) == {1}
    # Usage holds one successful call per row (retries are inside a call).
    ok_calls = session.exec(
        select(func.count()).where(ModelCall.source == "run", ModelCall.error.is_(None))  # type: ignore[union-attr]
    ).one()
    assert ok_calls == 1000


def test_a_permanently_failing_provider_leaves_clear_row_errors_that_retry_answers(
    session: Session, faulty_server: StartServer, fast_retries: None, monkeypatch: Any
) -> None:
    monkeypatch.setenv("STUDIO_MAX_RETRIES", "2")
    reset_settings()
    clear_provider_cache()
    doomed = {_prompt(i) for i in range(0, 30, 3)}
    server = faulty_server(always_fail=lambda prompt: prompt in doomed)
    run_id = _start_run(session, server, rows=30, concurrency=4)

    first = run_sync(run_id=run_id)

    assert (first.status, first.done, first.errors) == ("done", 30, 10)
    results = list_results(session=session, run_id=run_id)
    failed = {r.row_index: r.error for r in results if r.error}
    assert sorted(failed) == list(range(0, 30, 3))
    for error in failed.values():
        assert error is not None
        assert "flaky" in error and "503" in error
        assert "Traceback" not in error and "{" not in error
    assert all(server.asked[p] == 3 for p in doomed)  # the first try and two retries

    server.always_fail = None  # the provider recovers
    server.reset_counts()
    assert retry_failed(session=session, run_id=run_id) == 10
    session.commit()
    second = run_sync(run_id=run_id)

    assert (second.status, second.done, second.errors) == ("done", 30, 0)
    assert server.asked == dict.fromkeys(doomed, 1)  # only the failed rows were asked again
    session.expire_all()
    results = list_results(session=session, run_id=run_id)
    assert [r.row_index for r in results] == list(range(30))
    assert all(r.output == answer_for(_prompt(r.row_index)) for r in results)
