"""On PostgreSQL an evaluation is executed by `studio worker` processes; killing the worker
in the middle hands it to another, which scores only what is missing."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlmodel import Session

from studio.models.connections import ConnectionCreate, add_connection
from studio.services.evaluations import EvaluatorConfig
from studio.services.jobs import enqueue_evaluation, wait_job
from tests.providers.fakes import FaultyOpenAIServer
from tests.services.test_evaluation_jobs import ROWS, _count, _evaluation
from tests.services.test_jobs_workers import _running_worker_pid, queue_env, workers

__all__ = ["queue_env", "workers"]  # fixtures used below

pytestmark = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="workers share jobs through PostgreSQL",
)


def test_a_killed_workers_evaluation_is_finished_by_another_scoring_each_output_once(
    session: Session,
    mock_provider: Any,
    faulty_server: Callable[..., FaultyOpenAIServer],
    workers: Callable[[int], list[subprocess.Popen[bytes]]],
) -> None:
    judge = faulty_server(latency_s=0.1)
    add_connection(
        session=session, data=ConnectionCreate(name="judge", kind="openai", base_url=judge.url)
    )
    evaluation_id = _evaluation(
        session,
        [
            EvaluatorConfig(
                id="llm_judge", options={"rubric": "{{grade}}", "model": "judge/fake-chat"}
            )
        ],
    )
    workers(2)
    job = enqueue_evaluation(evaluation_id=evaluation_id, actor="cli", concurrency=2)
    assert job.executor == "queue"
    deadline = time.monotonic() + 60
    pid = None
    while _count(evaluation_id) < 6 or pid is None:
        assert time.monotonic() < deadline, "no worker scored anything"
        pid = _running_worker_pid(job.id)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    finished = wait_job(job_id=job.id, timeout=90)
    assert finished.state == "succeeded", finished.error
    assert _count(evaluation_id) == ROWS == finished.done
    assert sum(judge.asked.values()) <= ROWS + 4  # at most the calls in flight at the kill
