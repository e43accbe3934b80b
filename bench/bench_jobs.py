"""Throughput of one run shared by 1, 2 and 4 `studio worker` processes on PostgreSQL.

    python -m bench.bench_jobs                 # 5,000 rows at 200 ms, an aligned table
    python -m bench.bench_jobs --rows 2000     # a quicker pass
    python -m bench.bench_jobs --json          # the same figures as JSON

For each worker count N, a fresh PostgreSQL database, N worker processes
(``--concurrency 2`` parts each) and one run of ``--rows`` rows asking for 32 x N
calls at a time (so 2 x N lanes of 16 calls) against a local fake
OpenAI-compatible server answering every call after 200 ms. Ideal throughput is
the total concurrency / latency = 160 x N rows/s; efficiency is measured / ideal.
The 1-worker run is the baseline of the speed-up column. Also measured: how long
a Cancel from this process takes to stop a run that 2 workers execute (target:
2 s). The fake server runs in this process and shares the machine's CPUs with
the workers, so on a small machine it is part of what is measured. Figures only:
nothing here asserts a speed.

Uses DATABASE_URL's server when it is PostgreSQL, else postgresql://postgres@127.0.0.1:5432;
each database is created with scripts/pg_fresh_db.py and dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import Row, report  # noqa: E402

LATENCY_S = 0.2
PER_WORKER_CALLS = 32
WORKER = "from studio.cli.main import main; main(['worker', '--concurrency', '2'])"


def _pg_base() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        return url.rsplit("/", 1)[0] + "/postgres"
    return "postgresql://postgres@127.0.0.1:5432/postgres"


def _fresh_db(base: str) -> str:
    out = subprocess.run(
        [sys.executable, "scripts/pg_fresh_db.py", "create", base],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.strip().splitlines()[-1]


def _drop_db(base: str, url: str) -> None:
    subprocess.run(
        [sys.executable, "scripts/pg_fresh_db.py", "drop", base, url], cwd=ROOT, check=False
    )


def _use(url: str, home: str) -> None:
    """Point this process's studio at ``url`` (jobs always on the queue)."""
    from studio.core.settings import reset_settings
    from studio.store import reset_engine

    os.environ.update(
        DATABASE_URL=url, STUDIO_HOME=home, STUDIO_JOBS="queue", STUDIO_EMBEDDED_GATEWAY="0",
        STUDIO_JOB_PART_ROWS="250", STUDIO_JOB_PART_CONCURRENCY="16", HF_HUB_OFFLINE="1",
    )  # fmt: skip
    reset_settings()
    reset_engine()


def _workers(n: int, home: str) -> list[subprocess.Popen[bytes]]:
    from studio.services.job_queue import live_workers

    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER], cwd=home, env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for _ in range(n)
    ]  # fmt: skip
    deadline = time.monotonic() + 60
    while live_workers() < n:
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise SystemExit("the workers did not start")
        time.sleep(0.1)
    return procs


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()


def _make_run(server_url: str, rows: int, concurrency: int) -> int:
    from studio.core.templates import PromptTemplate
    from studio.models.connections import ConnectionCreate, add_connection
    from studio.services.apps import create_app
    from studio.services.datasets import upload_dataset
    from studio.services.runs import RunConfig, create_run
    from studio.store import session_scope

    with session_scope() as session:
        add_connection(
            session=session,
            data=ConnectionCreate(name="fake", kind="openai", base_url=server_url),
        )
        app = create_app(session=session, name="Bench")
        assert app.id is not None
        csv = "topic\n" + "".join(f"topic {i}\n" for i in range(rows))
        version = upload_dataset(
            session=session, app_id=app.id, name="t", data=csv.encode(), filename="t.csv"
        )
        assert version.id is not None
        config = RunConfig(
            model="fake/fake-chat",
            prompt=PromptTemplate(kind="completion", template="Write about {{topic}}"),
            concurrency=concurrency,
            use_cache=False,
        )
        run = create_run(
            session=session, app_id=app.id, dataset_version_id=version.id, config=config
        )
        assert run.id is not None
        return run.id


def _measure(n: int, rows: int, base: str, server_url: str) -> float:
    """Rows per second of one run shared by ``n`` workers."""
    from studio.services.jobs import enqueue_run, get_job

    url, home = _fresh_db(base), tempfile.mkdtemp(prefix="bench-jobs-")
    try:
        _use(url, home)
        procs = _workers(n, home)
        try:
            run_id = _make_run(server_url, rows, PER_WORKER_CALLS * n)
            started = time.perf_counter()
            job = enqueue_run(run_id=run_id, actor="bench")
            while (view := get_job(job_id=job.id)).active:
                time.sleep(0.05)
            wall = time.perf_counter() - started
            if view.state != "succeeded" or view.done != rows:
                raise SystemExit(f"the run ended {view.state} with {view.done} rows")
            return rows / wall
        finally:
            _stop(procs)
    finally:
        from studio.store import reset_engine

        reset_engine()
        _drop_db(base, url)


def _cancel_latency(base: str, server_url: str) -> float:
    """Seconds from Cancel in this process to no part running on 2 workers."""
    from studio.services.jobs import cancel_job, enqueue_run, get_job

    url, home = _fresh_db(base), tempfile.mkdtemp(prefix="bench-jobs-")
    try:
        _use(url, home)
        procs = _workers(2, home)
        try:
            job = enqueue_run(run_id=_make_run(server_url, 5000, 64), actor="bench")
            while get_job(job_id=job.id).done < 200:
                time.sleep(0.02)
            started = time.perf_counter()
            cancel_job(job_id=job.id)
            while get_job(job_id=job.id).active:
                time.sleep(0.01)
            return time.perf_counter() - started
        finally:
            _stop(procs)
    finally:
        from studio.store import reset_engine

        reset_engine()
        _drop_db(base, url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from tests.providers.fakes import FaultyOpenAIServer

    base = _pg_base()
    server = FaultyOpenAIServer(latency_s=LATENCY_S).start()
    results: list[Row] = []
    try:
        baseline = None
        for n in [int(x) for x in args.workers.split(",")]:
            rate = _measure(n, args.rows, base, server.url)
            ideal = PER_WORKER_CALLS * n / LATENCY_S
            baseline = baseline or rate
            results.append(
                Row(
                    f"{n} worker{'s' if n > 1 else ''}: throughput",
                    rate,
                    "rows/s",
                    detail=f"{args.rows} rows at {LATENCY_S * 1000:.0f} ms, "
                    f"{PER_WORKER_CALLS * n} calls at a time; efficiency {rate / ideal:.0%}, "
                    f"{rate / baseline:.2f}x 1 worker",
                    target=f"ideal {ideal:.0f}",
                )
            )
        stop = _cancel_latency(base, server.url)
        results.append(
            Row("cancel: stopped on every worker", stop, "s", "2 workers, 64 calls", "<= 2 s")
        )
    finally:
        server.stop()
    report("Jobs on PostgreSQL workers", results, args.json)


if __name__ == "__main__":
    main()
