"""``studio compare``: contenders side by side, with paired tests against the baseline.

    studio compare --app APP --dataset VERSION_ID|FILE
                   --contender variant:NAME[@VERSION] --contender model:MODEL[,temperature=0.2]
                   [--evaluator ID[:key=value,...]] ... [--baseline 1] [--out compare.csv]
                   [--json]

Missing runs are generated first (as jobs, with a progress bar; finished runs of
the same variant version or configuration are reused), then the evaluators
score every contender, then the summary and the tests are printed. ``--out``
writes the rows side by side, and the summary with its tests beside it
(``compare.summary.csv``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from studio.cli.output import JsonOpt, print_json, table
from studio.core.errors import ConfigError, StudioError
from studio.store import session_scope

__all__ = ["finish_comparison", "register_compare_commands"]


def register_compare_commands(app: typer.Typer) -> None:
    app.command("compare")(compare)


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value:.1%}"


def _follow_runs(run_ids: list[int]) -> None:
    from studio.cli.jobs import follow
    from studio.services.jobs import enqueue_run

    for run_id in run_ids:
        view, interrupted = follow(enqueue_run(run_id=run_id, actor="cli").id, f"run {run_id}")
        if interrupted or view.state != "succeeded":
            raise StudioError(
                f"Run {run_id} did not finish ({view.state}); nothing was compared.",
                hint=f"Resume it with: studio run resume {run_id}",
            )


def _score(evaluation_id: int, concurrency: int) -> None:
    from studio.cli.jobs import follow
    from studio.services.jobs import enqueue_evaluation

    job = enqueue_evaluation(evaluation_id=evaluation_id, actor="cli", concurrency=concurrency)
    view, interrupted = follow(job.id, f"evaluation {evaluation_id}")
    if interrupted or view.state != "succeeded":
        raise StudioError(
            f"The evaluation stopped ({view.state}).",
            hint=f"Finish it with: studio job retry {job.id}",
        )


def _write(out_path: Path, rows: bytes, summary: bytes) -> Path:
    second = out_path.with_name(f"{out_path.stem}.summary{out_path.suffix or '.csv'}")
    try:
        out_path.write_bytes(rows)
        second.write_bytes(summary)
    except OSError as exc:
        raise ConfigError(f"Cannot write {out_path}: {exc}") from exc
    return second


def compare(
    app_ref: Annotated[str, typer.Option("--app", help="App name or id.")],
    dataset: Annotated[str, typer.Option(help="Dataset version id, or a CSV file to upload.")],
    contender: Annotated[
        list[str],
        typer.Option(help="variant:NAME[@VERSION] or model:MODEL[,key=value]; 2 to 8 times."),
    ],
    evaluator: Annotated[
        list[str] | None, typer.Option(help="ID or ID:key=value,...; repeatable.")
    ] = None,
    baseline: Annotated[
        int, typer.Option(min=1, help="Which contender the others are tested against (1 = first).")
    ] = 1,
    out_path: Annotated[
        Path | None, typer.Option("--out", help="Write the rows side by side as CSV.")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="Judge calls at a time.")] = 8,
    as_json: JsonOpt = False,
) -> None:
    """Compare variants and models on one dataset, with paired tests."""
    from studio.cli.apps import _app_id, _dataset_version_id
    from studio.cli.evals import _configs
    from studio.services.comparisons import create_comparison, parse_contender

    specs = [parse_contender(text) for text in contender]
    configs, _ = _configs(list(evaluator or []), None)
    with session_scope() as session:
        app_id = _app_id(session, app_ref)
        version_id = _dataset_version_id(session, app_id, dataset)
        comparison, missing = create_comparison(
            session=session, app_id=app_id, dataset_version_id=version_id, contenders=specs,
            evaluators=configs, baseline=baseline - 1, actor="cli",
        )  # fmt: skip
        comparison_id, evaluation_id = comparison.id or 0, comparison.evaluation_id
    finish_comparison(comparison_id, evaluation_id, missing, concurrency, out_path, as_json)


def finish_comparison(
    comparison_id: int,
    evaluation_id: int | None,
    missing: list[int],
    concurrency: int,
    out_path: Path | None,
    as_json: bool,
) -> None:
    """Generate the missing runs, score them, print the summary (and write the CSVs)."""
    from studio.services.comparison_export import (
        export_comparison_rows,
        export_comparison_summary,
    )
    from studio.services.comparison_summary import comparison_summary

    _follow_runs(missing)
    if evaluation_id is not None:
        _score(evaluation_id, concurrency)
    with session_scope() as session:
        summary = comparison_summary(session=session, comparison_id=comparison_id)
        files = None
        if out_path is not None:
            rows = export_comparison_rows(session=session, comparison_id=comparison_id)
            second = export_comparison_summary(session=session, comparison_id=comparison_id)
            files = (out_path, _write(out_path, rows, second))
    if as_json:
        print_json(summary.as_dict())
    else:
        table(
            f"Comparison {comparison_id}",
            ["", "contender", "rows", "pass rate", "95% CI", "latency p50", "cost / 1,000 rows"],
            [
                [f["key"] + (" (baseline)" if f["key"] == summary.comparison.baseline else ""),
                 f["label"], f"{f['rows']}/{f['of']}",
                 _pct((f["pass_rate"] or {}).get("estimate")),
                 (f"{f['pass_rate']['low']:.0%} to {f['pass_rate']['high']:.0%}"
                  if f["pass_rate"] else "-"),
                 (f"{f['latency_p50_ms']['estimate']:.0f} ms" if f["latency_p50_ms"] else "-"),
                 ("-" if f["cost_per_1000_rows"] is None else f"${f['cost_per_1000_rows']:.4f}")]
                for f in summary.contenders
            ],
        )  # fmt: skip
        for test in summary.tests:
            typer.echo(f"{test['key']}: {test['sentence']}")
        for note in summary.notes:
            typer.echo(note, err=True)
    if files is not None:
        typer.echo(f"Wrote {files[0]} and {files[1]}.", err=True)
