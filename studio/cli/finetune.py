"""The ``studio finetune`` commands: start, follow, list, inspect, cancel and resume
fine-tuning jobs.

``compare`` scores the resulting model beside its base on the job's validation rows.
``create`` checks the dataset before anything starts and returns at once (the job runs
in its own worker process); ``--wait`` follows it with a progress bar and ends by
printing the resulting model's name. Services are imported by the commands that use them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from studio.cli.output import JsonOpt, print_json, table

if TYPE_CHECKING:
    from studio.services.finetune import FineTuneView

__all__ = ["register_finetune_commands"]

finetune_app = typer.Typer(
    help="Fine-tuning jobs: a dataset version and a base model make a new model.",
    no_args_is_help=True,
)
POLL_S = 1.0


def register_finetune_commands(app: typer.Typer) -> None:
    app.add_typer(finetune_app, name="finetune")


def _loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _row(j: FineTuneView) -> list[Any]:
    steps = f"{j.step}/{j.total_steps}" if j.total_steps else str(j.step or "-")
    state = f"{j.state} (stalled)" if j.stalled else j.state
    return [
        j.id, state, j.base_model, j.dataset_version_id, steps, _loss(j.train_loss),
        _loss(j.val_loss), j.model or "-", j.created_at.strftime("%Y-%m-%d %H:%M"),
    ]  # fmt: skip


HEADERS = ["id", "state", "base", "dataset", "steps", "train loss", "val loss", "model", "created"]


def _ending(j: FineTuneView) -> str:
    if j.state == "succeeded":
        return j.model or ""
    if j.state == "failed":
        return f"Fine-tuning job {j.id} failed: {j.error}"
    if j.state == "cancelled":
        return f"Fine-tuning job {j.id} was cancelled; no model was registered."
    if j.stalled:
        return (
            f"Fine-tuning job {j.id}'s worker stopped. Resume it with "
            f"`studio finetune resume {j.id}`."
        )
    return f"Fine-tuning job {j.id} is {j.state}; see `studio finetune get {j.id}`."


def _follow(job_id: int) -> FineTuneView:
    """A progress bar of the job's steps until it ends; Ctrl-C cancels it."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from studio.services.finetune import cancel_job, get_job

    err = Console(stderr=True)
    columns = (
        TextColumn(f"fine-tuning job {job_id}"),
        TextColumn("{task.fields[state]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("train loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    cancelled = False
    with Progress(*columns, console=err) as bar:
        task = bar.add_task("steps", total=None, state="queued", loss="-")
        while True:
            view = get_job(job_id=job_id)
            bar.update(
                task,
                total=view.total_steps or None,
                completed=view.step,
                state=view.state,
                loss=_loss(view.train_loss),
            )
            if not view.active or view.stalled:
                return view
            try:
                time.sleep(POLL_S)
            except KeyboardInterrupt:
                if not cancelled:
                    cancelled = True
                    cancel_job(job_id=job_id)
                    err.print("Cancelling: the worker stops within a few seconds...")


@finetune_app.command("create")
def create(
    base: Annotated[str, typer.Option("--base", help="The model to start from.")],
    dataset: Annotated[int, typer.Option("--dataset", help="Dataset version id to learn from.")],
    prompt_column: Annotated[str | None, typer.Option(help="Column with the prompts.")] = None,
    completion_column: Annotated[
        str | None, typer.Option(help="Column with the answers to learn.")
    ] = None,
    messages_column: Annotated[
        str | None, typer.Option(help="Instead: a column of chat conversations (JSON).")
    ] = None,
    epochs: Annotated[int, typer.Option(min=1, max=20, help="Passes over the rows.")] = 3,
    learning_rate: Annotated[float, typer.Option(help="Optimiser step size.")] = 1e-3,
    lora_rank: Annotated[int, typer.Option(min=1, max=64, help="LoRA adapter size.")] = 8,
    batch_size: Annotated[int, typer.Option(min=1, max=64, help="Examples per step.")] = 4,
    validation_share: Annotated[
        float, typer.Option(min=0.0, max=0.5, help="Share of rows kept for validation.")
    ] = 0.1,
    name: Annotated[str | None, typer.Option(help="Name of the resulting model.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the job until it ends.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check the dataset, then start a fine-tuning job (in its own worker process)."""
    from studio.services.finetune import FineTuneCreate, create_job

    data = FineTuneCreate(
        base_model=base,
        dataset_version_id=dataset,
        prompt_column=prompt_column,
        completion_column=completion_column,
        messages_column=messages_column,
        epochs=epochs,
        learning_rate=learning_rate,
        lora_rank=lora_rank,
        batch_size=batch_size,
        validation_share=validation_share,
        name=name,
    )
    job = create_job(data=data, actor="cli")
    if not wait:
        if as_json:
            print_json(job.model_dump(mode="json"))
        else:
            typer.echo(
                f"Fine-tuning job {job.id} queued: {job.train_rows} training rows, "
                f"{job.validation_rows} validation rows, on {job.base_model}. Follow it with "
                f"`studio finetune get {job.id}`."
            )
        return
    job = _follow(job.id)
    if as_json:
        print_json(job.model_dump(mode="json"))
    else:
        typer.echo(_ending(job))
    if job.state != "succeeded":
        raise typer.Exit(1)


@finetune_app.command("list")
def list_(
    app: Annotated[int | None, typer.Option(help="Only this app's jobs (app id).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fine-tuning jobs, newest first."""
    from studio.services.finetune import list_jobs

    jobs = list_jobs(app_id=app)
    if as_json:
        print_json([j.model_dump(mode="json") for j in jobs])
        return
    if not jobs:
        typer.echo(
            "No fine-tuning jobs yet. Start one with `studio finetune create --base "
            "builtin/smollm2-135m-instruct --dataset VERSION_ID --prompt-column C "
            "--completion-column C`."
        )
        return
    table("Fine-tuning jobs", HEADERS, [_row(j) for j in jobs])


@finetune_app.command("get")
def get(job_id: int, as_json: JsonOpt = False) -> None:
    """One job: state, steps, losses, hyperparameters, the resulting model."""
    from studio.services.finetune import get_job

    j = get_job(job_id=job_id)
    if as_json:
        print_json(j.model_dump(mode="json"))
        return
    fields = dict(zip(HEADERS, _row(j), strict=True))
    fields.update(
        backend=j.backend,
        rows=f"{j.train_rows} training, {j.validation_rows} validation",
        columns=", ".join(f"{k}={v}" for k, v in j.columns.items()),
        hyperparameters=", ".join(f"{k}={v}" for k, v in j.hyperparameters.items()),
        started_by=j.actor,
        took=f"{j.elapsed_s:.0f} s",
    )
    if j.eta_s is not None:
        fields["time left"] = f"about {j.eta_s:.0f} s"
    if j.remote_id:
        fields["provider job"] = j.remote_id
    if j.error:
        fields["error"] = j.error
    table(f"Fine-tuning job {j.id}", ["field", "value"], [[k, v] for k, v in fields.items()])
    if j.stalled:
        typer.echo(_ending(j))


@finetune_app.command("events")
def events(job_id: int, as_json: JsonOpt = False) -> None:
    """The job's log and its losses step by step."""
    from studio.services.finetune import job_logs, job_metrics

    logs, metrics = job_logs(job_id=job_id), job_metrics(job_id=job_id)
    if as_json:
        print_json(
            {
                "logs": [r.model_dump(mode="json") for r in logs],
                "metrics": [m.model_dump(mode="json") for m in metrics],
            }
        )
        return
    table(
        f"Fine-tuning job {job_id}: log",
        ["at", "level", "message"],
        [[r.at.strftime("%H:%M:%S"), r.level, r.message] for r in logs],
    )
    if metrics:
        table(
            "Losses (lower is better: how far the model's answers are from the examples)",
            ["step", "epoch", "train loss", "val loss"],
            [[m.step, f"{m.epoch:.2f}", _loss(m.train_loss), _loss(m.val_loss)] for m in metrics],
        )


@finetune_app.command("cancel")
def cancel(job_id: int, as_json: JsonOpt = False) -> None:
    """Stop a job; no model is registered."""
    from studio.services.finetune import cancel_job, wait_job

    cancel_job(job_id=job_id)
    j = wait_job(job_id=job_id, timeout=15)
    if as_json:
        print_json(j.model_dump(mode="json"))
    elif j.active:
        typer.echo(f"Fine-tuning job {job_id} is stopping.")
    else:
        typer.echo(f"Fine-tuning job {job_id} is {j.state}.")


@finetune_app.command("resume")
def resume(
    job_id: int,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the job until it ends.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Start a new worker for a job whose worker stopped; it goes on from its last checkpoint."""
    from studio.services.finetune import resume_job

    j = resume_job(job_id=job_id)
    if wait:
        j = _follow(job_id)
    if as_json:
        print_json(j.model_dump(mode="json"))
    else:
        typer.echo(_ending(j) if wait else f"Fine-tuning job {job_id} resumed.")


@finetune_app.command("compare")
def compare(
    job_id: int,
    out_path: Annotated[
        Path | None, typer.Option("--out", help="Write the rows side by side as CSV.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare the job's model with its base on the job's validation rows (exact match and
    ROUGE-L against the expected answers, with a paired test); again: the same comparison."""
    from studio.cli.compare import finish_comparison
    from studio.services.finetune_compare import compare_with_base
    from studio.store import session_scope

    with session_scope() as session:
        comparison, missing = compare_with_base(session=session, job_id=job_id, actor="cli")
        comparison_id, evaluation_id = comparison.id or 0, comparison.evaluation_id
        name = comparison.name
    if not as_json:
        typer.echo(f"Comparison {comparison_id}: {name} (open it on the Compare page).")
    finish_comparison(comparison_id, evaluation_id, missing, 8, out_path, as_json)
