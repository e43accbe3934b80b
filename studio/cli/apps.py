"""The ``studio`` commands for apps, datasets, variants and runs.

``studio run --app A --variant V --dataset D`` runs a variant over a dataset
with a progress bar; Ctrl-C stops it, keeping every finished row, and
``studio run resume RUN_ID`` answers only the rows still missing. Like the rest
of the CLI, human output is tables, ``--json`` is for scripts, and errors are
one line (:func:`studio.cli.main` prints every :class:`StudioError`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlmodel import Session, SQLModel

from studio.cli.app_members import member_app
from studio.cli.output import JsonOpt, print_json, table
from studio.cli.variant_retrieval import (
    HybridOpt,
    KbOpt,
    QueryOpt,
    RerankerOpt,
    TopKOpt,
    retrieval_doc,
    variant_retrieval,
)
from studio.core.errors import ConfigError, NotFoundError, StudioError
from studio.core.ids import row_id
from studio.services.apps import create_app, get_app, list_apps
from studio.store import session_scope
from studio.store.tables import Dataset, Run

# The other services (pandas, the model layer, the run engine) and rich's progress bar are
# imported by the commands that use them, so `studio app list` starts fast (bench_cli.py).
__all__ = ["register_app_commands"]

app_app = typer.Typer(help="Apps: one per use case.", no_args_is_help=True)
dataset_app = typer.Typer(help="Datasets of an app (CSV or JSON Lines).", no_args_is_help=True)
variant_app = typer.Typer(help="Variants: versioned prompt configurations.", no_args_is_help=True)
run_app = typer.Typer(
    help="Run a variant over a dataset (`studio run --app ... `), or resume a run.",
    invoke_without_command=True,
)

AppOpt = Annotated[str, typer.Option("--app", help="App name or id.")]
app_app.add_typer(member_app, name="member")  # studio app member add|remove|list


def register_app_commands(app: typer.Typer) -> None:
    """Add the app, dataset, variant and run commands to the ``studio`` CLI."""
    app.add_typer(app_app, name="app")
    app.add_typer(dataset_app, name="dataset")
    app.add_typer(variant_app, name="variant")
    app.add_typer(run_app, name="run")


def _app_id(session: Session, ref: str) -> int:
    found = get_app(session=session, ref=ref)
    assert found.id is not None
    return found.id


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"File not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"Cannot read {path}: {exc}") from exc


def _read_text(path: Path) -> str:
    try:
        return _read_bytes(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text.") from exc


# -- apps -------------------------------------------------------------------------------


@app_app.command("create")
def app_create(
    name: str,
    description: Annotated[str, typer.Option(help="What the app is for.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Create an app."""
    with session_scope() as session:
        row = create_app(session=session, name=name, description=description)
        data = row.model_dump(mode="json")
    print_json(data) if as_json else typer.echo(f"Created app '{data['name']}' ({data['id']}).")


@app_app.command("list")
def app_list(
    archived: Annotated[bool, typer.Option(help="Include archived apps.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List apps, the most recently active first."""
    with session_scope() as session:
        rows = list_apps(session=session, include_archived=archived)
    if as_json:
        print_json(rows)
        return
    table(
        "Apps",
        ["id", "name", "variants", "datasets", "runs", "last activity", "description"],
        [
            [
                r.id,
                r.name,
                r.variants,
                r.datasets,
                r.runs,
                f"{r.last_activity:%Y-%m-%d %H:%M}",
                r.description,
            ]
            for r in rows
        ],
    )


# -- datasets ---------------------------------------------------------------------------


@dataset_app.command("upload")
def dataset_upload(
    file: Path,
    app_ref: AppOpt,
    name: Annotated[str | None, typer.Option(help="Dataset name (default: file name).")] = None,
    expected_column: Annotated[
        str | None, typer.Option(help="The column holding expected outputs.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Upload a CSV or JSON Lines file as a new dataset (or a new version of NAME)."""
    from studio.services.datasets import upload_dataset

    data = _read_bytes(file)
    with session_scope() as session:
        version = upload_dataset(
            session=session,
            app_id=_app_id(session, app_ref),
            name=name or file.stem,
            data=data,
            filename=file.name,
            expected_column=expected_column,
        )
        info: dict[str, Any] = {
            "dataset_id": version.dataset_id,
            "version_id": version.id,
            "version": version.version,
            "rows": version.row_count,
            "columns": list(version.columns),
        }
    if as_json:
        print_json(info)
        return
    typer.echo(
        f"Uploaded dataset {info['dataset_id']} version {info['version']} "
        f"(version id {info['version_id']}): {info['rows']} rows, "
        f"columns: {', '.join(info['columns'])}."
    )


@dataset_app.command("list")
def dataset_list(app_ref: AppOpt, as_json: JsonOpt = False) -> None:
    """List an app's datasets with their latest versions."""
    from studio.services.datasets import list_datasets

    with session_scope() as session:
        rows = list_datasets(session=session, app_id=_app_id(session, app_ref))
    if as_json:
        print_json(rows)
        return
    table(
        "Datasets",
        ["id", "name", "version", "version id", "rows", "columns", "expected"],
        [
            [
                r.id,
                r.name,
                r.latest_version,
                r.latest_version_id,
                r.row_count,
                ", ".join(r.columns),
                r.expected_column,
            ]
            for r in rows
        ],
    )


# -- variants ---------------------------------------------------------------------------


def _version_info(row: SQLModel) -> dict[str, Any]:
    return row.model_dump(mode="json")


@variant_app.command("create")
def variant_create(
    app_ref: AppOpt,
    name: Annotated[str, typer.Option(help="Variant name.")],
    model: Annotated[str, typer.Option(help="Model name, e.g. builtin/smollm2-135m-instruct.")],
    prompt: Annotated[str | None, typer.Option(help="Prompt template text.")] = None,
    prompt_file: Annotated[Path | None, typer.Option(help="Read the prompt from a file.")] = None,
    system: Annotated[str | None, typer.Option(help="System prompt (makes a chat).")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Upper bound on tokens.")] = None,
    temperature: Annotated[float | None, typer.Option(help="Temperature in [0, 1].")] = None,
    note: Annotated[str, typer.Option(help="A note on this version.")] = "",
    kb: KbOpt = None,
    query_template: QueryOpt = None,
    top_k: TopKOpt = None,
    reranker: RerankerOpt = None,
    hybrid: HybridOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a variant: a model and a prompt template over the dataset's columns
    (with --kb, a retrieval step fills {{context}} from a knowledge base)."""
    from studio.services.variants import create_variant, parse_config

    if (prompt is None) == (prompt_file is None):
        raise ConfigError("Give the prompt with exactly one of --prompt or --prompt-file.")
    text = prompt if prompt_file is None else _read_text(prompt_file)
    if system is not None:
        prompt_doc: dict[str, Any] = {
            "kind": "chat",
            "system": system,
            "messages": [{"role": "user", "content": text}],
        }
    else:
        prompt_doc = {"kind": "completion", "template": text}
    params = {"max_tokens": max_tokens, "temperature": temperature}
    with session_scope() as session:
        app_id = _app_id(session, app_ref)
        config = parse_config(
            {
                "model": model,
                "prompt": prompt_doc,
                "parameters": {k: v for k, v in params.items() if v is not None},
                "retrieval": retrieval_doc(
                    session, app_id, kb, query_template, top_k, reranker, hybrid
                ),
            }
        )
        version = create_variant(
            session=session, app_id=app_id, name=name, config=config, note=note
        )
        info = _version_info(version)
    if as_json:
        print_json(info)
        return
    typer.echo(f"Created variant '{name}' version 1 (version id {info['id']}).")


@variant_app.command("list")
def variant_list(
    app_ref: AppOpt,
    archived: Annotated[bool, typer.Option(help="Include archived variants.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List an app's variants with their latest versions."""
    from studio.services.variants import list_variants

    with session_scope() as session:
        app_id = _app_id(session, app_ref)
        rows = list_variants(session=session, app_id=app_id, include_archived=archived)
    if as_json:
        print_json(rows)
        return
    table(
        "Variants",
        ["id", "name", "latest version", "version id", "model", "archived"],
        [[r.id, r.name, r.latest_version, r.latest_version_id, r.model, r.archived] for r in rows],
    )


@variant_app.command("history")
def variant_history(name: str, app_ref: AppOpt, as_json: JsonOpt = False) -> None:
    """Show every version of a variant, newest first."""
    from studio.services.variants import get_variant, history

    with session_scope() as session:
        variant = get_variant(session=session, app_id=_app_id(session, app_ref), ref=name)
        assert variant.id is not None
        rows = [_version_info(v) for v in history(session=session, variant_id=variant.id)]
    if as_json:
        print_json(rows)
        return
    table(
        f"History of '{name}'",
        ["version", "id", "model", "kind", "parameters", "note", "saved"],
        [
            [
                r["version"],
                r["id"],
                r["model"],
                r["prompt_kind"],
                json.dumps(r["parameters"]),
                r["note"],
                r["created_at"],
            ]
            for r in rows
        ],
    )


variant_app.command("retrieval")(variant_retrieval)

# -- runs -------------------------------------------------------------------------------


def _dataset_version_id(session: Session, app_id: int, ref: str) -> int:
    """A dataset version id, or a CSV/JSONL path uploaded as a new dataset."""
    from studio.services.datasets import get_version, upload_dataset

    path = Path(ref)
    if row_id(ref) is not None and not path.is_file():
        version = get_version(session=session, version_id=row_id(ref) or 0)
        dataset = session.get(Dataset, version.dataset_id)
        if dataset is None or dataset.app_id != app_id:
            raise NotFoundError(
                f"Dataset version {ref} does not belong to this app.",
                hint="See `studio dataset list --app APP`.",
            )
        return int(ref)
    if not path.is_file():
        raise ConfigError(
            f"No dataset version or file '{ref}'.",
            hint="Give a dataset version id from `studio dataset list`, or a CSV file.",
        )
    uploaded = upload_dataset(
        session=session,
        app_id=app_id,
        name=path.stem,
        data=_read_bytes(path),
        filename=path.name,
    )
    assert uploaded.id is not None
    return uploaded.id


def _summary(session: Session, run: Run, wall_s: float) -> dict[str, Any]:
    from studio.services.run_results import summarize

    totals = summarize(session=session, run=run)  # the same figures the Playground shows
    return {
        "run_id": totals.id,
        "status": totals.status,
        "rows": totals.rows,
        "total_rows": totals.total,
        "errors": totals.errors,
        "prompt_tokens": totals.prompt_tokens,
        "response_tokens": totals.response_tokens,
        "cost": round(totals.cost, 6),
        "wall_time_s": round(wall_s, 2),
    }


def _write_results(session: Session, run: Run, path: Path) -> int:
    """Write the run's results next to the dataset's cells; returns the row count."""
    from studio.services.run_results import export_results
    from studio.services.runs import list_results

    assert run.id is not None
    as_jsonl = path.suffix.lower() in (".jsonl", ".ndjson")
    data = export_results(session=session, run_id=run.id, fmt="jsonl" if as_jsonl else "csv")
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise ConfigError(f"Cannot write {path}: {exc}") from exc
    return len(list_results(session=session, run_id=run.id))


def _finish(
    run_id: int, started: float, out_path: Path | None, as_json: bool, detach: bool = False
) -> None:
    """Run (or resume) the run as a job and follow it; ``detach`` returns once queued."""
    from studio.cli.jobs import follow
    from studio.services.jobs import enqueue_run

    job = enqueue_run(run_id=run_id, actor="cli")
    if detach:
        if as_json:
            print_json(job.model_dump(mode="json"))
        else:
            typer.echo(f"Run {run_id} is job {job.id} ({job.executor}). Follow it with: "
                       f"studio job show {job.id}")  # fmt: skip
        return
    view, interrupted = follow(job.id, f"run {run_id}")
    if view.state == "failed" and view.error:
        raise StudioError(
            f"Run {run_id} stopped: {view.error}",
            hint=f"Resume it with: studio run resume {run_id}",
        )
    wall = time.perf_counter() - started
    with session_scope() as session:
        run = session.get(Run, run_id)
        assert run is not None
        summary = _summary(session, run, wall)
        written = _write_results(session, run, out_path) if out_path is not None else None
    if written is not None:
        summary["out"] = str(out_path)
    if as_json:
        print_json(summary)
    else:
        table("Run", ["field", "value"], [[k, v] for k, v in summary.items()])
        if written is not None:
            typer.echo(f"Wrote {written} rows to {out_path}.")
    if interrupted or summary["rows"] < summary["total_rows"]:
        stopped = (
            f"Run {run_id} stopped with {summary['rows']} of {summary['total_rows']} rows saved."
        )
        resume = f"Resume it with: studio run resume {run_id}"
        if not interrupted:
            raise StudioError(stopped, hint=resume)
        typer.echo(f"{stopped} {resume}", err=True)
        raise typer.Abort()  # main() reports the interruption and exits 130


OutOpt = Annotated[
    Path | None, typer.Option("--out", help="Write results to a .csv or .jsonl file.")
]
DetachOpt = Annotated[
    bool, typer.Option("--detach", help="Queue the run and return; see `studio job list`.")
]


@run_app.callback()
def run_start(
    ctx: typer.Context,
    app_ref: Annotated[str | None, typer.Option("--app", help="App name or id.")] = None,
    variant: Annotated[str | None, typer.Option(help="Variant name or id.")] = None,
    dataset: Annotated[
        str | None, typer.Option(help="Dataset version id, or a CSV file to upload.")
    ] = None,
    concurrency: Annotated[int | None, typer.Option(help="Calls at a time.")] = None,
    out_path: OutOpt = None,
    fresh: Annotated[bool, typer.Option(help="Ignore cached answers.")] = False,
    detach: DetachOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Run a variant's latest version over every row of a dataset."""
    if ctx.invoked_subcommand is not None:
        return
    from studio.services.runs import RunConfig, concurrency_note, create_run
    from studio.services.variants import get_variant, latest_version, version_config

    given = {"--app": app_ref, "--variant": variant, "--dataset": dataset}
    missing = [flag for flag, value in given.items() if value is None]
    if missing:
        raise ConfigError(
            f"Missing {', '.join(missing)}.",
            hint="Usage: studio run --app APP --variant NAME --dataset ID|FILE",
        )
    assert app_ref is not None and variant is not None and dataset is not None
    started = time.perf_counter()
    with session_scope() as session:
        app_id = _app_id(session, app_ref)
        found = get_variant(session=session, app_id=app_id, ref=variant)
        assert found.id is not None
        version = latest_version(session=session, variant_id=found.id)
        config = version_config(version)
        dataset_version_id = _dataset_version_id(session, app_id, dataset)
        try:
            run_config = RunConfig(
                model=config.model,
                prompt=config.prompt,
                parameters=config.parameter_dict(),
                concurrency=concurrency,
                use_cache=not fresh,
            )
        except ValueError as exc:
            raise ConfigError(f"Invalid run options: {exc}") from exc
        run = create_run(
            session=session,
            app_id=app_id,
            dataset_version_id=dataset_version_id,
            config=run_config,
            variant_version_id=version.id,
        )
        assert run.id is not None
        run_id = run.id
        note = concurrency_note(session=session, model=run.model, concurrency=concurrency)
    if note:  # the connection's own limit caps --concurrency: say so before the wait
        typer.echo(note, err=True)
    _finish(run_id, started, out_path, as_json, detach)


@run_app.command("resume")
def run_resume(
    run_id: int, out_path: OutOpt = None, detach: DetachOpt = False, as_json: JsonOpt = False
) -> None:
    """Answer only the rows a run is still missing (after Ctrl-C or a crash)."""
    with session_scope() as session:
        if session.get(Run, run_id) is None:
            raise NotFoundError(f"No run {run_id}.", hint="Check the run id.")
    _finish(run_id, time.perf_counter(), out_path, as_json, detach)
