"""Variants: named prompt configurations of an app, saved as immutable versions.

A variant (``"friendly tone"``) has numbered versions. A version never changes
once saved: runs and endpoints pin the version they used. Saving a
configuration identical to the latest version returns that version instead of
making a new one. Variants are archived rather than deleted, and can be forked:
the fork's version 1 copies the chosen version and remembers where it came from.

A version stores its model as a name *and*, for a stored (custom) model, the
model's id: renaming the model keeps the version working and updates the name
it shows; built-in and ``connection/model`` names are their own reference.

Rules: reading needs access to the variant's app, saving also the admin or member role
(:mod:`studio.services.app_access`); reviewers and anonymous callers none.
"""

from __future__ import annotations

import difflib
import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from studio.core.errors import ConflictError, FieldProblem, NotFoundError, RequestValidationError
from studio.core.ids import row_id
from studio.core.schemas import Sampling, problems_from_pydantic
from studio.core.templates import MessageTemplate, PromptTemplate, validate_prompt
from studio.services.app_access import check_app
from studio.services.apps import get_app
from studio.services.members import require_member_role
from studio.services.retrieval_spec import RetrievalSpec, parse_retrieval, retrieval_dict
from studio.store.tables import Model, Run, Variant, VariantVersion

__all__ = [
    "VariantConfig",
    "VariantParameters",
    "VariantSummary",
    "archive_variant",
    "create_variant",
    "diff_versions",
    "fork_variant",
    "get_variant",
    "get_version",
    "history",
    "latest_version",
    "list_variants",
    "model_reference",
    "parse_config",
    "rename_variant",
    "render_config",
    "save_version",
    "version_config",
]

MAX_NAME_LENGTH = 200


class VariantParameters(Sampling):
    """Sampling parameters of a variant; unset ones are left to the model's defaults."""

    temperature: float | None = Field(  # type: ignore[assignment]
        default=None,
        ge=0.0,
        le=1.0,
        description="Sampling temperature in [0, 1]; 0 is greedy (deterministic).",
    )


class VariantConfig(BaseModel):
    """What a variant version holds: the model, the prompt, sampling parameters and an
    optional retrieval step (:mod:`studio.services.retrieval_spec`)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, description="Model name, e.g. builtin/smollm2-135m-instruct")
    prompt: PromptTemplate
    parameters: VariantParameters = Field(default_factory=VariantParameters)
    retrieval: RetrievalSpec | None = Field(
        default=None, description="Search a knowledge base per row into {{context}}; none if null."
    )

    def parameter_dict(self) -> dict[str, Any]:
        """The parameters that are set, as sent to the model."""
        return self.parameters.model_dump(exclude_none=True)


class VariantSummary(BaseModel):
    id: int
    name: str
    archived: bool
    latest_version: int
    latest_version_id: int
    model: str
    forked_from_version_id: int | None
    created_at: datetime
    last_saved: datetime = Field(description="When the latest version was saved.")


def parse_config(data: Any) -> VariantConfig:
    """Validate a configuration document; errors name each field and rule."""
    if isinstance(data, VariantConfig):
        return data
    if not isinstance(data, dict):
        raise RequestValidationError(
            [FieldProblem("(body)", "must be an object")], what="variant configuration"
        )
    try:
        return VariantConfig.model_validate(data)
    except PydanticValidationError as exc:
        problems = problems_from_pydantic(exc, VariantConfig)
        raise RequestValidationError(problems, what="variant configuration") from exc


# -- versions -------------------------------------------------------------------------


def version_config(version: VariantVersion) -> VariantConfig:
    """Rebuild the configuration a version holds (e.g. to make a RunConfig)."""
    if version.prompt_kind == "chat":
        prompt = PromptTemplate(
            kind="chat",
            system=version.system_prompt,
            messages=[MessageTemplate.model_validate(m) for m in version.messages],
        )
    else:
        prompt = PromptTemplate(kind="completion", template=version.template)
    return VariantConfig(
        model=version.model,
        prompt=prompt,
        parameters=VariantParameters.model_validate(version.parameters),
        retrieval=parse_retrieval(version.retrieval or None),
    )


def model_reference(*, session: Session, version: VariantVersion) -> str:
    """What to call ``version``'s model by: its id for a stored model, else its name.

    A model deleted since the version was saved is a :class:`NotFoundError` naming it.
    """
    # The model layer (providers, httpx) is imported by what needs it, not by listing
    # variants: `studio variant list` starts fast (bench/bench_cli.py).
    from studio.models.registry.models import referenced_model

    return referenced_model(session=session, model_id=version.model_id, name=version.model)


def _with_model_id(session: Session, config: VariantConfig) -> tuple[VariantConfig, str | None]:
    """``config`` naming its model by its current name, and the id to store (if stored)."""
    from studio.models.registry.models import stored_model_id

    model_id = stored_model_id(session=session, ref=config.model)
    model = session.get(Model, model_id) if model_id else None
    if model is not None and model.name != config.model:  # given by id or deployment name
        config = config.model_copy(update={"model": model.name})
    return config, model_id


def _new_version(
    variant_id: int, number: int, config: VariantConfig, model_id: str | None, note: str
) -> VariantVersion:
    prompt = config.prompt
    return VariantVersion(
        variant_id=variant_id,
        version=number,
        note=note or "",
        model=config.model,
        model_id=model_id,
        prompt_kind=prompt.kind,
        template=prompt.template,
        system_prompt=prompt.system,
        messages=[m.model_dump() for m in prompt.messages],
        parameters=config.parameter_dict(),
        retrieval=retrieval_dict(config.retrieval),
    )


def _check_retrieval(session: Session, app_id: int, config: VariantConfig) -> None:
    """Refuse now, with a sentence, a retrieval step a run could not use."""
    if config.retrieval is not None:
        from studio.services.retrieval import check_retrieval  # the search machinery: lazily

        check_retrieval(session=session, spec=config.retrieval, app_id=app_id)


def latest_version(*, session: Session, variant_id: int) -> VariantVersion:
    _variant(session, variant_id)
    version = session.exec(
        select(VariantVersion)
        .where(VariantVersion.variant_id == variant_id)
        .order_by(col(VariantVersion.version).desc())
    ).first()
    if version is None:
        raise NotFoundError(f"Variant {variant_id} has no versions.")
    return version


def get_version(*, session: Session, version_id: int) -> VariantVersion:
    version = session.get(VariantVersion, version_id)
    variant = session.get(Variant, version.variant_id) if version is not None else None
    if version is None or variant is None:
        raise NotFoundError(
            f"No variant version {version_id}.", hint="Pick one from the variant's history."
        )
    check_app(
        session=session, app_id=variant.app_id, action="read variants", what="variant version"
    )
    return version


def history(*, session: Session, variant_id: int) -> list[VariantVersion]:
    """Every version of a variant, newest first."""
    _variant(session, variant_id)
    return list(
        session.exec(
            select(VariantVersion)
            .where(VariantVersion.variant_id == variant_id)
            .order_by(col(VariantVersion.version).desc())
        ).all()
    )


def save_version(
    *, session: Session, variant_id: int, config: VariantConfig, note: str = ""
) -> VariantVersion:
    """Save ``config`` as the next version; an unchanged config returns the latest one."""
    require_member_role("save variants")
    config = parse_config(config)
    validate_prompt(config.prompt)  # refused now, with a sentence, not at run time
    app_id = _variant(session, variant_id).app_id
    _check_retrieval(session, app_id, config)
    latest = latest_version(session=session, variant_id=variant_id)
    config, model_id = _with_model_id(session, config)
    if version_config(latest) == config and latest.model_id == model_id:
        return latest  # same name and same model (not a new one with a deleted one's name)
    version = _new_version(variant_id, latest.version + 1, config, model_id, note)
    session.add(version)
    try:
        session.flush()
    except IntegrityError as exc:
        raise ConflictError(
            f"Version {version.version} of this variant was saved by someone else meanwhile.",
            hint="Reload the variant and save again.",
        ) from exc
    _adopt_runs(session, app_id, version)
    return version


def _adopt_runs(session: Session, app_id: int, version: VariantVersion) -> None:
    """Runs of the app made from exactly this configuration before it was saved (a
    Playground run, then **Save as variant**) become runs of ``version``: pickers name the
    version instead of "unsaved prompt", and evaluating the version reuses a finished one
    instead of generating the same outputs again. Runs of another version are left alone."""
    config = version_config(version)
    want = {
        "prompt": config.prompt.model_dump(mode="json"),
        "parameters": config.parameter_dict(),
        "model_id": version.model_id,
        "retrieval": config.retrieval.model_dump(mode="json") if config.retrieval else None,
    }
    stmt = select(Run).where(
        Run.app_id == app_id, col(Run.variant_version_id).is_(None), Run.model == version.model
    )
    for run in session.exec(stmt):
        try:  # the stored prompt, normalised as a version holds it
            prompt = PromptTemplate.model_validate(run.config.get("prompt")).model_dump(mode="json")
        except ValueError:
            continue
        held = {
            "prompt": prompt,
            "parameters": run.config.get("parameters") or {},
            "model_id": run.config.get("model_id"),
            "retrieval": run.config.get("retrieval"),
        }
        if held == want:
            run.variant_version_id = version.id
            session.add(run)
    session.flush()


# -- variants -------------------------------------------------------------------------


def _variant(session: Session, variant_id: int) -> Variant:
    variant = session.get(Variant, variant_id)
    if variant is None:
        raise NotFoundError(f"No variant {variant_id}.", hint="Pick one from the app's variants.")
    check_app(session=session, app_id=variant.app_id, action="read variants", what="variant")
    return variant


def _clean_name(name: str) -> str:
    cleaned = (name or "").strip()
    if not cleaned or len(cleaned) > MAX_NAME_LENGTH:
        rule = "must not be empty" if not cleaned else f"at most {MAX_NAME_LENGTH} characters"
        raise RequestValidationError([FieldProblem("name", rule)], what="variant")
    return cleaned


def _check_free(session: Session, app_id: int, name: str) -> None:
    taken = session.exec(
        select(Variant.id).where(Variant.app_id == app_id, Variant.name == name)
    ).first()
    if taken is not None:
        raise ConflictError(
            f"This app already has a variant named '{name}'.",
            hint="Pick another name, or save a new version of the existing variant.",
        )


def _flush(session: Session, name: str) -> None:
    try:
        session.flush()
    except IntegrityError as exc:
        raise ConflictError(f"This app already has a variant named '{name}'.") from exc


def create_variant(
    *, session: Session, app_id: int, name: str, config: VariantConfig, note: str = ""
) -> VariantVersion:
    """Create a variant and its version 1."""
    return _create(session, app_id, name, parse_config(config), note, forked_from=None)


def _create(
    session: Session,
    app_id: int,
    name: str,
    config: VariantConfig,
    note: str,
    *,
    forked_from: int | None,
    model_id: str | None = None,
) -> VariantVersion:
    """Make the variant; ``model_id`` (a fork's) keeps the source version's model reference."""
    require_member_role("create variants")
    validate_prompt(config.prompt)  # refused now, with a sentence, not at run time
    app = get_app(session=session, ref=app_id)
    assert app.id is not None
    _check_retrieval(session, app.id, config)
    cleaned = _clean_name(name)
    _check_free(session, app.id, cleaned)
    variant = Variant(app_id=app.id, name=cleaned, forked_from_version_id=forked_from)
    session.add(variant)
    _flush(session, cleaned)
    assert variant.id is not None
    if model_id is None:
        config, model_id = _with_model_id(session, config)
    version = _new_version(variant.id, 1, config, model_id, note)
    session.add(version)
    session.flush()
    _adopt_runs(session, app.id, version)
    return version


def get_variant(*, session: Session, app_id: int, ref: int | str) -> Variant:
    """Find a variant of an app by name or id (a name wins over an id that looks the same)."""
    check_app(session=session, app_id=app_id, action="read variants")
    variant: Variant | None = None
    if isinstance(ref, int):
        variant = session.get(Variant, ref)
    else:
        text = ref.strip()
        query = select(Variant).where(Variant.app_id == app_id, Variant.name == text)
        variant = session.exec(query).first()
        number = row_id(text)
        if variant is None and number is not None:
            variant = session.get(Variant, number)
    if variant is None or variant.app_id != app_id:
        raise NotFoundError(
            f"No variant '{ref}' in this app.", hint="See `studio variant list --app APP`."
        )
    return variant


def list_variants(
    *, session: Session, app_id: int, include_archived: bool = False
) -> list[VariantSummary]:
    """The app's variants by name, each with its latest version."""
    check_app(session=session, app_id=app_id, action="list variants")
    query = select(Variant).where(Variant.app_id == app_id)
    if not include_archived:
        query = query.where(col(Variant.archived).is_(False))
    variants = list(session.exec(query.order_by(col(Variant.name))).all())
    if not variants:
        return []
    ids = [v.id for v in variants]
    newest = (
        select(VariantVersion.variant_id, func.max(VariantVersion.version).label("version"))
        .where(col(VariantVersion.variant_id).in_(ids))
        .group_by(col(VariantVersion.variant_id))
        .subquery()
    )
    latest = {
        v.variant_id: v
        for v in session.exec(
            select(VariantVersion).join(
                newest,
                (col(VariantVersion.variant_id) == newest.c.variant_id)
                & (col(VariantVersion.version) == newest.c.version),
            )
        ).all()
    }
    out: list[VariantSummary] = []
    for variant in variants:
        assert variant.id is not None
        version = latest[variant.id]
        assert version.id is not None
        out.append(
            VariantSummary(
                id=variant.id,
                name=variant.name,
                archived=variant.archived,
                latest_version=version.version,
                latest_version_id=version.id,
                model=version.model,
                forked_from_version_id=variant.forked_from_version_id,
                created_at=variant.created_at,
                last_saved=version.created_at,
            )
        )
    return out


def fork_variant(
    *, session: Session, variant_id: int, new_name: str, version: int | None = None
) -> VariantVersion:
    """A new variant whose version 1 copies ``version`` (default: the latest)."""
    source = _variant(session, variant_id)
    if version is None:
        base = latest_version(session=session, variant_id=variant_id)
    else:
        found = session.exec(
            select(VariantVersion).where(
                VariantVersion.variant_id == variant_id, VariantVersion.version == version
            )
        ).first()
        if found is None:
            raise NotFoundError(f"Variant '{source.name}' has no version {version}.")
        base = found
    note = f"forked from '{source.name}' v{base.version}"
    return _create(
        session,
        source.app_id,
        new_name,
        version_config(base),
        note,
        forked_from=base.id,
        model_id=base.model_id,  # the same model, even if another one took its name since
    )


def rename_variant(*, session: Session, variant_id: int, name: str) -> Variant:
    require_member_role("rename variants")
    variant = _variant(session, variant_id)
    cleaned = _clean_name(name)
    if cleaned != variant.name:
        _check_free(session, variant.app_id, cleaned)
        variant.name = cleaned
        session.add(variant)
        _flush(session, cleaned)
    return variant


def archive_variant(*, session: Session, variant_id: int, archived: bool = True) -> Variant:
    """Hide a variant from the default list (``archived=False`` restores it)."""
    require_member_role("archive variants")
    variant = _variant(session, variant_id)
    if variant.archived != archived:
        variant.archived = archived
        session.add(variant)
        session.flush()
    return variant


# -- diff -----------------------------------------------------------------------------


def render_config(config: VariantConfig) -> str:
    """A readable, line-oriented rendering of a configuration (what diffs compare)."""
    lines = [f"model: {config.model}", "parameters:"]
    params = config.parameter_dict()
    lines += [f"  {k}: {json.dumps(v)}" for k, v in sorted(params.items())] or ["  (defaults)"]
    prompt = config.prompt
    lines.append(f"prompt kind: {prompt.kind}")
    if prompt.kind == "completion":
        lines.append("template:")
        lines += [f"  {line}" for line in prompt.template.splitlines()]
    else:
        if prompt.system:
            lines.append("system:")
            lines += [f"  {line}" for line in prompt.system.splitlines()]
        for i, message in enumerate(prompt.messages, start=1):
            lines.append(f"message {i} ({message.role}):")
            lines += [f"  {line}" for line in message.content.splitlines()]
    if config.retrieval is not None:
        lines.append("retrieval:")
        steps = config.retrieval.model_dump(mode="json")
        lines += [f"  {k}: {json.dumps(v)}" for k, v in steps.items()]
    return "\n".join(lines) + "\n"


def diff_versions(*, session: Session, a_id: int, b_id: int) -> str:
    """Unified diff between two versions' configurations ("" when they are the same)."""
    a = get_version(session=session, version_id=a_id)
    b = get_version(session=session, version_id=b_id)
    return "".join(
        difflib.unified_diff(
            render_config(version_config(a)).splitlines(keepends=True),
            render_config(version_config(b)).splitlines(keepends=True),
            fromfile=f"v{a.version} (id {a.id})",
            tofile=f"v{b.version} (id {b.id})",
        )
    )
