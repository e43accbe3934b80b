"""The ``studio worker`` and ``studio job`` commands, and following a job with a progress bar.

``studio worker`` executes job parts from the queue in PostgreSQL until SIGTERM
or Ctrl-C (its running parts go back to the queue for another worker).
``studio job list | show | cancel | retry`` inspect and steer jobs from any
machine that reaches the database. Like the rest of the CLI, the services are
imported by the commands that use them, so ``studio --help`` stays fast.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from studio.cli.output import JsonOpt, print_json, table

if TYPE_CHECKING:
    from studio.services.jobs import JobView

__all__ = ["follow", "register_job_commands"]

job_app = typer.Typer(
    help="Jobs: long work (runs) executed by workers, or by the process that started it.",
    no_args_is_help=True,
)
POLL_S = 0.25


def register_job_commands(app: typer.Typer) -> None:
    app.command("worker")(worker)
    app.add_typer(job_app, name="job")


def worker(
    concurrency: Annotated[
        int, typer.Option(min=1, max=256, help="Parts at a time (each makes its run's share).")
    ] = 4,
    queues: Annotated[
        list[str] | None,
        typer.Option("--queues", help="Queues to take parts from (default: runs)."),
    ] = None,
) -> None:
    """Execute job parts from the queue (PostgreSQL) until SIGTERM or Ctrl-C."""
    from studio.services.job_queue import serve, worker_name

    typer.echo(f"Worker {worker_name()} takes up to {concurrency} parts at a time.", err=True)
    serve(concurrency=concurrency, queues=queues)


def _pause() -> None:
    time.sleep(POLL_S)


def follow(job_id: int, label: str) -> tuple[JobView, bool]:
    """Show the job's progress until it ends; Ctrl-C cancels it. (last view, interrupted)"""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from studio.services.jobs import cancel_job, get_job

    err = Console(stderr=True)
    columns = (
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("errors: {task.fields[errors]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    interrupted = False
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task("rows", total=None, errors=0)
        while True:
            view = get_job(job_id=job_id)
            bar.update(task, total=view.total, completed=view.done, errors=view.errors)
            if not view.active:
                return view, interrupted
            try:
                _pause()
            except KeyboardInterrupt:
                if not interrupted:
                    interrupted = True
                    cancel_job(job_id=job_id)
                    err.print("Stopping: waiting for the calls in flight to finish...")


def _row(j: JobView) -> list[Any]:
    progress = f"{j.done}/{j.total}" if j.total else "-"
    return [
        j.id, j.title, j.state, progress, j.errors, j.actor, j.executor,
        j.created_at.strftime("%Y-%m-%d %H:%M:%S"), f"{j.elapsed_s:.0f} s",
    ]  # fmt: skip


HEADERS = ["id", "what", "state", "rows", "errors", "started by", "executor", "created", "took"]


@job_app.command("list")
def job_list(
    every: Annotated[bool, typer.Option("--all", help="Finished jobs too.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Jobs running and queued (newest first); --all adds finished ones."""
    from studio.services.jobs import ACTIVE, list_jobs

    jobs = list_jobs(states=None if every else ACTIVE)
    if as_json:
        print_json([j.model_dump(mode="json") for j in jobs])
        return
    if not jobs:
        typer.echo(
            "No jobs running or queued. Start one with `studio run --app APP --variant NAME "
            "--dataset ID` (or Generate in the Playground); `studio job list --all` shows "
            "finished ones."
        )
        return
    table("Jobs", HEADERS, [_row(j) for j in jobs])


@job_app.command("show")
def job_show(job_id: int, as_json: JsonOpt = False) -> None:
    """One job: state, progress, who started it, timings, error."""
    from studio.services.jobs import get_job

    j = get_job(job_id=job_id)
    if as_json:
        print_json(j.model_dump(mode="json"))
        return
    fields = dict(zip(HEADERS, _row(j), strict=True))
    fields.update(parts=f"{j.parts_done}/{j.parts} done", cancel_requested=j.cancel_requested)
    if j.error:
        fields["error"] = j.error
    table(f"Job {j.id}", ["field", "value"], [[k, v] for k, v in fields.items()])


@job_app.command("cancel")
def job_cancel(job_id: int, as_json: JsonOpt = False) -> None:
    """Stop a job everywhere (within a second or two); finished rows stay saved."""
    from studio.services.jobs import cancel_job, wait_job

    cancel_job(job_id=job_id)
    j = wait_job(job_id=job_id, timeout=10)
    if as_json:
        print_json(j.model_dump(mode="json"))
        return
    if j.active:
        typer.echo(f"Job {job_id} is stopping: its calls in flight are finishing.")
    else:
        typer.echo(f"Job {job_id} is {j.state} with {j.done} of {j.total} rows saved.")


@job_app.command("retry")
def job_retry(
    job_id: int,
    detach: Annotated[bool, typer.Option(help="Return at once; see `studio job show`.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run a stopped job's unfinished parts again (only the missing rows are answered)."""
    from studio.services.jobs import retry_job

    j = retry_job(job_id=job_id)
    if not detach:
        j, _ = follow(job_id, f"job {job_id}")
    if as_json:
        print_json(j.model_dump(mode="json"))
    else:
        typer.echo(f"Job {job_id} is {j.state} with {j.done} of {j.total} rows saved.")
