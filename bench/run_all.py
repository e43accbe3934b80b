"""Run every benchmark and print one table; optionally record it in docs/benchmarks.md.

    python -m bench.run_all                          # print the table
    python -m bench.run_all --write docs/benchmarks.md

Each benchmark runs in its own process with a throwaway STUDIO_HOME (and the
database in DATABASE_URL when set, SQLite otherwise) and prints
its figures as JSON (``--json``); this script only gathers them. Nothing here
asserts a speed: the targets are printed next to the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Row, machine, table

ROOT = Path(__file__).resolve().parent.parent
BENCHES = [
    ("Built-in models", "bench.bench_builtin", ["--repeat", "1"]),
    ("Batch runs", "bench.bench_runs", []),
    ("Run concurrency", "bench.bench_concurrency", []),
    ("Jobs on PostgreSQL workers", "bench.bench_jobs", []),
    ("CSV ingest", "bench.bench_ingest", []),
    ("Gateway", "bench.bench_gateway", []),
    ("Streaming", "bench.bench_streaming", []),
    ("Provider HTTP clients", "bench.bench_http_client", []),
    ("Playground page", "bench.bench_playground", []),
    ("CLI start-up", "bench.bench_cli", []),
    ("Deterministic evaluators", "bench.bench_evaluators", []),
    ("LLM-judge evaluation", "bench.bench_eval_judge", []),
    ("Compare page", "bench.bench_compare", []),
    ("Knowledge bases", "bench.bench_knowledge", []),
    ("Fine-tuning", "bench.bench_finetune", []),
]


def run_one(module: str, extra: list[str]) -> tuple[list[Row], str | None]:
    env = {**os.environ, "STUDIO_HOME": tempfile.mkdtemp(prefix="bench-home-")}
    proc = subprocess.run(
        [sys.executable, "-m", module, "--json", *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return [], f"{module} failed: {' | '.join(tail)}"
    text = proc.stdout.strip()
    start = text.rfind("\n{") + 1  # the JSON document is the last thing printed
    document = json.loads(text[start:])
    fields = set(Row.__dataclass_fields__)
    rows = [Row(**{k: v for k, v in r.items() if k in fields}) for r in document["results"]]
    return rows, None


def markdown(sections: list[tuple[str, list[Row]]], when: str, took: float) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Recorded {when} by `python -m bench.run_all --write docs/benchmarks.md` "
        f"on {machine()} (1-minute load average as the run ended: {os.getloadavg()[0]:.2f}); "
        f"the whole run took {took / 60:.1f} minutes. Every figure below comes from that "
        "command; rerun it to refresh this page.",
        "",
        "| area | metric | value | unit | target | detail |",
        "|---|---|---:|---|---|---|",
    ]
    for title, rows in sections:
        for r in rows:
            lines.append(
                f"| {title} | {r.metric} | {r.value:,.2f} | {r.unit} | {r.target} | {r.detail} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="also write a Markdown table to this file")
    parser.add_argument("--only", nargs="*", help="run only these benchmark modules")
    args = parser.parse_args()
    started = time.perf_counter()
    sections: list[tuple[str, list[Row]]] = []
    failures = []
    for title, module, extra in BENCHES:
        if args.only and module.split(".")[-1] not in args.only and module not in args.only:
            continue
        print(f"running {module} …", file=sys.stderr, flush=True)
        rows, error = run_one(module, extra)
        if error:
            failures.append(error)
        sections.append((title, rows))
    took = time.perf_counter() - started
    print(f"Benchmarks on {machine()}\n")
    print(
        table(
            [
                Row(f"{t}: {r.metric}", r.value, r.unit, r.detail, r.target)
                for t, rows in sections
                for r in rows
            ]
        )
    )
    for failure in failures:
        print(f"\n{failure}")
    if args.write:
        when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        args.write.write_text(markdown(sections, when, took))
        print(f"\nwrote {args.write}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
