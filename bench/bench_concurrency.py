"""Does a run make the calls at once that the user asked for? Run engine vs a bare client.

    python bench/bench_concurrency.py            # an aligned table
    python bench/bench_concurrency.py --json     # the same figures as JSON

A run of 512 rows at concurrency 32 through a real ``openai`` connection that
sets no concurrency of its own, against a local fake OpenAI-compatible server
answering every call after 200 ms; beside it, in the same session against the
same server, a bare ``httpx.AsyncClient`` making the same 512 calls 32 at a time
(the baseline: what the wire allows; both call ``/v1/completions``). Target: run
wall time within 5% of the baseline's (ratio baseline / run >= 0.95), and the median latency the run
records near the server's 200 ms (before issue 11 item 6 a run was capped at the
connection default of 8: 14 s instead of ~4 s, median latency ~870 ms).

Each side runs in a child process of its own (the run with a throwaway
STUDIO_HOME on SQLite), so the fake server's threads in this process do not
compete with either. Figures only: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import Row, report, run_child  # noqa: E402
from tests.providers.fakes import FaultyOpenAIServer  # noqa: E402

TEMPLATE = "Write a short marketing email about {{event}} for {{demographic}}."


def _prompt(i: int) -> str:
    return f"Write a short marketing email about Launch {i} for group {i % 17}."


# -- child processes ------------------------------------------------------------------


def _setup(url: str, rows: int, concurrency: int) -> None:
    """A connection with no concurrency of its own, a dataset and a run; prints the run id."""
    from studio.core.templates import PromptTemplate
    from studio.models.connections import ConnectionCreate, add_connection
    from studio.services.apps import create_app
    from studio.services.datasets import upload_dataset
    from studio.services.runs import RunConfig, create_run
    from studio.store import session_scope

    csv = "event,demographic\n" + "".join(f"Launch {i},group {i % 17}\n" for i in range(rows))
    with session_scope() as session:
        add_connection(
            session=session,
            data=ConnectionCreate(
                name="bench", kind="openai", base_url=url, options={"timeout_s": 30}
            ),
        )
        app = create_app(session=session, name="Bench")
        assert app.id is not None
        version = upload_dataset(
            session=session, app_id=app.id, name="events", data=csv.encode(), filename="e.csv"
        )
        assert version.id is not None
        config = RunConfig(
            model="bench/fake-chat",
            prompt=PromptTemplate(kind="completion", template=TEMPLATE),
            parameters={"max_tokens": 64},
            concurrency=concurrency,
            use_cache=False,
        )
        run = create_run(
            session=session, app_id=app.id, dataset_version_id=version.id, config=config
        )
        session.flush()
        print(run.id)


def _run(run_id: int) -> None:
    """Run ``run_id``; print its wall time and the latencies it recorded as JSON."""
    from studio.services.runs import list_results, run_sync
    from studio.store import get_engine, session_scope

    get_engine()
    started = time.perf_counter()
    progress = run_sync(run_id=run_id)
    wall = time.perf_counter() - started
    with session_scope() as session:
        latencies = [r.latency_ms or 0.0 for r in list_results(session=session, run_id=run_id)]
    out = {
        "wall_s": wall,
        "done": progress.done,
        "errors": progress.errors,
        "median_latency_ms": statistics.median(latencies),
        "max_latency_ms": max(latencies),
    }
    print(json.dumps(out))


def _bare(url: str, rows: int, concurrency: int) -> None:
    """The baseline: the same calls from a bare httpx.AsyncClient, ``concurrency`` at once."""
    import httpx

    async def main() -> dict[str, Any]:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
            gate = asyncio.Semaphore(concurrency)
            latencies: list[float] = []

            async def one(i: int) -> None:
                async with gate:
                    t0 = time.perf_counter()
                    body = {"model": "fake-chat", "prompt": _prompt(i), "max_tokens": 64}
                    response = await client.post("/completions", json=body)
                    response.raise_for_status()
                    response.json()
                    latencies.append((time.perf_counter() - t0) * 1000)

            started = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(rows)))
            wall = time.perf_counter() - started
        return {
            "wall_s": wall,
            "done": len(latencies),
            "errors": 0,
            "median_latency_ms": statistics.median(latencies),
            "max_latency_ms": max(latencies),
        }

    print(json.dumps(asyncio.run(main())))


# -- the parent -----------------------------------------------------------------------


def _child(args: list[str], home: str) -> str:
    return run_child(__file__, args, home)


def measure_run(url: str, rows: int, concurrency: int) -> dict[str, Any]:
    home = tempfile.mkdtemp(prefix="studio-bench-concurrency-")
    try:
        run_id = _child(["--child-setup", url, str(rows), str(concurrency)], home)
        result: dict[str, Any] = json.loads(_child(["--child-run", run_id], home))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if result["done"] != rows or result["errors"]:
        raise SystemExit(f"the run of {rows} rows did not answer every row: {result}")
    return result


def measure_bare(url: str, rows: int, concurrency: int) -> dict[str, Any]:
    home = tempfile.mkdtemp(prefix="studio-bench-concurrency-")
    try:
        return dict(json.loads(_child(["--child-bare", url, str(rows), str(concurrency)], home)))
    finally:
        shutil.rmtree(home, ignore_errors=True)


def bench(rows: int, latency: float, concurrency: int) -> list[Row]:
    server = FaultyOpenAIServer(latency_s=latency).start()
    try:
        measure_bare(server.url, concurrency, concurrency)  # warm up both paths
        measure_run(server.url, concurrency, concurrency)
        server.reset_counts()
        bare = measure_bare(server.url, rows, concurrency)
        bare_peak = server.peak_in_flight
        server.reset_counts()
        run = measure_run(server.url, rows, concurrency)
        run_peak = server.peak_in_flight
    finally:
        server.stop()
    what = f"{rows} calls, concurrency {concurrency}, server latency {latency * 1000:g} ms"
    ratio = bare["wall_s"] / run["wall_s"]
    return [
        Row("bare httpx wall time", bare["wall_s"], "s", f"baseline; {what}"),
        Row("run wall time", run["wall_s"], "s", f"studio run; {what}"),
        Row("run efficiency vs bare", ratio, "x", "bare wall / run wall", ">= 0.95"),
        Row("bare peak in flight", bare_peak, "calls", "most requests the server had at once"),
        Row("run peak in flight", run_peak, "calls", "most requests the server had at once"),
        Row("bare median latency", bare["median_latency_ms"], "ms", "per call, client side"),
        Row(
            "run median latency",
            run["median_latency_ms"],
            "ms",
            f"as the run recorded it; max {run['max_latency_ms']:.0f} ms",
            f"near {latency * 1000:g}",
        ),
    ]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child-setup":
        _setup(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--child-run":
        _run(int(sys.argv[2]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--child-bare":
        _bare(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--rows", type=int, default=512, help="calls on each side")
    parser.add_argument("--latency", type=float, default=0.2, help="server latency, seconds")
    parser.add_argument("--concurrency", type=int, default=32, help="calls in flight")
    args = parser.parse_args()
    report("Run concurrency", bench(args.rows, args.latency, args.concurrency), args.json)


if __name__ == "__main__":
    main()
