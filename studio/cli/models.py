"""The ``studio`` commands of the Models API: model templates, models, model groups.

Templates → models → deployments → execute, as in the platform's Models API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from sqlmodel import Session

from studio.cli.output import JsonOpt, dump_row, fields, out, print_json, read_json, table
from studio.cli.output import session as _session
from studio.core.errors import ConfigError, StudioError
from studio.core.schemas import model_schemas, parse_document
from studio.models import registry
from studio.models.specs import ModelCreate, TemplateCreate
from studio.models.usage import usage_statistics

template_app = typer.Typer(help="Model templates (creating them needs an administrator).")
model_app = typer.Typer(help="Models: create, inspect, validate requests, execute, usage.")
group_app = typer.Typer(help="Model groups (namespaces for models).")


def register_model_commands(app: typer.Typer) -> None:
    """Add the model-template, model and model-group commands to the ``studio`` CLI."""
    app.add_typer(template_app, name="model-template")
    app.add_typer(model_app, name="model")
    app.add_typer(group_app, name="model-group")


# -- model templates ----------------------------------------------------------------------


@template_app.command("list")
def template_list(as_json: JsonOpt = False) -> None:
    """List model templates."""
    with _session() as session:
        rows = registry.list_templates(session=session)
        if as_json:
            print_json([dump_row(r) for r in rows])
            return
        table(
            "Model templates",
            ["id", "name", "model_type", "runtime", "parameters", "system"],
            [
                [
                    r.id,
                    r.name,
                    r.model_type,
                    r.runtime,
                    ", ".join(
                        p["name"] + ("*" if p.get("required") else "")
                        for p in r.model_creation_parameters_schema.get("parameters", [])
                    ),
                    "yes" if r.is_system else "",
                ]
                for r in rows
            ],
        )
        out.print("* required parameter")


@template_app.command("create")
def template_create(file: Path, as_json: JsonOpt = False) -> None:
    """Create a model template from a JSON file (administrators; the CLI acts as one)."""
    data = parse_document(TemplateCreate, read_json(file), "model template")
    with _session() as session:
        row = registry.create_template(session=session, data=data, local=True)
        print_json(dump_row(row)) if as_json else fields(
            "Output of model-template create", dump_row(row)
        )


@template_app.command("get")
def template_get(ref: str, as_json: JsonOpt = False) -> None:
    """Show one model template (by id or name)."""
    with _session() as session:
        row = registry.get_template(session=session, ref=ref)
        print_json(dump_row(row)) if as_json else fields("Model template", dump_row(row))


@template_app.command("delete")
def template_delete(ref: str) -> None:
    """Delete a model template no model uses (administrators; the CLI acts as one)."""
    with _session() as session:
        registry.delete_template(session=session, ref=ref)
    typer.echo(f"Deleted model template {ref}.")


@template_app.command("show-model-schemas")
def show_model_schemas() -> None:
    """Print the JSON Schemas of every model type's request and response."""
    print_json(model_schemas())


# -- models ---------------------------------------------------------------------------------


def _model_row(session: Session, ref: str) -> dict[str, Any]:
    resolved = registry.resolve_model(session=session, ref=ref)
    data = dump_row(resolved.model)
    dep = resolved.deployment
    data["status"] = dep.status if dep else "N/A"
    data["deployment_id"] = dep.id if dep else None
    if dep and dep.status_reason:
        data["status_reason"] = dep.status_reason
    return data


@model_app.command("list")
def model_list(as_json: JsonOpt = False) -> None:
    """List built-in and custom models with their deployment status."""
    with _session() as session:
        rows = [r.model_dump() for r in registry.model_overview(session=session)]
        if as_json:
            print_json(rows)
            return
        table(
            "Models",
            ["name", "type", "status", "context", "id"],
            [[r["name"], r["model_type"], r["status"], r["context_window"], r["id"]] for r in rows],
        )


@model_app.command("create")
def model_create(
    file: Path,
    model_template_id: Annotated[
        str | None, typer.Option("--model-template-id", help="Template id or name.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a model from a JSON file; its deployment starts at once."""
    payload = read_json(file)
    if model_template_id and isinstance(payload, dict):
        payload["model_template_id"] = model_template_id
    data = parse_document(ModelCreate, payload, "model")
    with _session() as session:
        model = registry.create_model(session=session, data=data, local=True)
        info = _model_row(session, model.id)
    if as_json:
        print_json(info)
        return
    fields("Output of model create", info)
    if info["status"] == "FAILED":
        raise typer.Exit(code=1)


@model_app.command("get")
def model_get(ref: str, as_json: JsonOpt = False) -> None:
    """Show a model's status (id, name or deployment)."""
    with _session() as session:
        info = _model_row(session, ref)
    if as_json:
        print_json(info)
        return
    keys = ["id", "name", "model_type", "status", "status_reason", "deployment_id"]
    fields("Model", {k: info[k] for k in keys if k in info})


@model_app.command("describe")
def model_describe(ref: str, as_json: JsonOpt = False) -> None:
    """Show everything about a model, its template and deployments."""
    with _session() as session:
        info = _model_row(session, ref)
        if info.get("model_template_id"):
            tpl = registry.get_template(session=session, ref=info["model_template_id"])
            info["template"] = {"name": tpl.name, "runtime": tpl.runtime}
        info["deployments"] = [
            {"id": d.id, "name": d.name, "status": d.status, "builtin": d.is_builtin}
            for d in registry.list_deployments(session=session, model_id=info["id"])
        ]
    print_json(info) if as_json else fields("Model", info)


@model_app.command("deploy")
def model_deploy(ref: str, as_json: JsonOpt = False) -> None:
    """(Re)start a model's deployment and report READY or FAILED with the reason."""
    with _session() as session:
        dep = registry.deploy_model(session=session, ref=ref)
        data = dump_row(dep)
    print_json(data) if as_json else fields("Deployment", data)
    if dep.status == "FAILED":
        raise typer.Exit(code=1)


@model_app.command("validate-request")
def model_validate_request(ref: str, file: Path) -> None:
    """Check a request file against the model type's schema without calling the model."""
    payload = read_json(file)
    with _session() as session:
        req = registry.validate_model_request(session=session, ref=ref, payload=payload)
    typer.echo(f"Request is valid ({type(req).__name__}).")


@model_app.command("execute")
def model_execute(ref: str, file: Path, as_json: JsonOpt = False) -> None:
    """Execute a request file against a model (id, name, or connection/model)."""
    payload = read_json(file)
    with _session() as session:
        response = registry.execute(session=session, ref=ref, payload=payload, source="cli")
    if as_json:
        print_json(response)
        return
    _print_human_response(response.model_dump(mode="json"))


def _print_human_response(data: dict[str, Any]) -> None:
    if "embeddings" in data:
        rows = [
            [text[:60], len(vec), ", ".join(f"{x:.4f}" for x in vec[:4]) + ", ..."]
            for text, vec in data["embeddings"]
        ]
        table("Embeddings", ["text", "dimensions", "first values"], rows)
        out.print(f"tokens used: {data.get('tokens_used')}")
        return
    print_json(data)


@model_app.command("delete")
def model_delete(ref: str) -> None:
    """Delete a custom model and its deployment (built-ins cannot be deleted)."""
    with _session() as session:
        registry.delete_model(session=session, ref=ref)
    typer.echo(f"Deleted model {ref}.")


@model_app.command("usage")
def model_usage(
    ref: str,
    by: Annotated[
        str, typer.Option(help="Aggregate by 'deployment' or by model 'name'.")
    ] = "deployment",
    as_json: JsonOpt = False,
) -> None:
    """Usage statistics by day: requests, tokens, errors, cost, latency."""
    with _session() as session:
        if by not in ("deployment", "name"):
            raise ConfigError("--by must be 'deployment' or 'name'.")
        try:
            resolved = registry.resolve_model(session=session, ref=ref)
            name, dep = resolved.model.name, resolved.deployment
        except StudioError:
            if by != "name":
                raise
            name, dep = ref, None
        stats = (
            usage_statistics(session=session, deployment_id=dep.id if dep else "-")
            if by == "deployment"
            else usage_statistics(session=session, model_name=name)
        )
    if as_json:
        print_json(stats)
        return
    table(
        f"Usage of {name} (by {by})",
        ["day", "requests", "errors", "prompt tok", "response tok", "cost $", "avg ms", "max ms"],
        [
            [
                d.day,
                d.requests,
                d.errors,
                d.prompt_tokens,
                d.response_tokens,
                f"{d.cost:.6f}",
                d.avg_latency_ms,
                d.max_latency_ms,
            ]
            for d in stats.by_day
        ],
    )
    out.print(
        f"total: {stats.requests} requests, {stats.errors} errors, "
        f"{stats.prompt_tokens + stats.response_tokens} tokens, ${stats.cost:.6f}"
    )


@group_app.command("list")
def group_list(as_json: JsonOpt = False) -> None:
    """List model groups."""
    with _session() as session:
        rows = [dump_row(g) for g in registry.list_model_groups(session=session)]
    if as_json:
        print_json(rows)
        return
    table(
        "Model groups",
        ["id", "name", "description"],
        [[r["id"], r["name"], r["description"]] for r in rows],
    )


@group_app.command("create")
def group_create(name: str, description: str = "") -> None:
    """Create a model group."""
    with _session() as session:
        row = registry.create_model_group(session=session, name=name, description=description)
    typer.echo(f"Created model group '{row.name}' ({row.id}).")
