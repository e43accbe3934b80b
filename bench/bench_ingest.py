"""How fast a CSV becomes a dataset: parsing, and parsing plus storing every row.

    python bench/bench_ingest.py [--rows 100000] [--json]

Builds a realistic CSV in memory (quoted text with commas and newlines, numbers,
a label column), then times ``parse_table`` alone and ``upload_dataset`` (parse,
check, insert every row into a throwaway SQLite database, or the database in
DATABASE_URL). Figures only.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import tempfile
import time

from bench.common import Row, report


def make_csv(rows: int) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "question", "context", "expected_answer", "label"])
    for i in range(rows):
        writer.writerow(
            [
                i,
                f"How do I change setting {i % 97}, and keep my data?",
                f'Customer since {2010 + i % 15}. Plan: "pro".\nNotes: ticket #{i}',
                f"Open Settings > Account and pick option {i % 7}.",
                ("positive", "negative", "neutral")[i % 3],
            ]
        )
    return buffer.getvalue().encode("utf-8")


def bench(rows: int) -> list[Row]:
    os.environ.setdefault("STUDIO_HOME", tempfile.mkdtemp(prefix="bench-ingest-"))
    from studio.services.apps import create_app
    from studio.services.datasets import parse_table, upload_dataset
    from studio.store import get_engine, session_scope

    data = make_csv(rows)
    get_engine()
    started = time.perf_counter()
    parsed = parse_table(data, filename="big.csv", max_bytes=len(data) + 1)
    parse_s = time.perf_counter() - started
    assert len(parsed.rows) == rows
    with session_scope() as session:
        app = create_app(session=session, name=f"ingest {time.time()}")
        assert app.id is not None
        app_id = app.id
    started = time.perf_counter()
    with session_scope() as session:
        version = upload_dataset(
            session=session, app_id=app_id, name="big", data=data, filename="big.csv"
        )
        assert version.row_count == rows
    upload_s = time.perf_counter() - started
    size = f"{rows:,} rows, {len(data) / 1e6:.1f} MB"
    return [
        Row("CSV parse", rows / parse_s, "rows/s", f"{size}, {parse_s:.2f} s"),
        Row("CSV ingest (parse + store)", rows / upload_s, "rows/s", f"{size}, {upload_s:.2f} s"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report("CSV ingest", bench(args.rows), args.json)


if __name__ == "__main__":
    main()
