"""A run makes the calls at once that the user asked for; a connection's own limit,
only when set, caps it (and the user is told); latency is the model call alone.

Against a real local OpenAI-compatible server that answers after 200 ms and records
the most requests it had in flight at once.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlmodel import Session

from studio.core.templates import PromptTemplate
from studio.models.connections import ConnectionCreate, add_connection
from studio.services.apps import create_app
from studio.services.datasets import upload_dataset
from studio.services.runs import (
    RunConfig,
    concurrency_note,
    create_run,
    list_results,
    run_sync,
)
from tests.providers.fakes import FaultyOpenAIServer

StartServer = Callable[..., FaultyOpenAIServer]
DELAY_S = 0.2


def _start_run(
    session: Session,
    server: FaultyOpenAIServer,
    *,
    rows: int,
    concurrency: int,
    limit: int | None = None,
) -> int:
    options: dict[str, Any] = {} if limit is None else {"concurrency": limit}
    add_connection(
        session=session,
        data=ConnectionCreate(name="srv", kind="openai", base_url=server.url, options=options),
    )
    app = create_app(session=session, name="Marketing copy")
    assert app.id is not None
    csv = "event\n" + "".join(f"Event {i}\n" for i in range(rows))
    version = upload_dataset(
        session=session, app_id=app.id, name="events", data=csv.encode(), filename="events.csv"
    )
    assert version.id is not None
    config = RunConfig(
        model="srv/fake-chat",
        prompt=PromptTemplate(kind="completion", template="Email about {{event}}"),
        concurrency=concurrency,
        use_cache=False,
    )
    run = create_run(session=session, app_id=app.id, dataset_version_id=version.id, config=config)
    session.commit()
    assert run.id is not None
    return run.id


def test_a_run_at_concurrency_32_makes_32_calls_at_once(
    session: Session, faulty_server: StartServer
) -> None:
    server = faulty_server(latency_s=DELAY_S)
    run_id = _start_run(session, server, rows=96, concurrency=32)
    progress = run_sync(run_id=run_id)
    assert (progress.done, progress.errors) == (96, 0)
    assert server.peak_in_flight == 32
    assert concurrency_note(session=session, model="srv/fake-chat", concurrency=32) is None


def test_a_connection_limit_caps_the_run_says_so_and_queueing_is_not_latency(
    session: Session, faulty_server: StartServer
) -> None:
    server = faulty_server(latency_s=DELAY_S)
    run_id = _start_run(session, server, rows=24, concurrency=32, limit=4)
    progress = run_sync(run_id=run_id)
    assert (progress.done, progress.errors) == (24, 0)
    assert server.peak_in_flight <= 4
    latencies = [r.latency_ms or 0.0 for r in list_results(session=session, run_id=run_id)]
    # 24 rows through 4 slots queue for up to ~1 s; each call itself takes ~200 ms.
    assert statistics.median(latencies) < 2 * DELAY_S * 1000
    assert max(latencies) < 2 * DELAY_S * 1000
    note = concurrency_note(session=session, model="srv/fake-chat", concurrency=32)
    assert note is not None and "at most 4" in note and "32" in note
    assert concurrency_note(session=session, model="srv/fake-chat", concurrency=4) is None


def _cli_run(cli: Any, tmp_path: Path, url: str, *limit: str) -> Any:
    added = cli("provider", "add", "srv", "--kind", "openai", "--base-url", url, *limit)
    assert added.code == 0, added.err
    assert cli("app", "create", "Marketing").code == 0
    data = tmp_path / "events.csv"
    data.write_text("event\n" + "".join(f"Event {i}\n" for i in range(8)))
    made = cli(
        "variant", "create", "--app", "Marketing", "--name", "plain", "--model", "srv/fake-chat",
        "--prompt", "Email about {{event}}",
    )  # fmt: skip
    assert made.code == 0, made.err
    result = cli(
        "run", "--app", "Marketing", "--variant", "plain", "--dataset", str(data),
        "--concurrency", "32", "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert result.json()["errors"] == 0
    return result


def test_studio_run_says_when_the_connection_limit_caps_concurrency(
    cli: Any, tmp_path: Path, faulty_server: StartServer
) -> None:
    server = faulty_server(latency_s=0.01)
    result = _cli_run(cli, tmp_path, server.url, "--concurrency", "4")
    assert "Connection 'srv' allows at most 4 calls at a time" in result.err
    assert "not 32" in result.err


def test_studio_run_says_nothing_when_the_connection_sets_no_limit(
    cli: Any, tmp_path: Path, faulty_server: StartServer
) -> None:
    server = faulty_server(latency_s=0.01)
    result = _cli_run(cli, tmp_path, server.url)
    assert "allows at most" not in result.err
