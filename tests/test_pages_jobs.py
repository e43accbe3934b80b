"""The Jobs page, driven with AppTest: the empty state, a running job with who started it
and its progress from the database, Cancel, and finished jobs on request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamlit.testing.v1 import AppTest

from studio.core.templates import PromptTemplate
from studio.services.apps import create_app
from studio.services.datasets import upload_dataset
from studio.services.runs import RunConfig, create_run
from studio.store import session_scope
from studio.store.tables import Job, JobPart, RunResult, utcnow

ROOT = Path(__file__).resolve().parent.parent
JOBS = str(ROOT / "pages" / "jobs.py")


def _open() -> AppTest:
    at = AppTest.from_file(JOBS, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _job_on_a_worker(state: str = "running") -> int:
    """A 4-row run whose job a worker executes: 3 rows saved, one part still running."""
    with session_scope() as session:
        app = create_app(session=session, name="Marketing copy")
        assert app.id is not None
        version = upload_dataset(
            session=session, app_id=app.id, name="events",
            data=b"event\nA\nB\nC\nD\n", filename="events.csv",
        )  # fmt: skip
        assert version.id is not None
        config = RunConfig(
            model="mock/echo", prompt=PromptTemplate(kind="completion", template="{{event}}")
        )
        run = create_run(
            session=session, app_id=app.id, dataset_version_id=version.id, config=config
        )
        assert run.id is not None
        for i in range(3):
            session.add(RunResult(run_id=run.id, row_index=i, output=f"answer {i}"))
        job = Job(
            kind="run", subject_id=run.id, app_id=app.id, actor="gateway key sk-ab12",
            state=state, executor="queue", total=4, parts=1, started_at=utcnow(),
            heartbeat_at=utcnow(), finished_at=None if state == "running" else utcnow(),
        )  # fmt: skip
        session.add(job)
        session.flush()
        assert job.id is not None
        part_state = "running" if state == "running" else "done"
        session.add(JobPart(job_id=job.id, index=0, start=0, stop=4, state=part_state))
        return job.id


def test_without_jobs_the_page_says_how_to_start_one() -> None:
    at = _open()
    assert any("Press Generate in the Playground" in i.value for i in at.info)


def test_a_running_job_shows_who_started_it_its_rows_and_cancel_stops_it(
    mock_provider: Any,
) -> None:
    job_id = _job_on_a_worker()
    at = _open()
    text = " ".join(m.value for m in at.markdown)
    assert f"Job {job_id}" in text and "gateway key sk-ab12" in text
    assert "studio workers" in text
    assert "3 of 4 rows" in at.get("progress")[0].proto.text  # counted from the database

    at.button(key=f"jobs_cancel_{job_id}").click().run()

    assert not at.exception
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.cancel_requested  # every worker reads this flag
    assert at.button(key=f"jobs_cancel_{job_id}").label == "Cancelling…"


def test_finished_jobs_show_only_when_asked(mock_provider: Any) -> None:
    job_id = _job_on_a_worker(state="succeeded")
    at = _open()
    assert any("Nothing is running or queued" in i.value for i in at.info)
    at.toggle(key="jobs_finished").set_value(True).run()
    assert f"Job {job_id}" in " ".join(m.value for m in at.markdown)
