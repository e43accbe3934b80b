"""How close a batch run gets to the provider's concurrency limit, and its memory.

    python bench/bench_runs.py            # an aligned table
    python bench/bench_runs.py --json     # the same figures as JSON

1. Efficiency: a run of 1,000 rows through a real ``openai`` connection at
   concurrency 32 against a local fake OpenAI-compatible provider that answers
   every call after 200 ms. The ideal wall time is ceil(1000 / 32) x 0.2 s;
   efficiency is ideal / measured. Target: at least 90%.
2. Memory: peak RSS of a process that runs 1,000 and then 20,000 rows (each in
   a fresh process, against a provider answering at once). Target: flat as
   rows grow.

The fake provider (``tests/providers/fakes.py``) runs in this process; each
run runs in a child process with its own throwaway STUDIO_HOME (SQLite), so
the figures are the engine's alone. The dataset is uploaded by another child
first, so the measured peak RSS is the run's. Figures only: nothing here
asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import Row, report, run_child  # noqa: E402
from tests.providers.fakes import FaultyOpenAIServer  # noqa: E402

TEMPLATE = "Write a short marketing email about {{event}} for {{demographic}} (size {{size}})."


# -- child processes ------------------------------------------------------------------


def _setup(url: str, rows: int, concurrency: int) -> None:
    """Create a connection, an app, a dataset of ``rows`` rows and a run; print the run id."""
    from studio.core.templates import PromptTemplate
    from studio.models.connections import ConnectionCreate, add_connection
    from studio.services.apps import create_app
    from studio.services.datasets import upload_dataset
    from studio.services.runs import RunConfig, create_run
    from studio.store import session_scope

    csv = "event,demographic,size\n" + "".join(
        f"Launch party {i},group {i % 17},{10 + i % 300}\n" for i in range(rows)
    )
    with session_scope() as session:
        add_connection(
            session=session,
            data=ConnectionCreate(
                name="bench",
                kind="openai",
                base_url=url,
                options={"concurrency": concurrency, "timeout_s": 30},
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
    """Run ``run_id`` and print wall time, results and peak RSS as JSON."""
    from studio.services.runs import RunProgress, run_sync
    from studio.store import get_engine

    get_engine()
    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    updates = 0

    def seen(progress: RunProgress) -> None:  # what the CLI and the UI do: copy the figures
        nonlocal updates
        updates += 1
        progress.model_copy()

    started = time.perf_counter()
    progress = run_sync(run_id=run_id, on_progress=seen)
    wall = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {
        "wall_s": wall,
        "done": progress.done,
        "errors": progress.errors,
        "updates": updates,
        "base_rss_mb": base_kb / 1024,
        "peak_rss_mb": peak_kb / 1024,
    }
    print(json.dumps(out))


# -- the parent -----------------------------------------------------------------------


def _child(args: list[str], home: str) -> str:
    return run_child(__file__, args, home)


def measure(url: str, rows: int, concurrency: int) -> dict[str, Any]:
    """Set up ``rows`` rows in a fresh STUDIO_HOME, then run them in a fresh process."""
    home = tempfile.mkdtemp(prefix="studio-bench-runs-")
    try:
        run_id = _child(["--child-setup", url, str(rows), str(concurrency)], home)
        result: dict[str, Any] = json.loads(_child(["--child-run", run_id], home))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if result["done"] != rows or result["errors"]:
        raise SystemExit(f"the run of {rows} rows did not answer every row: {result}")
    return result


def bench(rows: int, latency: float, concurrency: int, memory_rows: list[int]) -> list[Row]:
    out: list[Row] = []
    slow = FaultyOpenAIServer(latency_s=latency).start()
    try:
        measure(slow.url, 50, concurrency)  # warm the page cache and the interpreter
        got = measure(slow.url, rows, concurrency)
    finally:
        slow.stop()
    ideal = math.ceil(rows / concurrency) * latency
    out.append(Row("run wall time", got["wall_s"], "s", f"{rows} rows, concurrency {concurrency}"))
    out.append(Row("ideal wall time", ideal, "s", f"ceil({rows}/{concurrency}) x {latency:g} s"))
    out.append(Row("efficiency", 100 * ideal / got["wall_s"], "%", "ideal / wall; target >= 90%"))
    out.append(Row("rows/s", rows / got["wall_s"], "rows/s", f"provider latency {latency:g} s"))

    fast = FaultyOpenAIServer(latency_s=0.0).start()
    try:
        for n in memory_rows:
            got = measure(fast.url, n, concurrency)
            detail = (
                f"{n} rows in {got['wall_s']:.1f} s ({n / got['wall_s']:.0f} rows/s); "
                f"after imports {got['base_rss_mb']:.0f} MB"
            )
            out.append(Row(f"peak RSS, {n:,} rows", got["peak_rss_mb"], "MB", detail))
    finally:
        fast.stop()
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child-setup":
        _setup(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--child-run":
        _run(int(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--rows", type=int, default=1000, help="rows of the efficiency run")
    parser.add_argument("--latency", type=float, default=0.2, help="provider latency, seconds")
    parser.add_argument("--concurrency", type=int, default=32, help="calls in flight")
    parser.add_argument(
        "--memory-rows",
        default="1000,20000",
        help="comma-separated row counts whose peak RSS is measured",
    )
    args = parser.parse_args()
    sizes = [int(n) for n in args.memory_rows.split(",") if n.strip()]
    rows = bench(args.rows, args.latency, args.concurrency, sizes)
    report("Batch runs", rows, args.json)


if __name__ == "__main__":
    main()
