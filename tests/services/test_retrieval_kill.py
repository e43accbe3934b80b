"""Killing a retrieving run's process with SIGKILL and resuming it: every row answered
once, with the chunks it used, and no finished row searched or asked again."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import Session

from studio.core.templates import PromptTemplate
from studio.models.connections import ConnectionCreate, add_connection
from studio.services.datasets import upload_dataset
from studio.services.retrieval_spec import RetrievalSpec
from studio.services.runs import RunConfig, create_run, list_results, run_sync
from tests.providers.fakes import FaultyOpenAIServer
from tests.services.kill import kill_mid_work
from tests.services.retrieval_setup import handbook, help_app
from tests.services.test_run_kill import CHILD, _count, _persisted

ROWS = 120


@pytest.mark.builtin_models
def test_sigkill_mid_retrieving_run_then_resume_answers_each_row_once(
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
    app_id = help_app(session)
    kb_id = handbook(session, app_id, model="builtin/all-minilm-l6-v2")
    words = ["price", "refund", "data", "backup", "phone", "plan"]
    csv = "question\n" + "".join(f"{words[i % 6]} question {i}\n" for i in range(ROWS))
    version = upload_dataset(
        session=session, app_id=app_id, name="q", data=csv.encode(), filename="q.csv"
    )
    assert version.id is not None
    config = RunConfig(
        model="slow/fake-chat",
        prompt=PromptTemplate.completion("Notes: {{context}} Q: {{question}}"),
        concurrency=8,
        use_cache=False,
        retrieval=RetrievalSpec(kb_id=kb_id, top_k=1),
    )
    run = create_run(session=session, app_id=app_id, dataset_version_id=version.id, config=config)
    session.commit()
    assert run.id is not None
    run_id = run.id

    assert os.environ["STUDIO_HOME"] == str(studio_env)  # the child shares the database
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(run_id)],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    kill_mid_work(child, lambda: _count(run_id) >= 30, what="run", timeout_s=120)
    before = _persisted(run_id)
    assert 30 <= len(before) < ROWS, "the kill must land mid-run"
    server.reset_counts()

    progress = run_sync(run_id=run_id)

    assert (progress.status, progress.done, progress.errors) == ("done", ROWS, 0)
    session.expire_all()
    results = list_results(session=session, run_id=run_id)
    assert [r.row_index for r in results] == list(range(ROWS))
    assert all(r.retrieval and len(r.retrieval["chunks"]) == 1 for r in results)
    missing = {r.rendered_prompt for r in results if r.row_index not in before}
    assert dict(server.asked) == {p: 1 for p in missing}  # only the missing rows, once each
