"""``studio eval``: score runs with evaluators, read report cards, export CSV, gate CI.

    studio eval evaluators
    studio eval run --app APP --variant NAME[@VERSION] ... --dataset ID|FILE
                    --evaluator ID[:key=value,...] ... [--config evals.yaml]
                    [--fail-under 0.9] [--out results.csv] [--json]
    studio eval list --app APP
    studio eval show ID
    studio eval export ID --format wide|long --out FILE

``eval run`` reuses a finished run of each variant version on the dataset, or
generates it first (as a job, with the progress bar of ``studio run``). It exits
1 when the overall pass rate (outputs passing every evaluator, over outputs
judged) is below ``--fail-under``. A YAML file holds a reusable set::

    evaluators:
      - contains:value={{event}}
      - id: llm_judge
        options: {rubric: "Polite and names the event.", model: builtin/smollm2-135m-instruct}
    fail_under: 0.8
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from studio.cli.output import JsonOpt, print_json, table
from studio.core.errors import ConfigError, StudioError
from studio.store import session_scope

if TYPE_CHECKING:
    from studio.evaluators.report import ReportCard
    from studio.services.evaluations import EvaluatorConfig

__all__ = ["register_eval_commands"]

eval_app = typer.Typer(
    help="Evaluations: score runs with evaluators; a CI gate with --fail-under.",
    no_args_is_help=True,
)


def register_eval_commands(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


@eval_app.command("evaluators")
def evaluators_list(as_json: JsonOpt = False) -> None:
    """The evaluator catalogue with each option, its default and what it means."""
    from studio.evaluators import catalogue

    entries: list[dict[str, Any]] = []
    for cls in catalogue().values():
        options = [
            {
                "name": name,
                "type": _type_name(f.annotation),
                "default": None if f.is_required() else f.default,
                "required": f.is_required(),
                "description": f.description or "",
            }
            for name, f in cls.Options.model_fields.items()
        ]
        entries.append(
            {"id": cls.id, "name": cls.name, "family": cls.family,
             "description": cls.description, "options": options}
        )  # fmt: skip
    if as_json:
        print_json(entries)
        return
    rows = []
    for e in entries:
        opts = "; ".join(
            f"{o['name']}{' (required)' if o['required'] else '=' + repr(o['default'])}"
            for o in e["options"]
        )
        rows.append([e["id"], e["family"], e["description"], opts or "-"])
    table("Evaluators (use as ID:key=value,key=value)", ["id", "family", "what", "options"], rows)


def _configs(specs: list[str], config_path: Path | None) -> tuple[list[EvaluatorConfig], Any]:
    from studio.evaluators import parse_spec
    from studio.services.evaluations import EvaluatorConfig

    configs: list[EvaluatorConfig] = []
    fail_under = None
    if config_path is not None:
        import yaml

        try:
            data = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ConfigError(f"File not found: {config_path}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{config_path} is not valid YAML: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("evaluators", []), list):
            raise ConfigError(
                f"{config_path} must hold a mapping with an 'evaluators' list.",
                hint="See `studio eval run --help` for an example.",
            )
        fail_under = data.get("fail_under")
        for entry in data.get("evaluators", []):
            if isinstance(entry, str):
                specs = [*specs, entry]
            elif isinstance(entry, dict) and "id" in entry:
                configs.append(EvaluatorConfig.model_validate(entry))
            else:
                raise ConfigError(f"{config_path}: cannot read evaluator entry {entry!r}.")
    for spec in specs:
        evaluator = parse_spec(spec)
        configs.append(
            EvaluatorConfig(id=evaluator.id, options=evaluator.options.model_dump(mode="json"))
        )
    return configs, fail_under


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _print_card(card: ReportCard, labels: dict[str, str]) -> None:
    rows = []
    for line in card.lines:
        interval = line.pass_rate
        ci = f"{interval.low:.0%} to {interval.high:.0%}" if interval else "-"
        mean = f"{line.mean_score.estimate:.2f}" if line.mean_score else "-"
        rows.append(
            [labels.get(line.contender, line.contender), line.evaluator, line.judged,
             line.passed, _pct(interval.estimate if interval else None), ci, mean, line.errors]
        )  # fmt: skip
    table(
        "Report card",
        ["contender", "evaluator", "judged", "passed", "pass rate", "95% CI", "mean", "errors"],
        rows,
    )
    for line in card.lines:
        figure = line.extra.get("retrieval")
        if not figure:
            continue
        name = str(figure["figure"]).replace("@k", f"@{figure['k']}" if figure.get("k") else "@k")
        fmt = "{:.2f}" if figure["figure"] == "MRR" else "{:.0%}"
        low, high = fmt.format(figure["low"]), fmt.format(figure["high"])
        typer.echo(
            f"{labels.get(line.contender, line.contender)} · {line.evaluator}: {name} "
            f"{fmt.format(figure['estimate'])} (95% CI {low} to {high}) over {figure['rows']} "
            f"row(s); {line.errors} not judged (no retrieval data or no expected document)."
        )
    typer.echo(
        "The 95% CI is the range the true pass rate most likely lies in, given this many rows; "
        "'overall' passes an output only when every evaluator passed it; errors are outputs an "
        "evaluator could not judge (left out of the pass rate).",
        err=True,
    )


def _evaluate(evaluation_id: int, concurrency: int) -> ReportCard:
    """Score the evaluation as a job (workers on PostgreSQL, this process otherwise) and
    follow it with a progress bar; Ctrl-C cancels it (scores so far are kept)."""
    from studio.cli.jobs import follow
    from studio.services.evaluations import load_report
    from studio.services.jobs import enqueue_evaluation

    job = enqueue_evaluation(evaluation_id=evaluation_id, actor="cli", concurrency=concurrency)
    view, interrupted = follow(job.id, f"evaluation {evaluation_id}")
    if interrupted or view.state != "succeeded":
        raise StudioError(
            f"Evaluation {evaluation_id} stopped ({view.state}) with {view.done} of "
            f"{view.total} scores saved{': ' + view.error if view.error else ''}.",
            hint=f"Finish it with: studio job retry {job.id}",
        )
    with session_scope() as session:
        return load_report(session=session, evaluation_id=evaluation_id)[1]


def _export(evaluation_id: int, shape: Literal["wide", "long"], out_path: Path) -> None:
    from studio.services.evaluation_export import export_evaluation

    with session_scope() as session:
        data = export_evaluation(session=session, evaluation_id=evaluation_id, shape=shape)
    try:
        out_path.write_bytes(data)
    except OSError as exc:
        raise ConfigError(f"Cannot write {out_path}: {exc}") from exc
    typer.echo(f"Wrote the {shape} results to {out_path}.", err=True)


ShapeOpt = Annotated[str, typer.Option("--format", help="wide (one line per row) or long.")]


@eval_app.command("run")
def eval_run(
    app_ref: Annotated[str, typer.Option("--app", help="App name or id.")],
    dataset: Annotated[str, typer.Option(help="Dataset version id, or a CSV file to upload.")],
    variant: Annotated[
        list[str] | None, typer.Option(help="NAME or NAME@VERSION; repeat to compare.")
    ] = None,
    run: Annotated[list[int] | None, typer.Option(help="An existing run id; repeatable.")] = None,
    evaluator: Annotated[
        list[str] | None, typer.Option(help="ID or ID:key=value,...; repeatable.")
    ] = None,
    config_path: Annotated[
        Path | None, typer.Option("--config", help="A YAML file with an evaluators list.")
    ] = None,
    fail_under: Annotated[
        float | None, typer.Option(min=0, max=1, help="Exit 1 below this overall pass rate.")
    ] = None,
    out_path: Annotated[Path | None, typer.Option("--out", help="Write the CSV here.")] = None,
    shape: ShapeOpt = "wide",
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="Judge calls at a time.")] = 8,
    name: Annotated[str, typer.Option(help="A name for the evaluation.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Evaluate variant versions (their runs are generated when missing) or runs."""
    from studio.cli.apps import _app_id, _dataset_version_id
    from studio.cli.jobs import follow
    from studio.services.evaluation_runs import contender_runs
    from studio.services.evaluations import create_evaluation, get_evaluation
    from studio.services.jobs import enqueue_run

    if shape not in ("wide", "long"):
        raise ConfigError(f"--format must be wide or long (got {shape}).")
    configs, file_fail_under = _configs(list(evaluator or []), config_path)
    threshold = fail_under if fail_under is not None else file_fail_under
    if not variant and not run:
        raise ConfigError(
            "Name what to evaluate.", hint="Add --variant NAME[@VERSION] or --run RUN_ID."
        )
    with session_scope() as session:
        app_id = _app_id(session, app_ref)
        version_id = _dataset_version_id(session, app_id, dataset)
        found = contender_runs(
            session=session, app_id=app_id, dataset_version_id=version_id,
            variants=list(variant or []),
        )  # fmt: skip
    for run_id in found.missing:
        view, interrupted = follow(enqueue_run(run_id=run_id, actor="cli").id, f"run {run_id}")
        if interrupted or view.state != "succeeded":
            raise StudioError(
                f"Run {run_id} did not finish ({view.state}); nothing was evaluated.",
                hint=f"Resume it with: studio run resume {run_id}",
            )
    with session_scope() as session:
        evaluation = create_evaluation(
            session=session, app_id=app_id, run_ids=[*found.run_ids, *(run or [])],
            evaluators=configs, name=name, actor="cli",
        )  # fmt: skip
        assert evaluation.id is not None
        evaluation_id = evaluation.id
        labels = {c["key"]: c["label"] for c in evaluation.contenders}
    card = _evaluate(evaluation_id, concurrency)
    if out_path is not None:
        _export(evaluation_id, shape, out_path)  # type: ignore[arg-type]
    overall = card.overall_pass_rate()
    if as_json:
        print_json({"evaluation_id": evaluation_id, "contenders": labels, **card.as_dict()})
    else:
        _print_card(card, labels)
        with session_scope() as session:
            status = get_evaluation(session=session, evaluation_id=evaluation_id).status
        typer.echo(f"Evaluation {evaluation_id} ({status}): overall pass rate {_pct(overall)}.")
    if threshold is not None and (overall is None or overall < float(threshold)):
        typer.echo(
            f"error: the overall pass rate {_pct(overall)} is below --fail-under "
            f"{float(threshold):.1%}.",
            err=True,
        )
        raise typer.Exit(1)


@eval_app.command("list")
def eval_list(
    app_ref: Annotated[str, typer.Option("--app", help="App name or id.")],
    as_json: JsonOpt = False,
) -> None:
    """The app's evaluations, newest first, with their overall pass rates."""
    from studio.cli.apps import _app_id
    from studio.services.evaluations import list_evaluations

    with session_scope() as session:
        rows = [
            e.model_dump(mode="json")
            for e in list_evaluations(session=session, app_id=_app_id(session, app_ref))
        ]
    if as_json:
        print_json(rows)
        return
    table(
        "Evaluations",
        ["id", "name", "status", "contenders", "evaluators", "overall pass rate", "created"],
        [
            [r["id"], r["name"], r["status"], len(r["contenders"]),
             ", ".join(e["key"] for e in r["evaluators"]),
             _pct(r["summary"].get("overall_pass_rate")), r["created_at"][:19]]
            for r in rows
        ],
    )  # fmt: skip


@eval_app.command("show")
def eval_show(evaluation_id: int, as_json: JsonOpt = False) -> None:
    """An evaluation's report card."""
    from studio.services.evaluations import load_report

    with session_scope() as session:
        data, card = load_report(session=session, evaluation_id=evaluation_id)
        labels = {c["key"]: c["label"] for c in data.evaluation.contenders}
    if as_json:
        print_json({"evaluation_id": evaluation_id, "contenders": labels, **card.as_dict()})
    else:
        _print_card(card, labels)


@eval_app.command("export")
def eval_export(
    evaluation_id: int,
    out_path: Annotated[Path, typer.Option("--out", help="The CSV file to write.")],
    shape: ShapeOpt = "wide",
) -> None:
    """Write an evaluation's results as CSV (wide: one line per row; long: per verdict)."""
    if shape not in ("wide", "long"):
        raise ConfigError(f"--format must be wide or long (got {shape}).")
    _export(evaluation_id, shape, out_path)  # type: ignore[arg-type]
