"""The Compare page's engine: all statistics for 8 contenders, and the grid's open and redraw.

    python bench/bench_compare.py [--rows 10000] [--repeat 3] [--json]

Setup (not timed): an app with a 10,000-row dataset, 8 model contenders whose runs
and one evaluator's verdicts are inserted straight into the database (answers,
latencies, costs and pass/fail drawn at random, one contender erring on 2% of the
rows), stored as a comparison of 8 and one of the first 4. Timed, median of
``--repeat``:

- ``comparison_summary`` for 8 x 10,000: every figure and every paired test
  (McNemar, bootstrap interval, Wilcoxon, Holm) against the baseline;
- ``grid_page`` on 4 x 10,000: the first page (open), the next page and the
  disagree filter (redraw), and a text search;
- the baseline, measured in the same run: a bare SQL select of the same rows
  (the 4 contenders' outputs, latencies and verdicts), which is what any grid
  over this database must at least read.

Targets (issue 14): open <= 1 s, redraw <= 150 ms for 10,000 rows x 4 contenders.
The database is the one in ``STUDIO_HOME`` (SQLite), or ``DATABASE_URL``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Row, report


def _setup(rows: int) -> tuple[int, int, list[int]]:
    """(comparison of 8, comparison of 4, the 4 contenders' run ids)."""
    from sqlalchemy import insert, update

    from studio.core.templates import PromptTemplate
    from studio.services.apps import create_app
    from studio.services.comparisons import ContenderSpec, create_comparison
    from studio.services.datasets import upload_dataset
    from studio.services.evaluations import EvaluatorConfig
    from studio.store import get_engine, session_scope
    from studio.store.tables import Evaluation, EvaluationScore, Run, RunResult

    get_engine()
    rng = random.Random(14)
    words = "the spring gala invites young professionals to a wine tasting downtown".split()  # noqa: SIM905
    csv = "event,who\n" + "".join(f"Event {i},group {i % 37}\n" for i in range(rows))
    prompt = PromptTemplate.completion("Invite {{who}} to {{event}}.")
    specs = [
        ContenderSpec(model="builtin/smollm2-135m-instruct", parameters={"temperature": t / 10})
        for t in range(8)
    ]
    with session_scope() as session:
        app = create_app(session=session, name="Bench compare")
        assert app.id is not None
        version = upload_dataset(
            session=session, app_id=app.id, name="events", data=csv.encode(), filename="e.csv"
        )
        assert version.id is not None
        evaluators = [EvaluatorConfig(id="contains", options={"value": "wine"})]
        big, _ = create_comparison(
            session=session, app_id=app.id, dataset_version_id=version.id, contenders=specs,
            evaluators=evaluators, prompt=prompt, actor="bench",
        )  # fmt: skip
        run_ids = [c["run_id"] for c in big.contenders]
        for i, run_id in enumerate(run_ids):
            session.execute(
                insert(RunResult),
                [
                    {"run_id": run_id, "row_index": r, "sample_index": 0,
                     "rendered_prompt": f"Invite group {r % 37} to Event {r}.",
                     "output": " ".join(rng.choice(words) for _ in range(rng.randint(8, 40))),
                     "error": "timeout" if i == 3 and r % 50 == 0 else None,
                     "prompt_tokens": 12, "response_tokens": rng.randint(8, 60),
                     "latency_ms": rng.lognormvariate(6 + 0.1 * i, 0.4),
                     "cost": 0.00002 * (1 + i)}
                    for r in range(rows)
                ],
            )  # fmt: skip
            session.execute(update(Run).where(Run.id == run_id).values(status="done"))
        session.commit()
        # the 4-contender comparison reuses the first four finished runs
        small, missing = create_comparison(
            session=session, app_id=app.id, dataset_version_id=version.id, contenders=specs[:4],
            evaluators=evaluators, prompt=prompt, actor="bench",
        )  # fmt: skip
        assert not missing, "finished runs are reused"
        for comparison in (big, small):
            evaluation = session.get(Evaluation, comparison.evaluation_id)
            assert evaluation is not None
            key, version_hash = evaluation.evaluators[0]["key"], evaluation.evaluators[0]["version"]
            for i, c in enumerate(comparison.contenders):
                session.execute(
                    insert(EvaluationScore),
                    [
                        {"evaluation_id": evaluation.id, "evaluator_key": key,
                         "evaluator_version": version_hash, "run_id": c["run_id"],
                         "row_index": r, "sample_index": 0,
                         "score": float(p := rng.random() < 0.5 + 0.04 * i), "passed": p,
                         "reason": "found" if p else "not found", "error": None}
                        for r in range(rows)
                    ],
                )  # fmt: skip
            evaluation.status = "done"
            session.add(evaluation)
        session.commit()
        assert big.id is not None and small.id is not None
        return big.id, small.id, run_ids[:4]


def _median(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), out


def _bare_select(run_ids: list[int], evaluation_id: int) -> int:
    """The floor: the same rows read with one plain SQL select each, no Python work."""
    from sqlalchemy import text

    from studio.store import get_engine

    with get_engine().connect() as conn:
        ids = ",".join(str(i) for i in run_ids)
        results = conn.execute(
            text(
                "SELECT run_id, row_index, output, error, latency_ms, prompt_tokens, "
                f"response_tokens, cost FROM runresult WHERE run_id IN ({ids})"
            )
        ).fetchall()
        verdicts = conn.execute(
            text("SELECT run_id, row_index, passed FROM evaluationscore WHERE evaluation_id = :e"),
            {"e": evaluation_id},
        ).fetchall()
    return len(results) + len(verdicts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import os

    if "STUDIO_HOME" not in os.environ:
        os.environ["STUDIO_HOME"] = tempfile.mkdtemp(prefix="bench-compare-")
    from studio.services.comparison_summary import comparison_summary, grid_page
    from studio.services.comparisons import get_comparison
    from studio.store import get_engine, session_scope

    started = time.perf_counter()
    big, small, run_ids = _setup(args.rows)
    setup_s = time.perf_counter() - started
    with session_scope() as session:
        evaluation_id = get_comparison(session=session, comparison_id=small).evaluation_id or 0

    def summary() -> Any:
        with session_scope() as session:
            return comparison_summary(session=session, comparison_id=big)

    def grid(**kwargs: Any) -> Callable[[], Any]:
        def call() -> Any:
            with session_scope() as session:
                return grid_page(session=session, comparison_id=small, limit=50, **kwargs)

        return call

    rows, n = [], args.rows
    s_summary, result = _median(summary, args.repeat)
    assert len(result.tests) == 7
    rows.append(Row("all statistics, 8 contenders", s_summary, "s",
                    f"{n:,} rows each; 7 paired tests, Holm", ""))  # fmt: skip
    s_open, first = _median(grid(), args.repeat)
    assert first.total == n and len(first.rows) == 50
    rows.append(Row("grid open (first page)", s_open * 1000, "ms", f"4 x {n:,} rows", "<= 1000"))
    s_next, _ = _median(grid(offset=50), args.repeat)
    rows.append(Row("grid redraw: next page", s_next * 1000, "ms", "4 contenders", "<= 150"))
    s_dis, page = _median(grid(disagree=True), args.repeat)
    rows.append(Row("grid redraw: disagree filter", s_dis * 1000, "ms",
                    f"{page.total:,} rows match", "<= 150"))  # fmt: skip
    s_search, page = _median(grid(search="group 7"), args.repeat)
    rows.append(Row("grid redraw: text search", s_search * 1000, "ms",
                    f"{page.total:,} rows match", ""))  # fmt: skip
    s_bare, count = _median(lambda: _bare_select(run_ids, evaluation_id), args.repeat)
    rows.append(Row("baseline: bare SQL select", s_bare * 1000, "ms",
                    f"{count:,} rows (outputs + verdicts), no Python work", ""))  # fmt: skip
    backend = get_engine().url.get_backend_name()
    rows.append(Row("setup (not timed above)", setup_s, "s", f"inserts, on {backend}", ""))
    report("Compare page engine", rows, args.json)


if __name__ == "__main__":
    main()
