"""Killing a run's process with SIGKILL and resuming it answers every row exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from sqlmodel import Session, func, select

from studio.core.templates import PromptTemplate
from studio.models.connections import ConnectionCreate, add_connection
from studio.services.apps import create_app
from studio.services.datasets import upload_dataset
from studio.services.runs import RunConfig, create_run, list_results, run_sync
from studio.store import session_scope
from studio.store.tables import RunResult
from tests.providers.fakes import FaultyOpenAIServer, answer_for
from tests.services.kill import kill_mid_work

ROWS = 200
# The child acts as a job worker would (an unset actor may do nothing).
CHILD = (
    "import sys; from studio.core.identity import WORKER, set_actor; set_actor(WORKER); "
    "from studio.services.runs import run_sync; run_sync(run_id=int(sys.argv[1]))"
)


def _prompt(i: int) -> str:
    return f"Write about topic {i}"


def _persisted(run_id: int) -> set[int]:
    with session_scope() as session:
        rows = session.exec(select(RunResult.row_index).where(RunResult.run_id == run_id)).all()
    return set(rows)


def _count(run_id: int) -> int:
    with session_scope() as session:
        return int(
            session.exec(select(func.count()).where(RunResult.run_id == run_id)).one()  # type: ignore[arg-type]
        )


def test_sigkill_mid_run_then_resume_gives_one_result_per_row(
    session: Session,
    faulty_server: Callable[..., FaultyOpenAIServer],
    studio_env: Path,
) -> None:
    server = faulty_server(latency_s=0.05)
    add_connection(
        session=session,
        data=ConnectionCreate(
            name="slow", kind="openai", base_url=server.url, options={"concurrency": 8}
        ),
    )
    app = create_app(session=session, name="Kill me")
    assert app.id is not None
    csv = "topic\n" + "".join(f"topic {i}\n" for i in range(ROWS))
    version = upload_dataset(
        session=session, app_id=app.id, name="topics", data=csv.encode(), filename="t.csv"
    )
    assert version.id is not None
    config = RunConfig(
        model="slow/fake-chat",
        prompt=PromptTemplate(kind="completion", template="Write about {{topic}}"),
        concurrency=8,
        use_cache=False,
    )
    run = create_run(session=session, app_id=app.id, dataset_version_id=version.id, config=config)
    session.commit()
    assert run.id is not None
    run_id = run.id

    # The child process uses the same STUDIO_HOME (inherited environment), so the same DB.
    assert os.environ["STUDIO_HOME"] == str(studio_env)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(run_id)],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    kill_mid_work(child, lambda: _count(run_id) >= 40, what="run", timeout_s=60)

    before = _persisted(run_id)
    assert 40 <= len(before) < ROWS, "the kill must land mid-run"
    server.reset_counts()

    progress = run_sync(run_id=run_id)  # resume in this process

    assert (progress.status, progress.done, progress.errors) == ("done", ROWS, 0)
    session.expire_all()
    results = list_results(session=session, run_id=run_id)
    assert [r.row_index for r in results] == list(range(ROWS))  # exactly one result per row
    assert all(r.output == answer_for(_prompt(r.row_index)) for r in results)
    # Rows finished before the kill were not asked again; each missing row was asked once.
    missing = set(range(ROWS)) - before
    assert server.asked == {_prompt(i): 1 for i in missing}
