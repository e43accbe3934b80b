"""The model registry: templates → models → deployments → execute.

The platform's Models API in one namespace (``registry.create_model``,
``registry.execute``, ...), drawn from three modules:

* :mod:`~studio.models.registry.templates`: model templates (admin only) and model groups;
* :mod:`~studio.models.registry.models`: models, deployments, and looking a model up by
  any of its names;
* :mod:`~studio.models.registry.calls`: validating, calling and recording usage.
"""

from __future__ import annotations

from studio.models.registry.calls import (
    ModelStream,
    PreparedModel,
    acall_prepared,
    aexecute,
    astream_prepared,
    execute,
    prepare_model,
    record_usage,
    validate_model_request,
)
from studio.models.registry.models import (
    FAILED,
    PENDING,
    READY,
    ModelOverview,
    ResolvedModel,
    create_model,
    delete_model,
    deploy_model,
    get_model,
    list_deployments,
    list_models,
    model_overview,
    model_type,
    rename_model,
    resolve_model,
    set_model_group,
)
from studio.models.registry.templates import (
    create_model_group,
    create_template,
    delete_template,
    get_template,
    list_model_groups,
    list_templates,
)

__all__ = [
    "FAILED",
    "PENDING",
    "READY",
    "ModelOverview",
    "ModelStream",
    "PreparedModel",
    "ResolvedModel",
    "acall_prepared",
    "aexecute",
    "astream_prepared",
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
    "rename_model",
    "resolve_model",
    "set_model_group",
    "validate_model_request",
]
