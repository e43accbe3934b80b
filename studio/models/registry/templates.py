"""Model templates (admin only) and model groups.

A **model template** says how a self-hosted model runs: its ``runtime``
(``llama-cpp``, ``sentence-transformers``, ``openai-compatible``,
``anthropic``, ``rerank-api``), fixed ``runtime_config``, and the
``model_creation_parameters_schema`` a model must fill in. A **model group** is
a namespace for the iterations of a model.

Rules (:mod:`studio.models.permissions`): administrators and members read templates and
groups; creating and deleting templates and creating groups is for administrators, and
template changes are in the audit log.
"""

from __future__ import annotations

from sqlmodel import Session, col, or_, select

from studio.core.errors import (
    ConflictError,
    NotFoundError,
)
from studio.core.identity import require_admin
from studio.core.settings import get_settings
from studio.models.permissions import require_model_reader
from studio.models.specs import (
    TemplateCreate,
    check_remote_parameters,
)
from studio.store import audit
from studio.store.tables import Model, ModelGroup, ModelTemplate

__all__ = [
    "create_model_group",
    "create_template",
    "delete_template",
    "get_template",
    "group_id",
    "list_model_groups",
    "list_templates",
]


# -- templates ----------------------------------------------------------------------


def _require_admin(action: str) -> None:
    require_admin(action)


def create_template(
    *, session: Session, data: TemplateCreate, local: bool = False
) -> ModelTemplate:
    """Create a model template (administrators).

    ``local`` is true only for the operator on this machine (the CLI, the studio's own
    pages). A template created over the gateway may not name a server environment
    variable or a path outside ``STUDIO_MODELS_DIR`` in its ``runtime_config``, because
    every model made from it later, even by the operator, would use them.
    """
    _require_admin("create model templates")
    if not local:
        check_remote_parameters(data.runtime_config, {}, models_dir=get_settings().models_dir)
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
    _audit(session, "create", row)
    return row


def _audit(session: Session, action: str, row: ModelTemplate) -> None:
    audit.record(
        session,
        action=action,
        target_kind="model-template",
        target_id=row.id,
        target_name=row.name,
        details={"model_type": row.model_type, "runtime": row.runtime},
    )


def list_templates(*, session: Session) -> list[ModelTemplate]:
    require_model_reader("list model templates")
    return list(session.exec(select(ModelTemplate).order_by(col(ModelTemplate.name))).all())


def get_template(*, session: Session, ref: str) -> ModelTemplate:
    require_model_reader("read model templates")
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
    _audit(session, "delete", row)
    session.delete(row)
    session.flush()


# -- groups ---------------------------------------------------------------------------


def create_model_group(*, session: Session, name: str, description: str = "") -> ModelGroup:
    _require_admin("create model groups")
    if session.exec(select(ModelGroup).where(ModelGroup.name == name)).first():
        raise ConflictError(f"A model group named '{name}' already exists.")
    row = ModelGroup(name=name, description=description)
    session.add(row)
    session.flush()
    return row


def list_model_groups(*, session: Session) -> list[ModelGroup]:
    require_model_reader("list model groups")
    return list(session.exec(select(ModelGroup).order_by(col(ModelGroup.name))).all())


def group_id(session: Session, ref: str | None) -> str | None:
    """The id of group ``ref`` (by id or name), created when it does not exist yet."""
    if not ref:
        return None
    row = session.exec(
        select(ModelGroup).where(or_(ModelGroup.id == ref, ModelGroup.name == ref))
    ).first()
    return row.id if row else create_model_group(session=session, name=ref).id
