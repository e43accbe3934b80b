"""The model registry: templates → models → deployments → execute.

* A **model template** (admin only) says how a self-hosted model runs: its
  ``runtime`` (``llama-cpp``, ``sentence-transformers``, ``openai-compatible``,
  ``anthropic``, ``rerank-api``), fixed ``runtime_config``, and the
  ``model_creation_parameters_schema`` a model must fill in.
* A **model** is made from a template plus validated creation parameters, or
  points at an external connection (``connection`` + ``provider_model``).
* A **deployment** is the callable handle of a model. Its status moves from
  PENDING to READY, or FAILED with the reason. Built-in models have automatic,
  immutable deployments and are callable by name.
* **Execute** validates a request against the model type's schema, calls the
  provider, and records usage (tokens, latency, cost, errors).

Any of a model's id, name, deployment id or deployment name identifies it; so
does ``connection/model`` for a model a connection offers.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from sqlmodel import Session, col, or_, select

from studio.chat import chat_with_history
from studio.connections import build_provider, get_connection, get_provider
from studio.errors import (
    ConflictError,
    FieldProblem,
    ModelNotReadyError,
    NotFoundError,
    RequestValidationError,
    StudioError,
)
from studio.model_specs import (
    ModelCreate,
    TemplateCreate,
    infer_model_type,
    runtime_provider_config,
    validate_creation_parameters,
)
from studio.providers import Provider
from studio.schemas import (
    AgentRequest,
    ChatCompletionRequest,
    ChatPromptRequest,
    CompletionRequest,
    EmbeddingRequest,
    ModelType,
    RerankingRequest,
    problems_from_pydantic,
    validate_request,
)
from studio.settings import get_settings
from studio.store.tables import Model, ModelDeployment, ModelGroup, ModelTemplate, utcnow
from studio.usage import cost_for, record_call

__all__ = [
    "ModelOverview",
    "PreparedModel",
    "ResolvedModel",
    "acall_prepared",
    "aexecute",
    "create_model",
    "create_model_group",
    "create_template",
    "delete_model",
    "delete_template",
    "deploy_model",
    "execute",
    "get_model",
    "get_template",
    "list_deployments",
    "list_model_groups",
    "list_models",
    "list_templates",
    "model_overview",
    "model_type",
    "prepare_model",
    "record_usage",
    "resolve_model",
    "validate_model_request",
]

READY, PENDING, FAILED = "READY", "PENDING", "FAILED"


class ResolvedModel(BaseModel):
    """A model ready to call: what it is and where its calls go."""

    model_config = {"arbitrary_types_allowed": True}

    model: Model
    deployment: ModelDeployment | None


# -- templates ----------------------------------------------------------------------


def _require_admin(action: str) -> None:
    from studio.errors import PermissionDeniedError

    if not get_settings().admin_mode:
        raise PermissionDeniedError(
            f"Only admins can {action}.",
            hint="Turn on admin mode by setting STUDIO_ADMIN=1 for the studio.",
        )


def create_template(*, session: Session, data: TemplateCreate) -> ModelTemplate:
    _require_admin("create model templates")
    if session.exec(select(ModelTemplate).where(ModelTemplate.name == data.name)).first():
        raise ConflictError(f"A model template named '{data.name}' already exists.")
    row = ModelTemplate(
        name=data.name,
        model_type=data.model_type.value,
        runtime=data.runtime,
        endpoint_type=data.endpoint_type,
        runtime_config=data.runtime_config,
        model_creation_parameters_schema=data.model_creation_parameters_schema.model_dump(),
    )
    session.add(row)
    session.flush()
    return row


def list_templates(*, session: Session) -> list[ModelTemplate]:
    return list(session.exec(select(ModelTemplate).order_by(col(ModelTemplate.name))).all())


def get_template(*, session: Session, ref: str) -> ModelTemplate:
    row = session.exec(
        select(ModelTemplate).where(or_(ModelTemplate.id == ref, ModelTemplate.name == ref))
    ).first()
    if row is None:
        raise NotFoundError(
            f"No model template '{ref}'.", hint="List them with `studio model-template list`."
        )
    return row


def delete_template(*, session: Session, ref: str) -> None:
    _require_admin("delete model templates")
    row = get_template(session=session, ref=ref)
    if row.is_system:
        raise ConflictError(f"Template '{row.name}' ships with the studio and cannot be deleted.")
    if session.exec(select(Model).where(Model.model_template_id == row.id)).first():
        raise ConflictError(f"Template '{row.name}' is used by models; delete those first.")
    session.delete(row)
    session.flush()


# -- groups ---------------------------------------------------------------------------


def create_model_group(*, session: Session, name: str, description: str = "") -> ModelGroup:
    if session.exec(select(ModelGroup).where(ModelGroup.name == name)).first():
        raise ConflictError(f"A model group named '{name}' already exists.")
    row = ModelGroup(name=name, description=description)
    session.add(row)
    session.flush()
    return row


def list_model_groups(*, session: Session) -> list[ModelGroup]:
    return list(session.exec(select(ModelGroup).order_by(col(ModelGroup.name))).all())


def _group_id(session: Session, ref: str | None) -> str | None:
    if not ref:
        return None
    row = session.exec(
        select(ModelGroup).where(or_(ModelGroup.id == ref, ModelGroup.name == ref))
    ).first()
    return row.id if row else create_model_group(session=session, name=ref).id


# -- models and deployments -----------------------------------------------------------------


def create_model(*, session: Session, data: ModelCreate, deploy: bool = True) -> Model:
    """Create a model (and its deployment, started at once unless ``deploy`` is false)."""
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
    model = Model(
        name=data.name,
        model_type=mtype.value,
        description=data.description,
        model_template_id=template.id if template else None,
        model_creation_parameters=params,
        connection=data.connection,
        provider_model=data.provider_model,
        model_group_id=_group_id(session, data.model_group),
        context_window=data.context_window,
    )
    session.add(model)
    session.flush()
    deployment = ModelDeployment(model_id=model.id, name=model.name, status=PENDING)
    session.add(deployment)
    session.flush()
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
                asyncio.run(_dispatch(provider, upstream, mtype, probe))
            else:
                asyncio.run(provider.list_models())
        dep.status = READY
    except StudioError as exc:
        dep.status, dep.status_reason = FAILED, str(exc)
    dep.updated_at = utcnow()
    session.add(dep)
    session.flush()
    return dep


def list_models(*, session: Session) -> list[Model]:
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
    resolved = resolve_model(session=session, ref=ref)
    if resolved.model.is_builtin:
        raise ConflictError(f"'{resolved.model.name}' is a built-in model and cannot be deleted.")
    for dep in list_deployments(session=session, model_id=resolved.model.id):
        session.delete(dep)
    session.flush()
    session.delete(resolved.model)
    session.flush()


def rename_model(*, session: Session, ref: str, new_name: str) -> Model:
    """Rename a custom model and its deployment (usage by deployment stays with it)."""
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
    model.name, model.updated_at = new_name, utcnow()
    session.add(model)
    session.flush()
    return model


def set_model_group(*, session: Session, ref: str, group: str | None) -> Model:
    """Put a custom model in a group (created if new), or take it out with ``None``."""
    model = resolve_model(session=session, ref=ref).model
    if model.is_builtin:
        raise ConflictError(f"'{model.name}' is a built-in model; its group cannot change.")
    model.model_group_id = _group_id(session, (group or "").strip() or None)
    model.updated_at = utcnow()
    session.add(model)
    session.flush()
    return model


# -- execute ------------------------------------------------------------------------------


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


def validate_model_request(*, session: Session, ref: str, payload: Any) -> BaseModel:
    """Check ``payload`` against the schema of the model's type, without calling it."""
    resolved = _lookup(session, ref, payload)
    return validate_request(resolved.model.model_type, payload)


async def _dispatch(
    provider: Provider, upstream: str, mtype: ModelType, request: BaseModel
) -> BaseModel:
    if isinstance(request, EmbeddingRequest):
        return await provider.embed(upstream, request)
    if isinstance(request, RerankingRequest):
        return await provider.rerank(upstream, request)
    if isinstance(request, AgentRequest):
        return await provider.agent(upstream, request)
    if isinstance(request, ChatPromptRequest | ChatCompletionRequest):
        return await chat_with_history(provider, upstream, request)
    if isinstance(request, CompletionRequest):
        return await provider.complete(upstream, request)
    raise AssertionError(f"no dispatch for {type(request).__name__}")  # pragma: no cover


def _tokens(response: BaseModel) -> tuple[int, int]:
    data = response.model_dump()
    if "tokens_used" in data:
        return int(data.get("tokens_used") or 0), 0
    return int(data.get("prompt_tokens") or 0), int(data.get("response_tokens") or 0)


class PreparedModel(BaseModel):
    """A model resolved once and called many times (batch runs).

    It holds no database session, so calls in flight keep no connection busy;
    usage is written afterwards with :func:`record_usage`.
    """

    model_config = {"arbitrary_types_allowed": True}

    name: str
    provider_model: str | None
    deployment_id: str | None
    model_type: ModelType
    provider: Provider
    upstream: str

    @property
    def price_names(self) -> list[str]:
        """Names to look up in the price table, in order."""
        return [self.name, self.provider_model or ""]


def prepare_model(*, session: Session, ref: str, payload: Any = None) -> PreparedModel:
    """Resolve ``ref`` and check it is ready to call.

    ``payload`` tells the model type of a ``connection/model`` name (a chat
    model when it is not given).
    """
    if payload is None:
        payload = {"messages": []}
    resolved = _lookup(session, ref, payload)
    model, dep = resolved.model, resolved.deployment
    if dep is not None and dep.status != READY:
        reason = f": {dep.status_reason}" if dep.status_reason else ""
        raise ModelNotReadyError(
            f"Model '{model.name}' is not ready (deployment status {dep.status}{reason}).",
            hint=f"Retry the deployment with `studio model deploy {model.name}`.",
        )
    provider, upstream = _provider_for(session, model)
    return PreparedModel(
        name=model.name,
        provider_model=model.provider_model,
        deployment_id=dep.id if dep else None,
        model_type=ModelType(model.model_type),
        provider=provider,
        upstream=upstream,
    )


async def acall_prepared(prepared: PreparedModel, payload: Any) -> BaseModel:
    """Validate ``payload`` against the model's type and call it (usage is not recorded)."""
    request = validate_request(prepared.model_type, payload)
    return await _dispatch(prepared.provider, prepared.upstream, prepared.model_type, request)


def record_usage(
    *,
    session: Session,
    prepared: PreparedModel,
    latency_ms: float,
    response: BaseModel | None = None,
    error: str | None = None,
    source: str = "api",
) -> float:
    """Log one call of ``prepared`` (a response, or the error it ended with); returns its cost."""
    prompt_tokens, response_tokens = _tokens(response) if response is not None else (0, 0)
    cost = 0.0
    if response is not None:
        cost = cost_for(
            session=session,
            names=prepared.price_names,
            prompt_tokens=prompt_tokens,
            response_tokens=response_tokens,
        )
    record_call(
        session=session,
        deployment_id=prepared.deployment_id,
        model_name=prepared.name,
        model_type=prepared.model_type,
        latency_ms=latency_ms,
        prompt_tokens=prompt_tokens,
        response_tokens=response_tokens,
        cost=cost,
        error=error[:2000] if error is not None else None,
        source=source,
    )
    return cost


async def aexecute(*, session: Session, ref: str, payload: Any, source: str = "api") -> BaseModel:
    """Validate ``payload`` for the model ``ref`` names, call it, record usage."""
    prepared = prepare_model(session=session, ref=ref, payload=payload)
    request = validate_request(prepared.model_type, payload)
    started = time.perf_counter()
    try:
        response = await _dispatch(
            prepared.provider, prepared.upstream, prepared.model_type, request
        )
    except StudioError as exc:
        latency_ms = (time.perf_counter() - started) * 1000
        record_usage(
            session=session, prepared=prepared, latency_ms=latency_ms, error=str(exc), source=source
        )
        session.commit()
        raise
    latency_ms = (time.perf_counter() - started) * 1000
    record_usage(
        session=session, prepared=prepared, latency_ms=latency_ms, response=response, source=source
    )
    session.commit()
    return response


def execute(*, session: Session, ref: str, payload: Any, source: str = "api") -> BaseModel:
    """Synchronous :func:`aexecute`, for the CLI and the Streamlit pages."""
    return asyncio.run(aexecute(session=session, ref=ref, payload=payload, source=source))
