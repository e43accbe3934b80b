"""How long the Playground page takes to draw with a large dataset.

    python -m bench.bench_playground [--rows 10000] [--json]

Uploads a dataset of ``--rows`` rows into a throwaway studio, then runs the
Playground page with Streamlit's AppTest (the same script a browser session
runs): the first load (rows read from the database), a warm rerun (rows
cached), and a rerun after editing the template (preview and column check
again). Figures only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.bench_ingest import make_csv
from bench.common import Row, report

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "playground.py")


def bench(rows: int, repeat: int) -> list[Row]:
    os.environ.setdefault("STUDIO_HOME", tempfile.mkdtemp(prefix="bench-playground-"))
    os.environ["STUDIO_EMBEDDED_GATEWAY"] = "0"
    from streamlit.testing.v1 import AppTest

    from studio.services.apps import create_app
    from studio.services.datasets import upload_dataset
    from studio.store import session_scope

    with session_scope() as session:
        app = create_app(session=session, name=f"bench {time.time()}")
        assert app.id is not None
        upload_dataset(
            session=session, app_id=app.id, name="big", data=make_csv(rows), filename="big.csv"
        )

    at = AppTest.from_file(PAGE, default_timeout=120)
    started = time.perf_counter()
    at.run()
    first = time.perf_counter() - started
    assert not at.exception, [e.value for e in at.exception]
    assert at.button(key="pg_generate").label == f"Generate all {rows} rows"

    warm = []
    for _ in range(repeat):
        started = time.perf_counter()
        at.run()
        warm.append(time.perf_counter() - started)
    edits = []
    for i in range(repeat):
        at.text_area(key="pg_template").set_value(f"Answer {{{{question}}}} briefly ({i}).")
        started = time.perf_counter()
        at.run()
        edits.append(time.perf_counter() - started)
    assert not at.exception

    # A finished run over every row: the results table is drawn below the editor.
    from studio.core.templates import PromptTemplate
    from studio.services.runs import RunConfig, create_run
    from studio.store.tables import RunResult

    with session_scope() as session:
        run = create_run(
            session=session,
            app_id=app.id,
            dataset_version_id=1,
            config=RunConfig(
                model="builtin/smollm2-135m-instruct",
                prompt=PromptTemplate.completion("Answer {{question}}"),
            ),
        )
        run.status = "done"
        assert run.id is not None
        session.add_all(
            RunResult(
                run_id=run.id,
                row_index=i,
                output=f"Open Settings and pick option {i % 7}. " * 3,
                latency_ms=120.0,
                prompt_tokens=20,
                response_tokens=30,
            )
            for i in range(rows)
        )
    started = time.perf_counter()
    at.run()
    with_results_first = time.perf_counter() - started
    results = []
    for _ in range(repeat):
        started = time.perf_counter()
        at.run()
        results.append(time.perf_counter() - started)
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.dataframe[0].value) == min(rows, 1000)  # results are paged
    size = f"{rows:,}-row dataset"
    return [
        Row("Playground first load", first * 1000, "ms", size),
        Row("Playground rerun", statistics.median(warm) * 1000, "ms", f"{size}, median"),
        Row("Playground template edit", statistics.median(edits) * 1000, "ms", f"{size}, median"),
        Row("Playground with results, first", with_results_first * 1000, "ms", f"{size} answered"),
        Row(
            "Playground with results, rerun",
            statistics.median(results) * 1000,
            "ms",
            f"{size} answered, median",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report("Playground page", bench(args.rows, args.repeat), args.json)


if __name__ == "__main__":
    main()
