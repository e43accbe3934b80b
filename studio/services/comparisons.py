"""Comparisons: two to eight contenders side by side on one dataset version.

A contender is a saved variant version (``variant:Invite@2``) or a prompt
configuration not saved yet (``model:builtin/smollm2-135m-instruct,temperature=0.7``:
the same prompt on another model or with other parameters). Each has one run;
a finished run of the same variant version, or of the same configuration, is
reused. One evaluation scores them all, so the summary can test every contender
against the baseline on the rows they share (:mod:`studio.evaluators.paired`).
A comparison can be extended with one more contender: the runs, scores and
preferences it has are kept.

Rules: a comparison is its app's (:mod:`studio.services.app_access`): reading needs access
to the app, creating and extending also the admin or member role; reviewers none.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from studio.core.errors import ConfigError, NotFoundError, StudioError
from studio.core.templates import PromptTemplate
from studio.services.app_access import check_app
from studio.services.evaluation_runs import add_runs, contender_runs
from studio.services.evaluations import EvaluatorConfig, contender_key, create_evaluation
from studio.services.members import require_member_role
from studio.services.runs import RunConfig, create_run
from studio.services.variants import get_version as get_variant_version
from studio.services.variants import version_config
from studio.store.tables import Comparison, Run

__all__ = [
    "MAX_CONTENDERS",
    "ContenderSpec",
    "add_contender",
    "create_comparison",
    "get_comparison",
    "list_comparisons",
    "parse_contender",
]

MAX_CONTENDERS = 8


class ContenderSpec(BaseModel):
    """A variant version (``variant``), or a model with parameters and a prompt (``model``;
    without ``prompt`` the comparison's first variant's prompt is used)."""

    variant: str | None = Field(default=None, description="NAME or NAME@VERSION")
    model: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    prompt: PromptTemplate | None = None
    label: str | None = Field(default=None, max_length=120)


def _number(value: str) -> Any:
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            continue
    return value


def parse_contender(text: str) -> ContenderSpec:
    """``variant:NAME[@VERSION]`` or ``model:MODEL[,temperature=0.2,max_tokens=64]``."""
    kind, sep, rest = text.strip().partition(":")
    if kind == "variant" and sep and rest.strip():
        return ContenderSpec(variant=rest.strip())
    if kind == "model" and sep and rest.strip():
        model, *pairs = [p.strip() for p in rest.split(",")]
        parameters: dict[str, Any] = {}
        for pair in pairs:
            key, eq, value = pair.partition("=")
            if not eq or not key.strip():
                raise ConfigError(
                    f"'{pair}' in '{text}' is not key=value.",
                    hint="Write model:MODEL,temperature=0.2,max_tokens=64.",
                )
            parameters[key.strip()] = _number(value.strip())
        return ContenderSpec(model=model, parameters=parameters)
    raise ConfigError(
        f"'{text}' is not a contender.",
        hint="Write variant:NAME[@VERSION] or model:MODEL[,key=value,...].",
    )


def _config_run(
    session: Session,
    app_id: int,
    dataset_version_id: int,
    spec: ContenderSpec,
    prompt: PromptTemplate | None,
    concurrency: int | None,
) -> tuple[int, bool, dict[str, Any]]:
    """(run id, created, config) of an unsaved configuration; a finished run of the same
    configuration on this dataset version is reused."""
    chosen = spec.prompt or prompt
    if chosen is None:
        raise StudioError(
            f"The contender on {spec.model} has no prompt.",
            hint="Add a variant contender first (its prompt is used), or give a prompt.",
        )
    try:
        config = RunConfig(
            model=spec.model or "", prompt=chosen, parameters=spec.parameters,
            concurrency=concurrency,
        )  # fmt: skip
    except ValueError as exc:
        raise ConfigError(f"Invalid contender {spec.model}: {exc}") from exc
    wanted = {"model": config.model, "prompt": config.prompt.model_dump(mode="json"),
              "parameters": config.parameters}  # fmt: skip
    for run in session.exec(
        select(Run)
        .where(
            Run.app_id == app_id,
            Run.dataset_version_id == dataset_version_id,
            col(Run.variant_version_id).is_(None),
            Run.status == "done",
            Run.samples == 1,
        )
        .order_by(col(Run.id).desc())
    ).all():
        stored = {k: run.config.get(k) for k in ("model", "prompt", "parameters")}
        if stored == wanted and run.id is not None:
            return run.id, False, wanted
    run = create_run(
        session=session, app_id=app_id, dataset_version_id=dataset_version_id, config=config
    )
    assert run.id is not None
    return run.id, True, wanted


def _label(spec: ContenderSpec, config: dict[str, Any]) -> str:
    if spec.label:
        return spec.label
    if spec.variant:
        return spec.variant
    params = ", ".join(f"{k}={v}" for k, v in sorted(spec.parameters.items()))
    return f"{config['model']}" + (f" ({params})" if params else "")


def _resolve(
    session: Session,
    app_id: int,
    dataset_version_id: int,
    specs: Sequence[ContenderSpec],
    prompt: PromptTemplate | None,
    concurrency: int | None,
) -> tuple[list[dict[str, Any]], list[int]]:
    contenders: list[dict[str, Any]] = []
    missing: list[int] = []
    for spec in specs:
        if bool(spec.variant) == bool(spec.model):
            raise ConfigError("A contender names a variant or a model, not both (nor neither).")
        if spec.variant:
            found = contender_runs(
                session=session, app_id=app_id, dataset_version_id=dataset_version_id,
                variants=[spec.variant], concurrency=concurrency,
            )  # fmt: skip
            run_id = found.run_ids[0]
            missing += found.missing
            run = session.get(Run, run_id)
            assert run is not None and run.variant_version_id is not None
            config = version_config(
                get_variant_version(session=session, version_id=run.variant_version_id)
            )
            prompt = prompt or config.prompt
            contenders.append(
                {"run_id": run_id, "label": _label(spec, {"model": config.model}),
                 "variant_version_id": run.variant_version_id,
                 "config": {"model": config.model, "parameters": config.parameter_dict()}}
            )  # fmt: skip
        else:
            run_id, created, config_dict = _config_run(
                session, app_id, dataset_version_id, spec, prompt, concurrency
            )
            if created:
                missing.append(run_id)
            contenders.append(
                {"run_id": run_id, "label": _label(spec, config_dict),
                 "variant_version_id": None, "config": config_dict}
            )  # fmt: skip
    return contenders, missing


def create_comparison(
    *,
    session: Session,
    app_id: int,
    dataset_version_id: int,
    contenders: Sequence[ContenderSpec],
    evaluators: Sequence[EvaluatorConfig] = (),
    baseline: int = 0,
    prompt: PromptTemplate | None = None,
    concurrency: int | None = None,
    name: str = "",
    actor: str = "",
    commit: bool = True,
) -> tuple[Comparison, list[int]]:
    """Store a comparison; returns it and the runs still to execute (created here). With
    ``commit=False`` everything is only flushed, for a caller that commits it with more."""
    require_member_role("create comparisons")
    check_app(session=session, app_id=app_id, action="create comparisons")
    if not 2 <= len(contenders) <= MAX_CONTENDERS:
        raise StudioError(
            f"A comparison needs 2 to {MAX_CONTENDERS} contenders (got {len(contenders)}).",
            hint="Add a variant version or a model.",
        )
    if not 0 <= baseline < len(contenders):
        raise StudioError(f"The baseline must be one of the {len(contenders)} contenders.")
    seen = [spec.model_dump_json(exclude={"label"}) for spec in contenders]
    if len(set(seen)) < len(seen):
        raise ConflictContenders()
    # variant contenders first resolve the prompt that model contenders reuse
    order = sorted(range(len(contenders)), key=lambda i: contenders[i].variant is None)
    resolved, missing = _resolve(
        session, app_id, dataset_version_id, [contenders[i] for i in order], prompt,
        concurrency,
    )  # fmt: skip
    by_index = dict(zip(order, resolved, strict=True))
    stored = [{"key": contender_key(i), **by_index[i]} for i in range(len(contenders))]
    if len({c["run_id"] for c in stored}) < len(stored):
        raise ConflictContenders()
    evaluation_id = None
    if evaluators:
        evaluation = create_evaluation(
            session=session, app_id=app_id, run_ids=[c["run_id"] for c in stored],
            evaluators=evaluators, name=name or "Comparison", actor=actor, commit=commit,
        )  # fmt: skip
        evaluation_id = evaluation.id
    comparison = Comparison(
        app_id=app_id,
        name=(name.strip() or " vs ".join(c["label"] for c in stored))[:200],
        dataset_version_id=dataset_version_id,
        contenders=stored,
        baseline=contender_key(baseline),
        evaluation_id=evaluation_id,
        actor=actor,
    )
    session.add(comparison)
    if commit:
        session.commit()
    else:
        session.flush()
    session.refresh(comparison)
    return comparison, missing


class ConflictContenders(StudioError):
    def __init__(self) -> None:
        super().__init__(
            "Two contenders are the same configuration (they would share one run).",
            hint="Change the model or a parameter of one of them.",
        )


def add_contender(
    *,
    session: Session,
    comparison_id: int,
    contender: ContenderSpec,
    concurrency: int | None = None,
) -> tuple[Comparison, list[int]]:
    """One more contender; the comparison's runs, scores and preferences are kept."""
    require_member_role("change comparisons")
    comparison = get_comparison(session=session, comparison_id=comparison_id)
    if len(comparison.contenders) >= MAX_CONTENDERS:
        raise StudioError(f"A comparison holds at most {MAX_CONTENDERS} contenders.")
    prompt = None
    for c in comparison.contenders:
        if c.get("variant_version_id"):
            version = get_variant_version(session=session, version_id=c["variant_version_id"])
            prompt = version_config(version).prompt
            break
    if prompt is None:
        first = session.get(Run, comparison.contenders[0]["run_id"])
        if first is not None:
            prompt = PromptTemplate.model_validate(first.config["prompt"])
    resolved, missing = _resolve(
        session, comparison.app_id, comparison.dataset_version_id, [contender], prompt,
        concurrency,
    )  # fmt: skip
    entry = {"key": contender_key(len(comparison.contenders)), **resolved[0]}
    if entry["run_id"] in {c["run_id"] for c in comparison.contenders}:
        raise ConflictContenders()
    comparison.contenders = [*comparison.contenders, entry]
    if comparison.evaluation_id is not None:
        add_runs(session=session, evaluation_id=comparison.evaluation_id, run_ids=[entry["run_id"]])
    session.add(comparison)
    session.commit()
    session.refresh(comparison)
    return comparison, missing


def get_comparison(
    *, session: Session, comparison_id: int, app_id: int | None = None
) -> Comparison:
    comparison = session.get(Comparison, comparison_id)
    if comparison is None or (app_id is not None and comparison.app_id != app_id):
        raise NotFoundError(f"No comparison {comparison_id}.")
    check_app(
        session=session, app_id=comparison.app_id, action="read comparisons", what="comparison"
    )
    return comparison


def list_comparisons(*, session: Session, app_id: int, limit: int = 100) -> list[Comparison]:
    check_app(session=session, app_id=app_id, action="list comparisons")
    return list(
        session.exec(
            select(Comparison)
            .where(Comparison.app_id == app_id)
            .order_by(col(Comparison.id).desc())
            .limit(limit)
        ).all()
    )


def cost_per_1000(costs: Sequence[float | None]) -> float | None:
    """Mean cost of the rows that have one, times 1,000 (None when no row has a price)."""
    known = [c for c in costs if c is not None and not math.isnan(c)]
    return 1000 * sum(known) / len(known) if known else None
