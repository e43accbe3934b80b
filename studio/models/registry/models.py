"""Models and their deployments.

A **model** is made from a template plus validated creation parameters, or
points at an external connection (``connection`` + ``provider_model``). A
**deployment** is the callable handle of a model. Its status moves from PENDING
to READY, or FAILED with the reason. Built-in models have automatic, immutable
deployments and are callable by name.

Any of a model's id, name, deployment id or deployment name identifies it; so
does ``connection/model`` for a model a connection offers.

Rules (:mod:`studio.models.permissions`): administrators and members read models and
deployments; creating, deploying, renaming, regrouping and deleting them is for
administrators, and each of those is in the audit log. Lookups used on the call path
(:func:`resolve_model`, :func:`model_type`, ...) check nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import update
from sqlmodel import Session, col, or_, select

from studio.core.errors import (
    ConflictError,
    FieldProblem,
    NotFoundError,
    RequestValidationError,
    StudioError,
)
from studio.core.schemas import (
    CompletionRequest,
    EmbeddingRequest,
    ModelType,
    RerankingRequest,
    problems_from_pydantic,
)
from studio.core.settings import get_settings
from studio.models.connections import build_provider, get_connection, get_provider
from studio.models.dispatch import dispatch
from studio.models.permissions import require_model_admin, require_model_reader
from studio.models.registry.model_uses import endpoints_using, quoted, variants_using
from studio.models.registry.templates import get_template, group_id
from studio.models.specs import (
    ModelCreate,
    check_remote_parameters,
    infer_model_type,
    runtime_provider_config,
    validate_creation_parameters,
)
from studio.providers import Provider
from studio.store import audit
from studio.store.tables import (
    Model,
    ModelDeployment,
    ModelPrice,
    ModelTemplate,
    VariantVersion,
    utcnow,
)

__all__ = [
    "FAILED",
    "PENDING",
    "READY",
    "ModelOverview",
    "ResolvedModel",
    "create_model",
    "delete_model",
    "deploy_model",
    "get_model",
    "list_deployments",
    "list_models",
    "model_overview",
    "model_type",
    "referenced_model",
    "rename_model",
    "resolve_model",
    "set_model_group",
    "stored_model_id",
]


READY, PENDING, FAILED = "READY", "PENDING", "FAILED"


class ResolvedModel(BaseModel):
    """A model ready to call: what it is and where its calls go."""

    model_config = {"arbitrary_types_allowed": True}

    model: Model
    deployment: ModelDeployment | None


# -- models and deployments -----------------------------------------------------------------


def create_model(
    *, session: Session, data: ModelCreate, deploy: bool = True, local: bool = False
) -> Model:
    """Create a model (and its deployment, started at once unless ``deploy`` is false).

    ``local`` is true only for the operator on this machine (the CLI, the studio's
    pages): they may name environment variables (``api_key_env``) and files anywhere.
    Everyone else (the gateway) gets :func:`~studio.models.specs.check_remote_parameters`:
    no environment variables, weights only inside ``STUDIO_MODELS_DIR``.
    """
    require_model_admin("create models")
    if session.exec(select(Model).where(Model.name == data.name)).first():
        raise ConflictError(f"A model named '{data.name}' already exists.")
    template: ModelTemplate | None = None
    if data.model_template_id:
        template = get_template(session=session, ref=data.model_template_id)
        mtype = ModelType(template.model_type)
        if data.model_type and data.model_type != mtype:
            raise RequestValidationError(
                [
                    FieldProblem(
                        "model_type",
                        f"must match the template's type {mtype.value} (got {data.model_type})",
                    )
                ],
                what="model",
            )
        params = validate_creation_parameters(
            template.model_creation_parameters_schema, data.model_creation_parameters
        )
        if not local:
            params = check_remote_parameters(
                template.runtime_config, params, models_dir=get_settings().models_dir
            )
    else:
        if not data.connection or not data.provider_model or not data.model_type:
            raise RequestValidationError(
                [
                    FieldProblem(
                        "model_template_id",
                        "give a model_template_id, or connection + provider_model + model_type "
                        "for an external model",
                    )
                ],
                what="model",
            )
        get_connection(session=session, name=data.connection)
        mtype, params = data.model_type, dict(data.model_creation_parameters)
        if not local:
            params = check_remote_parameters({}, params, models_dir=get_settings().models_dir)
    model = Model(
        name=data.name,
        model_type=mtype.value,
        description=data.description,
        model_template_id=template.id if template else None,
        model_creation_parameters=params,
        connection=data.connection,
        provider_model=data.provider_model,
        model_group_id=group_id(session, data.model_group),
        context_window=data.context_window,
    )
    session.add(model)
    session.flush()
    deployment = ModelDeployment(model_id=model.id, name=model.name, status=PENDING)
    session.add(deployment)
    session.flush()
    _audit(
        session,
        "create",
        model,
        model_type=model.model_type,
        template=template.name if template else None,
        connection=model.connection,
        provider_model=model.provider_model,
        parameters=params,
    )
    if deploy:
        deploy_model(session=session, ref=model.id)
    return model


def _provider_for(session: Session, model: Model) -> tuple[Provider, str]:
    """The provider instance and the provider-side model id for ``model``."""
    if model.model_template_id:
        template = session.get(ModelTemplate, model.model_template_id)
        if template is None:
            raise NotFoundError(f"The template of model '{model.name}' no longer exists.")
        kind, base_url, api_key, options, upstream = runtime_provider_config(
            template.runtime, template.runtime_config, model.model_creation_parameters
        )
        provider = build_provider(
            kind=kind, name=model.name, base_url=base_url, api_key=api_key, options=options
        )
        return provider, upstream or model.provider_model or model.name
    assert model.connection is not None and model.provider_model is not None
    return get_provider(session=session, name=model.connection), model.provider_model


def _probe_request(mtype: ModelType) -> BaseModel:
    if mtype is ModelType.EMBEDDING:
        return EmbeddingRequest(texts=["ready"])
    if mtype is ModelType.RERANKING:
        return RerankingRequest(query="ready", chunks=["ready"])
    return CompletionRequest(prompts=["Say OK."], max_tokens=1, temperature=0)


def deploy_model(*, session: Session, ref: str) -> ModelDeployment:
    """Start (or restart) a model's deployment: PENDING → READY, or FAILED with the reason.

    Local runtimes answer one tiny probe request; remote runtimes must list
    their models; external models need a usable connection.
    """
    require_model_admin("deploy models")
    resolved = resolve_model(session=session, ref=ref)
    dep = resolved.deployment
    if dep is None:
        raise NotFoundError(f"Model '{ref}' has no deployment.")
    if dep.is_builtin:
        return dep
    dep.status, dep.status_reason, dep.updated_at = PENDING, None, utcnow()
    session.add(dep)
    session.flush()
    try:
        provider, upstream = _provider_for(session, resolved.model)
        if resolved.model.model_template_id:
            mtype = ModelType(resolved.model.model_type)
            if provider.offline:
                probe = _probe_request(mtype)
                asyncio.run(dispatch(provider, upstream, mtype, probe))
            else:
                asyncio.run(provider.list_models())
        dep.status = READY
    except StudioError as exc:
        dep.status, dep.status_reason = FAILED, str(exc)
    dep.updated_at = utcnow()
    session.add(dep)
    audit.record(
        session,
        action="deploy",
        target_kind="model-deployment",
        target_id=dep.id,
        target_name=dep.name,
        details={"model": resolved.model.name, "status": dep.status},
    )
    session.flush()
    return dep


def _audit(session: Session, action: str, model: Model, **details: Any) -> None:
    """One audit event for a change to ``model`` (names and settings; secret-looking
    parameters are dropped by :func:`studio.store.audit.record`)."""
    audit.record(
        session,
        action=action,
        target_kind="model",
        target_id=model.id,
        target_name=model.name,
        details=details,
    )


def list_models(*, session: Session) -> list[Model]:
    require_model_reader("list models")
    return list(
        session.exec(select(Model).order_by(col(Model.is_builtin).desc(), col(Model.name))).all()
    )


class ModelOverview(BaseModel):
    """One line of the model zoo: a model and its deployment's status."""

    id: str
    name: str
    model_type: str
    status: str
    status_reason: str | None
    builtin: bool
    context_window: int | None
    description: str


def model_overview(*, session: Session) -> list[ModelOverview]:
    """Every model with its deployment status, built-ins first (the CLI list and the zoo)."""
    deployments = {d.model_id: d for d in list_deployments(session=session)}
    rows = []
    for m in list_models(session=session):
        dep = deployments.get(m.id)
        rows.append(
            ModelOverview(
                id=m.id,
                name=m.name,
                model_type=m.model_type,
                status=dep.status if dep else "N/A",
                status_reason=dep.status_reason if dep else None,
                builtin=m.is_builtin,
                context_window=m.context_window,
                description=m.description,
            )
        )
    return rows


def list_deployments(*, session: Session, model_id: str | None = None) -> list[ModelDeployment]:
    require_model_reader("list model deployments")
    stmt = select(ModelDeployment).order_by(col(ModelDeployment.name))
    if model_id:
        stmt = stmt.where(ModelDeployment.model_id == model_id)
    return list(session.exec(stmt).all())


def resolve_model(*, session: Session, ref: str) -> ResolvedModel:
    model = session.exec(select(Model).where(or_(Model.id == ref, Model.name == ref))).first()
    if model is None:
        dep = session.exec(
            select(ModelDeployment).where(
                or_(ModelDeployment.id == ref, ModelDeployment.name == ref)
            )
        ).first()
        if dep is not None:
            model = session.get(Model, dep.model_id)
    if model is None:
        raise NotFoundError(
            f"No model, deployment or built-in called '{ref}'.",
            hint="See the available models with `studio model list`.",
        )
    dep = session.exec(select(ModelDeployment).where(ModelDeployment.model_id == model.id)).first()
    return ResolvedModel(model=model, deployment=dep)


def get_model(*, session: Session, ref: str) -> Model:
    return resolve_model(session=session, ref=ref).model


def delete_model(*, session: Session, ref: str) -> None:
    """Delete a custom model and its deployment.

    Refused (:class:`ConflictError`, naming them) while an active endpoint serves a
    version on the model, or while the latest version of an unarchived variant uses
    it: those would break at once. Older versions and archived variants do not stop
    a delete; they keep showing the model's last name and, if run or deployed, say
    that the model was deleted.
    """
    require_model_admin("delete models")
    resolved = resolve_model(session=session, ref=ref)
    model = resolved.model
    if model.is_builtin:
        raise ConflictError(f"'{model.name}' is a built-in model and cannot be deleted.")
    endpoints = endpoints_using(session, model)
    if endpoints:
        raise ConflictError(
            f"Model '{model.name}' cannot be deleted: the deployed endpoint"
            f"{'s' if len(endpoints) > 1 else ''} {quoted(endpoints)} "
            f"{'use' if len(endpoints) > 1 else 'uses'} it.",
            hint="Undeploy the endpoint, or deploy a version on another model, first.",
        )
    variants = variants_using(session, model)
    if variants:
        raise ConflictError(
            f"Model '{model.name}' cannot be deleted: the latest version of variant"
            f"{'s' if len(variants) > 1 else ''} {quoted(variants)} "
            f"{'use' if len(variants) > 1 else 'uses'} it.",
            hint="Save a version on another model, or archive the variant, first.",
        )
    for dep in list_deployments(session=session, model_id=model.id):
        session.delete(dep)
    session.flush()
    _audit(session, "delete", model)
    session.delete(model)
    session.flush()


def rename_model(*, session: Session, ref: str, new_name: str) -> Model:
    """Rename a custom model and its deployment (usage by deployment stays with it).

    Variants, runs and endpoints reference the model by id, so they keep working;
    variant versions show the new name.
    """
    require_model_admin("rename models")
    model = resolve_model(session=session, ref=ref).model
    if model.is_builtin:
        raise ConflictError(f"'{model.name}' is a built-in model and cannot be renamed.")
    new_name = new_name.strip()
    try:
        ModelCreate(name=new_name)
    except PydanticValidationError as exc:
        problems = [p for p in problems_from_pydantic(exc, ModelCreate) if p.field == "name"]
        raise RequestValidationError(problems, what="new name") from exc
    if new_name == model.name:
        return model
    taken = (
        session.exec(select(Model).where(Model.name == new_name)).first()
        or session.exec(select(ModelDeployment).where(ModelDeployment.name == new_name)).first()
    )
    if taken:
        raise ConflictError(f"A model or deployment named '{new_name}' already exists.")
    for dep in list_deployments(session=session, model_id=model.id):
        if dep.name == model.name:
            dep.name, dep.updated_at = new_name, utcnow()
            session.add(dep)
    # Variant versions reference the model by id; their name is what pages show.
    session.execute(
        update(VariantVersion)
        .where(col(VariantVersion.model_id) == model.id)
        .values(model=new_name)
    )
    if session.get(ModelPrice, new_name) is None:  # the price goes with the model
        session.execute(
            update(ModelPrice).where(col(ModelPrice.model) == model.name).values(model=new_name)
        )
    _audit(session, "rename", model, to=new_name)
    model.name, model.updated_at = new_name, utcnow()
    session.add(model)
    session.flush()
    return model


def set_model_group(*, session: Session, ref: str, group: str | None) -> Model:
    """Put a custom model in a group (created if new), or take it out with ``None``."""
    require_model_admin("change model groups")
    model = resolve_model(session=session, ref=ref).model
    if model.is_builtin:
        raise ConflictError(f"'{model.name}' is a built-in model; its group cannot change.")
    model.model_group_id = group_id(session, (group or "").strip() or None)
    model.updated_at = utcnow()
    session.add(model)
    _audit(session, "update", model, group=(group or "").strip() or None)
    session.flush()
    return model


# -- lookup -------------------------------------------------------------------------------


def stored_model_id(*, session: Session, ref: str) -> str | None:
    """The id to store with a reference to model ``ref`` (a name or id).

    A custom model's id, so that renaming the model keeps what references it
    working. ``None`` for built-in models and ``connection/model`` names (and
    unknown names): they cannot be renamed, so their name is the reference.
    """
    try:
        model = resolve_model(session=session, ref=ref).model
    except NotFoundError:
        return None
    return None if model.is_builtin else model.id


def referenced_model(*, session: Session, model_id: str | None, name: str) -> str:
    """What to resolve a stored reference with: the id when there is one, else the name.

    Raises :class:`NotFoundError` with a sentence naming the model when the
    model the id points at was deleted.
    """
    if model_id is None:
        return name
    if session.get(Model, model_id) is None:
        raise NotFoundError(f"The model '{name}' was deleted.", hint="Pick another model for it.")
    return model_id


def _ad_hoc(session: Session, ref: str, payload: Any) -> ResolvedModel | None:
    """``connection/model`` names a model a connection offers, without creating it."""
    if "/" not in ref:
        return None
    conn, _, upstream = ref.partition("/")
    try:
        get_connection(session=session, name=conn)
    except NotFoundError:
        return None
    mtype = infer_model_type(payload)
    model = Model(name=ref, model_type=mtype.value, connection=conn, provider_model=upstream)
    return ResolvedModel(model=model, deployment=None)


def _lookup(session: Session, ref: str, payload: Any) -> ResolvedModel:
    try:
        return resolve_model(session=session, ref=ref)
    except NotFoundError:
        ad_hoc = _ad_hoc(session, ref, payload)
        if ad_hoc is None:
            raise
        return ad_hoc


def model_type(*, session: Session, ref: str, payload: Any = None) -> ModelType:
    """The type of model ``ref``; a ``connection/model`` name is a chat model unless
    ``payload`` has another type's shape."""
    return ModelType(_lookup(session, ref, payload or {"messages": []}).model.model_type)
