"""What a fresh database starts with: built-in models, system templates, prices.

Seeding is idempotent; it runs after every migration on start. Built-in models
get immutable, READY deployments named like the model.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from studio.providers.builtin import BUILTIN_MODELS
from studio.store.tables import Model, ModelDeployment, ModelPrice, ModelTemplate

__all__ = ["SYSTEM_TEMPLATES", "seed_defaults"]


def _param(name: str, type_: str, description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "type": type_, "description": description, "required": required}


SYSTEM_TEMPLATES: list[dict[str, Any]] = [
    {
        "name": "llama-cpp-chat",
        "model_type": "CHAT_COMPLETION",
        "runtime": "llama-cpp",
        "runtime_config": {"n_ctx": 4096},
        "parameters": [
            _param("model_path", "str", "Path to a GGUF file on this machine", True),
            _param("n_ctx", "int", "Context window in tokens (default 4096)"),
            _param("chat_format", "str", "llama.cpp chat format, if the GGUF lacks one"),
        ],
    },
    {
        "name": "llama-cpp-completion",
        "model_type": "COMPLETION",
        "runtime": "llama-cpp",
        "runtime_config": {"n_ctx": 4096},
        "parameters": [
            _param("model_path", "str", "Path to a GGUF file on this machine", True),
            _param("n_ctx", "int", "Context window in tokens (default 4096)"),
        ],
    },
    {
        "name": "sentence-transformers-embedding",
        "model_type": "EMBEDDING",
        "runtime": "sentence-transformers",
        "runtime_config": {},
        "parameters": [
            _param("model_path", "str", "Directory of a sentence-transformers model", True),
        ],
    },
    {
        "name": "openai-compatible-chat",
        "model_type": "CHAT_COMPLETION",
        "runtime": "openai-compatible",
        "runtime_config": {},
        "parameters": [
            _param(
                "base_url", "str", "Server URL ending in /v1, e.g. http://localhost:8000/v1", True
            ),
            _param("model", "str", "The server's model id", True),
            _param("api_key_env", "str", "Environment variable holding the key, if any"),
        ],
    },
    {
        "name": "openai-compatible-embedding",
        "model_type": "EMBEDDING",
        "runtime": "openai-compatible",
        "runtime_config": {},
        "parameters": [
            _param("base_url", "str", "Server URL ending in /v1", True),
            _param("model", "str", "The server's embedding model id", True),
            _param("api_key_env", "str", "Environment variable holding the key, if any"),
        ],
    },
    {
        "name": "rerank-api",
        "model_type": "RERANKING",
        "runtime": "rerank-api",
        "runtime_config": {},
        "parameters": [
            _param("base_url", "str", "Server URL; the studio POSTs to <base_url>/rerank", True),
            _param("model", "str", "The server's reranking model id", True),
            _param("api_key_env", "str", "Environment variable holding the key, if any"),
        ],
    },
]

# USD per million tokens (input, output), as published by the providers; edit
# them with `studio price set MODEL --input X --output Y`.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "text-embedding-3-small": (0.02, 0.0),
    "text-embedding-3-large": (0.13, 0.0),
    "claude-3-5-haiku-latest": (0.80, 4.00),
    "claude-sonnet-4-0": (3.00, 15.00),
}


def seed_defaults(session: Session) -> None:
    for info in BUILTIN_MODELS:
        name = f"builtin/{info.id}"
        model = session.exec(select(Model).where(Model.name == name)).first()
        if model is None:
            model = Model(
                name=name,
                model_type=info.model_type.value,
                description=info.description,
                connection="builtin",
                provider_model=info.id,
                is_builtin=True,
                context_window=info.context_window,
            )
            session.add(model)
            session.flush()
        if (
            session.exec(select(ModelDeployment).where(ModelDeployment.name == name)).first()
            is None
        ):
            session.add(
                ModelDeployment(model_id=model.id, name=name, status="READY", is_builtin=True)
            )
        if session.get(ModelPrice, name) is None:
            session.add(ModelPrice(model=name, input_per_mtok=0.0, output_per_mtok=0.0))
    for spec in SYSTEM_TEMPLATES:
        if session.exec(select(ModelTemplate).where(ModelTemplate.name == spec["name"])).first():
            continue
        session.add(
            ModelTemplate(
                name=spec["name"],
                model_type=spec["model_type"],
                runtime=spec["runtime"],
                runtime_config=spec["runtime_config"],
                model_creation_parameters_schema={"parameters": spec["parameters"]},
                is_system=True,
            )
        )
    for model_id, (inp, out) in DEFAULT_PRICES.items():
        if session.get(ModelPrice, model_id) is None:
            session.add(ModelPrice(model=model_id, input_per_mtok=inp, output_per_mtok=out))
    session.flush()
