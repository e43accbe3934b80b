"""The JSON documents of the Models API: templates, models, parameter schemas.

These are what ``studio model-template create FILE`` and ``studio model
create FILE`` read. Unknown fields are refused, and every error names the
field and the rule.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from studio.core.errors import ConfigError, FieldProblem, RequestValidationError
from studio.core.schemas import ModelType

__all__ = [
    "RUNTIMES",
    "ModelCreate",
    "ParameterSchema",
    "ParameterSchemaField",
    "TemplateCreate",
    "check_remote_parameters",
    "infer_model_type",
    "runtime_provider_config",
    "validate_creation_parameters",
]

# runtime → (provider kind, model types it can serve)
RUNTIMES: dict[str, tuple[str, frozenset[ModelType]]] = {
    "llama-cpp": (
        "llama-cpp",
        frozenset({ModelType.COMPLETION, ModelType.CHAT_COMPLETION, ModelType.AGENT}),
    ),
    "sentence-transformers": (
        "sentence-transformers",
        frozenset({ModelType.EMBEDDING, ModelType.RERANKING}),
    ),
    "openai-compatible": (
        "openai",
        frozenset(
            {
                ModelType.COMPLETION,
                ModelType.CHAT_COMPLETION,
                ModelType.EMBEDDING,
                ModelType.AGENT,
            }
        ),
    ),
    "anthropic": ("anthropic", frozenset({ModelType.CHAT_COMPLETION, ModelType.AGENT})),
    "rerank-api": ("rerank", frozenset({ModelType.RERANKING})),
}

_PY_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ParameterSchemaField(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    type: Literal["str", "int", "float", "bool"]
    description: str = ""
    required: bool = False


class ParameterSchema(_Strict):
    parameters: list[ParameterSchemaField] = Field(default_factory=list)

    @field_validator("parameters")
    @classmethod
    def _unique(cls, value: list[ParameterSchemaField]) -> list[ParameterSchemaField]:
        names = [p.name for p in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"parameter names must be unique; repeated: {', '.join(dupes)}")
        return value


class TemplateCreate(_Strict):
    name: str = Field(min_length=1, max_length=200)
    model_type: ModelType
    runtime: str = Field(description="One of: " + ", ".join(RUNTIMES))
    endpoint_type: Literal["SYNC", "ASYNC", "STREAMING"] = "SYNC"
    runtime_config: dict[str, Any] = Field(default_factory=dict)
    model_creation_parameters_schema: ParameterSchema = Field(default_factory=ParameterSchema)

    @field_validator("runtime")
    @classmethod
    def _known_runtime(cls, value: str) -> str:
        if value not in RUNTIMES:
            raise ValueError(f"must be one of {', '.join(RUNTIMES)} (got {value!r})")
        return value

    def model_post_init(self, _context: Any) -> None:
        served = RUNTIMES[self.runtime][1]
        if self.model_type not in served:
            kinds = ", ".join(sorted(t.value for t in served))
            raise RequestValidationError(
                [
                    FieldProblem(
                        "model_type",
                        f"runtime {self.runtime} serves {kinds}, not {self.model_type.value}",
                    )
                ],
                what="model template",
            )


class ModelCreate(_Strict):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$")
    model_type: ModelType | None = None
    description: str = ""
    model_template_id: str | None = Field(default=None, description="template id or name")
    model_creation_parameters: dict[str, Any] = Field(default_factory=dict)
    connection: str | None = Field(default=None, description="for external models")
    provider_model: str | None = Field(default=None, description="the provider's model id")
    model_group: str | None = Field(default=None, description="group id or name (namespace)")
    context_window: int | None = Field(default=None, ge=1)

    @field_validator("name")
    @classmethod
    def _not_builtin(cls, value: str) -> str:
        if value.startswith("builtin/"):
            raise ValueError("names starting with 'builtin/' are reserved for built-in models")
        return value


def validate_creation_parameters(schema: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Check ``values`` against a template's parameter schema: required, type, known names."""
    fields = {p.name: p for p in ParameterSchema.model_validate(schema).parameters}
    problems: list[FieldProblem] = []
    for name, spec in fields.items():
        if spec.required and name not in values:
            desc = f" ({spec.description})" if spec.description else ""
            problems.append(FieldProblem(f"model_creation_parameters.{name}", f"required{desc}"))
    for name, value in values.items():
        path = f"model_creation_parameters.{name}"
        declared = fields.get(name)
        if declared is None:
            known = ", ".join(fields) or "none"
            problems.append(FieldProblem(path, f"unknown parameter; this template takes: {known}"))
            continue
        ok = isinstance(value, _PY_TYPES[declared.type])
        if declared.type in ("int", "float") and isinstance(value, bool):
            ok = False
        if not ok:
            problems.append(
                FieldProblem(path, f"must be of type {declared.type} (got {type(value).__name__})")
            )
    if problems:
        raise RequestValidationError(problems, what="model_creation_parameters")
    return dict(values)


def check_remote_parameters(
    runtime_config: dict[str, Any], params: dict[str, Any], *, models_dir: Path | None
) -> dict[str, Any]:
    """The creation parameters a remote (gateway) caller may use, or a
    :class:`RequestValidationError` saying what is refused.

    * ``api_key_env`` is refused: a caller over HTTP may not make the server read one
      of its environment variables; provider keys come from stored connections.
    * ``model_path`` must lie inside ``models_dir`` (``STUDIO_MODELS_DIR``) after
      resolving ``..`` and symbolic links; a relative path is taken inside it. The
      answer is the same whether or not the file exists.

    Returns ``params`` with ``model_path`` made absolute.
    """
    problems: list[FieldProblem] = []
    out = dict(params)
    sources = [("runtime_config", runtime_config), ("model_creation_parameters", params)]
    for where, values in sources:
        for key, value in values.items():
            name = key.lower()
            path = f"{where}.{key}"
            if name == "api_key_env" and value not in (None, ""):
                problems.append(
                    FieldProblem(
                        path,
                        "a model created over the gateway may not read a server environment "
                        "variable; give connection + provider_model to use a stored "
                        "connection's key (or create the model with the studio CLI)",
                    )
                )
            elif name == "model_path":
                resolved = _inside_models_dir(value, models_dir)
                if resolved is None:
                    problems.append(
                        FieldProblem(
                            path,
                            "must be a path inside the studio's models directory "
                            "(STUDIO_MODELS_DIR), e.g. 'my-model.gguf'"
                            if models_dir is not None
                            else "cannot be set over the gateway: the operator has not "
                            "configured a models directory (STUDIO_MODELS_DIR)",
                        )
                    )
                elif values is params:
                    out[key] = str(resolved)
    if problems:
        raise RequestValidationError(problems, what="model")
    return out


def _inside_models_dir(value: Any, models_dir: Path | None) -> Path | None:
    """``value`` resolved inside ``models_dir``, or None when it points elsewhere."""
    if models_dir is None or not isinstance(value, str) or not value.strip() or "\x00" in value:
        return None
    root = Path(models_dir).resolve()
    candidate = Path(value.strip())
    if not candidate.is_absolute():
        candidate = root / candidate
    try:
        resolved = candidate.resolve()
    except (OSError, RuntimeError):  # a symlink loop, an unreadable path
        return None
    return resolved if resolved.is_relative_to(root) else None


def runtime_provider_config(
    runtime: str, runtime_config: dict[str, Any], params: dict[str, Any]
) -> tuple[str, str | None, str | None, dict[str, Any], str | None]:
    """Turn template config + creation parameters into a provider configuration.

    Returns ``(kind, base_url, api_key, options, provider_model)``. Parameter
    names are matched case-insensitively, so ``MODEL_PATH`` fills ``model_path``.
    """
    if runtime not in RUNTIMES:
        raise ConfigError(f"Unknown runtime '{runtime}'. Known: {', '.join(RUNTIMES)}.")
    merged = {k.lower(): v for k, v in {**runtime_config, **params}.items()}
    api_key = None
    key_env = merged.pop("api_key_env", None)
    if key_env:
        api_key = os.environ.get(str(key_env))
        if not api_key:
            raise ConfigError(f"The key variable ${key_env} is not set.")
    base_url = merged.pop("base_url", None)
    upstream = merged.pop("model", None)
    merged.pop("context_window", None)
    return RUNTIMES[runtime][0], base_url, api_key, merged, upstream


def infer_model_type(payload: Any) -> ModelType:
    """Guess the model type from a request's fields (for ``connection/model`` calls)."""
    keys = set(payload) if isinstance(payload, dict) else set()
    if "texts" in keys:
        return ModelType.EMBEDDING
    if "query" in keys or "chunks" in keys:
        return ModelType.RERANKING
    if "prompts" in keys:
        return ModelType.COMPLETION
    if "tools" in keys or "instructions" in keys or "memory_strategy" in keys:
        return ModelType.AGENT
    if "messages" in keys or "prompt" in keys:
        return ModelType.CHAT_COMPLETION
    raise RequestValidationError(
        [
            FieldProblem(
                "(body)",
                "cannot tell the model type: use texts (EMBEDDING), query+chunks (RERANKING), "
                "prompts (COMPLETION), messages or prompt (CHAT_COMPLETION), or tools (AGENT)",
            )
        ]
    )
