"""Calling deployed endpoints and model deployments: the gateway's hot path.

* :func:`generate` answers one request: it renders the pinned template with the
  caller's inputs and calls the model. The gateway reads the endpoint through
  :func:`aload_runtime` (a cache miss reads the database in a worker thread, never on
  the event loop, once for all the requests that miss at that moment), cached for
  :data:`ENDPOINT_CACHE_TTL_S` seconds and refreshed ahead while it is busy (a
  :class:`~studio.services.ttl_cache.TTLCache`), so a deploy in any process that
  shares the database is live within that time
  (and at once in the process that made it, see
  :func:`~studio.services.endpoints.deploy`).
* :func:`call_model` calls a model deployment by name the same way (the
  OpenAI-compatible surface, where ``model`` may be an endpoint or a model).

An endpoint whose variant version has a retrieval step searches its knowledge base per
request first (:func:`~studio.services.retrieval.aretrieve`: no session held while the
query is embedded), gives the chunks to the template as ``{{context}}``/``{{chunks}}``
and reports them in :attr:`GenerateResult.retrieval` for the request log.

Neither writes to the database nor holds a session while the model answers: the
gateway's request log records usage in batches, off the request path.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session, select

from studio.core.errors import FieldProblem, NotFoundError, RequestValidationError, StudioError
from studio.core.prompting import build_payload, output_text, response_tokens
from studio.core.schemas import Message, ModelType
from studio.core.templates import render
from studio.models import registry
from studio.models.specs import infer_model_type
from studio.models.usage import Price, price_of
from studio.services.retrieval_spec import RetrievalSpec, caller_variables
from studio.services.ttl_cache import TTLCache
from studio.services.variants import model_reference, version_config
from studio.store import session_scope
from studio.store.tables import Endpoint, VariantVersion

__all__ = [
    "CHAT_PROBE",
    "ENDPOINT_CACHE_TTL_S",
    "NAME_PATTERN",
    "EndpointRuntime",
    "GenerateResult",
    "aload_runtime",
    "call_model",
    "clear_endpoint_cache",
    "endpoint_payload",
    "generate",
    "load_runtime",
    "model_type_of",
    "prepared_model",
    "require_inputs",
    "with_retrieval",
]

ENDPOINT_CACHE_TTL_S = 0.5
# Variants call ``connection/model`` names as chat models (as runs do).
CHAT_PROBE: dict[str, Any] = {"messages": []}
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


class GenerateResult(BaseModel):
    """One answer: the text, its usage and where it came from."""

    output: str
    finish_reason: str | None = None
    model: str
    endpoint: str | None = None
    endpoint_id: int | None = None
    app_id: int | None = None
    version: int | None = None
    prompt_tokens: int = 0
    response_tokens: int = 0
    cost: float = 0.0
    latency_ms: float
    model_latency_ms: float
    response: dict[str, Any]
    retrieval: dict[str, Any] | None = None  # {query, chunks: [{id, document, score}]}

    @property
    def usage(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "response_tokens": self.response_tokens,
            "total_tokens": self.prompt_tokens + self.response_tokens,
            "cost": self.cost,
        }


# -- the hot path: cached runtimes -----------------------------------------------------


@dataclass(frozen=True)
class EndpointRuntime:
    """Everything a request to an endpoint needs, read once from the database."""

    endpoint_id: int
    app_id: int
    name: str
    version: int
    variant_version_id: int
    prompt: Any  # PromptTemplate
    parameters: dict[str, Any]
    variables: tuple[str, ...]
    prepared: registry.PreparedModel
    price: Price
    retrieval: RetrievalSpec | None = None


def clear_endpoint_cache() -> None:
    _runtimes.clear()
    _models.clear()


def _load_runtime(session: Session, name: str) -> EndpointRuntime | None:
    row = session.exec(select(Endpoint).where(Endpoint.name == name)).first()
    if row is None or not row.active or row.variant_version_id is None:
        return None
    version = session.get(VariantVersion, row.variant_version_id)
    assert version is not None and row.id is not None and version.id is not None
    config = version_config(version)
    ref = model_reference(session=session, version=version)  # by id: renames do not matter
    prepared = registry.prepare_model(session=session, ref=ref, payload=CHAT_PROBE)
    variables = caller_variables(config.prompt, config.retrieval)  # not context/chunks
    return EndpointRuntime(
        endpoint_id=row.id,
        app_id=row.app_id,
        name=row.name,
        version=version.version,
        variant_version_id=version.id,
        prompt=config.prompt,
        parameters=config.parameter_dict(),
        variables=tuple(variables),
        prepared=prepared,
        price=price_of(session=session, names=prepared.price_names),
        retrieval=config.retrieval,
    )


def _fetch_runtime(key: str) -> EndpointRuntime | None:
    """Read the endpoint with a short session of its own (blocking)."""
    with session_scope() as session:
        return _load_runtime(session, key)


_runtimes: TTLCache[str, EndpointRuntime | None] = TTLCache(
    _fetch_runtime, ttl_s=ENDPOINT_CACHE_TTL_S
)


def _found(name: str, runtime: EndpointRuntime | None, missing_ok: bool) -> EndpointRuntime | None:
    if runtime is None and not missing_ok:
        raise NotFoundError(
            f"No deployed endpoint '{name}'.",
            hint="Deploy a variant to it first (`studio deploy --app APP --variant NAME`).",
        )
    return runtime


def load_runtime(name: str, *, missing_ok: bool = False) -> EndpointRuntime | None:
    """The active endpoint ``name`` (never read more than :data:`ENDPOINT_CACHE_TTL_S`
    seconds ago).

    Raises :class:`NotFoundError` when there is none, unless ``missing_ok``. A cache miss
    reads the database here, blocking: async code uses :func:`aload_runtime`.
    """
    key = name.strip().lower()
    if not NAME_PATTERN.match(key):
        return _found(name, None, missing_ok)  # no endpoint can have this name
    return _found(name, _runtimes.get(key), missing_ok)


async def aload_runtime(name: str, *, missing_ok: bool = False) -> EndpointRuntime | None:
    """:func:`load_runtime` for the event loop: a cache miss reads the database in a
    worker thread, once for all the requests that miss on one endpoint at a time."""
    key = name.strip().lower()
    if not NAME_PATTERN.match(key):
        return _found(name, None, missing_ok)  # no database round trip
    return _found(name, await _runtimes.aget(key), missing_ok)


# The smallest request of each type: what a cached model lookup needs of a request.
PROBES: dict[str, dict[str, Any]] = {
    ModelType.EMBEDDING.value: {"texts": []},
    ModelType.RERANKING.value: {"query": ""},
    ModelType.COMPLETION.value: {"prompts": []},
    ModelType.AGENT.value: {"tools": []},
    ModelType.CHAT_COMPLETION.value: CHAT_PROBE,
}


def _probe(payload: Any) -> str:
    """The part of a request a model lookup depends on: a ``connection/model`` name's
    type comes from the request's shape, so an embedding request and a chat probe of one
    name are different lookups ("-" when the shape tells no type)."""
    try:
        return infer_model_type(payload).value
    except StudioError:
        return "-"


def _fetch_model(key: tuple[str, str]) -> tuple[registry.PreparedModel, Price]:
    """Resolve and price a model with a short session of its own (blocking)."""
    ref, kind = key
    with session_scope() as session:
        prepared = registry.prepare_model(session=session, ref=ref, payload=PROBES.get(kind, {}))
        price = price_of(session=session, names=prepared.price_names)
    return prepared, price


_models: TTLCache[tuple[str, str], tuple[registry.PreparedModel, Price]] = TTLCache(
    _fetch_model, ttl_s=ENDPOINT_CACHE_TTL_S
)


async def prepared_model(ref: str, payload: Any) -> tuple[registry.PreparedModel, Price]:
    """Model deployment ``ref`` resolved and priced for a request like ``payload`` (a chat
    request when None), from the cache (a miss reads the database in a worker thread)."""
    if "\x00" in ref:  # PostgreSQL refuses NUL in text; no model is named so
        raise NotFoundError(f"No model {ref!r}.", hint="See the models with `studio model list`.")
    return await _models.aget((ref, _probe(CHAT_PROBE if payload is None else payload)))


async def _call(
    prepared: registry.PreparedModel, price: Price, payload: Any, started: float
) -> GenerateResult:
    model_started = time.perf_counter()
    response = await registry.acall_prepared(prepared, payload)
    finished = time.perf_counter()
    data = response.model_dump(mode="json")
    prompt_tokens, answer_tokens = response_tokens(data)
    return GenerateResult(
        output=output_text(data),
        finish_reason=data.get("finish_reason"),
        model=prepared.name,
        prompt_tokens=prompt_tokens,
        response_tokens=answer_tokens,
        cost=price.cost(prompt_tokens, answer_tokens),
        latency_ms=(finished - started) * 1000,
        model_latency_ms=(finished - model_started) * 1000,
        response=data,
    )


def endpoint_payload(
    runtime: EndpointRuntime,
    inputs: Mapping[str, Any],
    messages: Sequence[Message] = (),
    parameters: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The model request of one call of endpoint ``runtime``: its pinned template rendered
    with ``inputs``, ``messages`` appended after the rendered prompt (chat continuation),
    and ``parameters`` over the variant's sampling parameters. Whole and streamed calls
    (:mod:`~studio.services.endpoint_streams`) both build their request here; with a
    retrieval step, ``inputs`` hold the step's variables too (:func:`with_retrieval`)."""
    require_inputs(runtime, inputs)
    rendered: str | list[Message] = render(runtime.prompt, inputs)
    if messages:
        head = [Message(role="user", content=rendered)] if isinstance(rendered, str) else rendered
        rendered = [*head, *messages]
    mtype = runtime.prepared.model_type
    if mtype not in (ModelType.COMPLETION, ModelType.CHAT_COMPLETION):
        raise RequestValidationError(
            [FieldProblem("model", f"an endpoint needs a completion or chat model, not {mtype}")]
        )
    return build_payload(mtype, rendered, {**runtime.parameters, **(parameters or {})})


def require_inputs(runtime: EndpointRuntime, inputs: Mapping[str, Any]) -> None:
    """Refuse a request that lacks a variable the template (or the retrieval query) uses."""
    missing = [v for v in runtime.variables if v not in inputs]
    if missing:
        raise RequestValidationError(
            [FieldProblem(f"inputs.{v}", "required by the endpoint's template") for v in missing],
            what="request",
        )


async def with_retrieval(
    runtime: EndpointRuntime, inputs: Mapping[str, Any]
) -> tuple[Mapping[str, Any], dict[str, Any] | None]:
    """``inputs`` with the retrieval step's variables added, and what the request log
    keeps of the chunks (``inputs`` unchanged and None without a step)."""
    if runtime.retrieval is None:
        return inputs, None
    require_inputs(runtime, inputs)
    from studio.services.retrieval import aretrieve  # the search machinery: lazily

    got = await aretrieve(spec=runtime.retrieval, row=inputs)
    return {**inputs, **got.variables()}, got.logged()


async def generate(
    *,
    name: str,
    inputs: Mapping[str, Any],
    messages: Sequence[Message] = (),
    parameters: Mapping[str, Any] | None = None,
) -> GenerateResult:
    """Render endpoint ``name``'s template with ``inputs`` and call its model.

    ``messages`` are appended after the rendered prompt (chat continuation);
    ``parameters`` override the variant's sampling parameters.
    """
    started = time.perf_counter()
    runtime = await aload_runtime(name)
    assert runtime is not None
    values, retrieved = await with_retrieval(runtime, inputs)
    payload = endpoint_payload(runtime, values, messages, parameters)
    result = await _call(runtime.prepared, runtime.price, payload, started)
    return result.model_copy(
        update={
            "endpoint": runtime.name,
            "endpoint_id": runtime.endpoint_id,
            "app_id": runtime.app_id,
            "version": runtime.version,
            "retrieval": retrieved,
        }
    )


async def call_model(*, ref: str, payload: Mapping[str, Any]) -> GenerateResult:
    """Call model deployment ``ref`` with a request of its type (no usage written here)."""
    started = time.perf_counter()
    prepared, price = await prepared_model(ref, dict(payload))
    return await _call(prepared, price, dict(payload), started)


async def model_type_of(ref: str, payload: Mapping[str, Any] | None = None) -> ModelType:
    """The type of model deployment ``ref`` (cached like :func:`call_model`).

    A ``connection/model`` name has the type ``payload``'s shape says (a chat model when
    it is not given), as :func:`call_model` will call it.
    """
    return (await prepared_model(ref, None if payload is None else dict(payload)))[0].model_type
