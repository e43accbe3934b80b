"""The base model of a fine-tuning job: which backend trains it and what the job must
know about it (its group, its context window, how to count its tokens).

The built-in SmolLM2 (``builtin/smollm2-135m-instruct``, or ``-completion``) is trained
here as a LoRA adapter; a model of an OpenAI-kind connection, registered or named
``connection/model``, is trained by that connection's server. Nothing else can be.

Rules: no check here; :mod:`studio.services.finetune` checks the caller first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel
from sqlmodel import Session, select

from studio.core.errors import ConflictError, NotFoundError, StudioError
from studio.core.schemas import Message
from studio.models.connections import BUILTIN_CONNECTION, get_connection, get_provider
from studio.models.registry import resolve_model
from studio.services.finetune_data import Example
from studio.store.tables import Model, ModelGroup

__all__ = ["DEFAULT_LEARNING_RATE", "LOCAL_BASES", "Backend", "resolve_base", "token_counter"]

DEFAULT_LEARNING_RATE = 1e-3  # a LoRA adapter learning from tens of rows in a few epochs
LOCAL_BASES = {
    "builtin/smollm2-135m-instruct": "chat",
    "builtin/smollm2-135m-completion": "completion",
}


class Backend(BaseModel):
    kind: Literal["local", "openai"]
    base_model: str
    connection: str | None = None
    provider_model: str | None = None
    prompt_kind: str = "chat"
    group: str | None = None
    context_window: int | None = None


def _no_fine_tuning(base: str) -> StudioError:
    return ConflictError(
        f"'{base}' cannot be fine-tuned here: the studio fine-tunes the built-in "
        "builtin/smollm2-135m-instruct on this machine, and models of OpenAI-kind "
        "connections on their server.",
        hint="Pick builtin/smollm2-135m-instruct, or a model of an OpenAI-compatible "
        "connection whose server offers fine-tuning.",
    )


def _group_name(session: Session, model: Model | None, base: str) -> str:
    if model is not None and model.model_group_id:
        group = session.get(ModelGroup, model.model_group_id)
        if group is not None:
            return group.name
    return base


def resolve_base(session: Session, base: str) -> Backend:
    """Which backend fine-tunes ``base``, and the facts about it the job needs."""
    if base in LOCAL_BASES:
        stored = session.exec(select(Model).where(Model.name == base)).first()
        return Backend(
            kind="local",
            base_model=base,
            prompt_kind=LOCAL_BASES[base],
            group=_group_name(session, stored, base),
            context_window=stored.context_window if stored else None,
        )
    model: Model | None = None
    try:
        model = resolve_model(session=session, ref=base).model
    except NotFoundError:
        model = None
    if model is not None:
        if model.is_builtin or not model.connection or not model.provider_model:
            raise _no_fine_tuning(base)
        connection, upstream = model.connection, model.provider_model
    elif "/" in base:
        connection, upstream = base.split("/", 1)
    else:
        raise NotFoundError(
            f"No model called '{base}'.",
            hint="Name a registered model, or a connection's model as connection/model.",
        )
    if connection == BUILTIN_CONNECTION:
        raise _no_fine_tuning(base)
    conn = get_connection(session=session, name=connection)
    if conn.kind != "openai":
        raise _no_fine_tuning(base)
    window = model.context_window if model is not None else None
    if window is None:
        window = get_provider(session=session, name=connection).context_window(upstream)
    return Backend(
        kind="openai",
        base_model=model.name if model is not None else base,
        connection=connection,
        provider_model=upstream,
        group=_group_name(session, model, base),
        context_window=window,
    )


def token_counter(session: Session, backend: Backend) -> Callable[[Example], int]:
    name = BUILTIN_CONNECTION if backend.kind == "local" else backend.connection or ""
    provider = get_provider(session=session, name=name)
    upstream = (
        backend.base_model.split("/", 1)[1] if backend.kind == "local" else backend.provider_model
    )

    def count(example: Example) -> int:
        answer = Message(role="assistant", content=example.completion)
        return provider.count_tokens(upstream or "", [*example.messages, answer])

    return count
