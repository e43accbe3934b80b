"""The runs an evaluation needs: reuse a finished run of a variant version, or make one.

``studio eval run --variant NAME[@VERSION]`` and the Evaluations page name
variant versions, not runs. :func:`contender_runs` finds, per variant version, the
newest finished run of it on the dataset version, or creates a run for it
(returned in ``missing``, for the caller to execute as a job with progress).

Rules: the admin or member role and access to the app (:mod:`studio.services.app_access`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from studio.core.errors import ConfigError, NotFoundError, StudioError
from studio.core.ids import row_id
from studio.services.app_access import check_app
from studio.services.evaluations import contender_key, contender_label, get_evaluation
from studio.services.members import require_member_role
from studio.services.runs import RunConfig, create_run
from studio.services.variants import get_variant, history, latest_version, version_config
from studio.store.tables import Evaluation, Run, RunResult, VariantVersion

__all__ = [
    "ContenderRuns",
    "add_runs",
    "contender_runs",
    "parse_variant_ref",
    "without_retrieval",
]


@dataclass
class ContenderRuns:
    run_ids: list[int] = field(default_factory=list)  # in the order the variants were named
    missing: list[int] = field(default_factory=list)  # created here; still to be executed


def parse_variant_ref(ref: str) -> tuple[str, int | None]:
    """``"Invite@3"`` → ``("Invite", 3)``; ``"Invite"`` → ``("Invite", None)`` (the latest)."""
    name, at, number = ref.rpartition("@")
    if not at:
        return ref.strip(), None
    if row_id(number) is None:
        raise ConfigError(
            f"'{ref}' does not name a version.", hint="Write NAME@VERSION, e.g. Invite@2."
        )
    return name.strip(), int(number)


def _version(session: Session, app_id: int, ref: str) -> VariantVersion:
    name, number = parse_variant_ref(ref)
    variant = get_variant(session=session, app_id=app_id, ref=name)
    assert variant.id is not None
    if number is None:
        return latest_version(session=session, variant_id=variant.id)
    for version in history(session=session, variant_id=variant.id):
        if version.version == number:
            return version
    raise NotFoundError(
        f"Variant '{variant.name}' has no version {number}.",
        hint="`studio variant history` lists its versions.",
    )


def contender_runs(
    *,
    session: Session,
    app_id: int,
    dataset_version_id: int,
    variants: list[str],
    concurrency: int | None = None,
) -> ContenderRuns:
    """One run per named variant version on the dataset version (reused when finished)."""
    require_member_role("start runs")
    check_app(session=session, app_id=app_id, action="start runs")
    found = ContenderRuns()
    for ref in variants:
        version = _version(session, app_id, ref)
        reuse = session.exec(
            select(Run)
            .where(
                Run.variant_version_id == version.id,
                Run.dataset_version_id == dataset_version_id,
                Run.status == "done",
                Run.samples == 1,
            )
            .order_by(col(Run.id).desc())
        ).first()
        if reuse is not None and reuse.id is not None:
            found.run_ids.append(reuse.id)
            continue
        config = version_config(version)
        run = create_run(
            session=session,
            app_id=app_id,
            dataset_version_id=dataset_version_id,
            config=RunConfig(
                model=config.model,
                prompt=config.prompt,
                parameters=config.parameter_dict(),
                concurrency=concurrency,
            ),
            variant_version_id=version.id,
        )
        assert run.id is not None
        found.run_ids.append(run.id)
        found.missing.append(run.id)
    session.commit()
    return found


def add_runs(*, session: Session, evaluation_id: int, run_ids: list[int]) -> Evaluation:
    """More contenders for an evaluation (same app and dataset version); the scores of the
    others are kept, and the next execution scores only the new runs' outputs."""
    require_member_role("change evaluations")
    evaluation = get_evaluation(session=session, evaluation_id=evaluation_id)
    have = {c["run_id"] for c in evaluation.contenders}
    contenders = list(evaluation.contenders)
    for run_id in run_ids:
        run = session.get(Run, run_id)
        if run is None or run.app_id != evaluation.app_id:
            raise NotFoundError(f"Run {run_id} is not a run of this app.")
        if run.dataset_version_id != evaluation.dataset_version_id:
            raise StudioError(
                f"Run {run_id} answered another dataset version than this evaluation.",
                hint="Evaluate runs of one dataset version together.",
            )
        if run_id in have:
            continue
        contenders.append(
            {
                "key": contender_key(len(contenders)),
                "run_id": run_id,
                "label": contender_label(session, run),
            }
        )
        have.add(run_id)
    evaluation.contenders = contenders
    evaluation.status = "pending"
    session.add(evaluation)
    session.commit()
    session.refresh(evaluation)
    return evaluation


def without_retrieval(
    *, session: Session, app_id: int, variants: list[str], run_ids: list[int]
) -> list[str]:
    """The contenders (variant refs as written, ``run N``) that have no retrieval step, so
    the RAG evaluators could judge none of their rows; the form warns before it starts."""
    check_app(session=session, app_id=app_id, action="read runs")
    missing = [ref for ref in variants if not _version(session, app_id, ref).retrieval]
    for run_id in run_ids:
        run = session.get(Run, run_id)
        if run is None or run.app_id != app_id or (run.config or {}).get("retrieval"):
            continue
        first = session.exec(select(RunResult).where(RunResult.run_id == run_id).limit(1)).first()
        if first is None or not first.retrieval:
            missing.append(f"run {run_id}")
    return missing
