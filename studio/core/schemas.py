"""Wire types of the five model types (field names follow the platform docs).

Every request model rejects unknown fields; ``temperature`` lies in [0, 1]
(0 means greedy); at most four stop sequences. :func:`validate_request` turns
a JSON payload into the request type of a model type and, on failure, raises
:class:`~studio.core.errors.RequestValidationError` naming each field and rule.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from studio.core.errors import FieldProblem, RequestValidationError

__all__ = [
    "REQUEST_TYPES",
    "RESPONSE_TYPES",
    "ActionContext",
    "AgentAction",
    "AgentRequest",
    "AgentResponse",
    "ChatCompletionRequest",
    "ChatCompletionResponse",
    "ChatPromptRequest",
    "CompletionRequest",
    "CompletionResponse",
    "EmbeddingRequest",
    "EmbeddingResponse",
    "MemoryStrategy",
    "Message",
    "ModelType",
    "RerankingRequest",
    "RerankingResponse",
    "Sampling",
    "Tool",
    "ToolRequest",
    "model_schemas",
    "parse_document",
    "problems_from_pydantic",
    "validate_request",
]

MAX_STOP_SEQUENCES = 4
_M = TypeVar("_M", bound=BaseModel)


class ModelType(StrEnum):
    EMBEDDING = "EMBEDDING"
    RERANKING = "RERANKING"
    COMPLETION = "COMPLETION"
    CHAT_COMPLETION = "CHAT_COMPLETION"
    AGENT = "AGENT"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Message(_Strict):
    role: Literal["system", "user", "assistant", "tool"] = Field(
        description="Who wrote the message."
    )
    content: str = Field(description="The message text.")
    name: str | None = Field(
        default=None, description="For role 'tool': the name of the tool that answered."
    )


class Sampling(_Strict):
    temperature: float = Field(
        default=0.2,
        ge=0.0,
        le=1.0,
        description="Sampling temperature in [0, 1]; 0 is greedy (deterministic).",
    )
    stop_sequences: list[str] | None = Field(
        default=None,
        max_length=MAX_STOP_SEQUENCES,
        description="Up to 4 sequences where generation stops; not included in the output.",
    )
    max_tokens: int | None = Field(
        default=None, ge=1, le=1_000_000, description="Upper bound on generated tokens."
    )
    top_p: float | None = Field(
        default=None, gt=0.0, le=1.0, description="Nucleus sampling probability mass."
    )

    @field_validator("stop_sequences")
    @classmethod
    def _non_empty_stops(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(s == "" for s in value):
            raise ValueError("stop sequences must not be empty strings")
        return value


# -- EMBEDDING ----------------------------------------------------------------


class EmbeddingRequest(_Strict):
    texts: list[str] = Field(min_length=1, description="Texts to embed.")


class EmbeddingResponse(BaseModel):
    embeddings: list[tuple[str, list[float]]] = Field(description="(text, vector) pairs.")
    tokens_used: int | None = None


# -- RERANKING ----------------------------------------------------------------


class RerankingRequest(_Strict):
    query: str = Field(description="Query the chunks are ranked against.")
    chunks: list[str] = Field(min_length=1, description="Chunks to score.")


class RerankingResponse(BaseModel):
    chunk_scores: list[float] = Field(description="One score per chunk, in input order.")
    tokens_used: int | None = None


# -- COMPLETION ---------------------------------------------------------------


class CompletionRequest(Sampling):
    prompts: list[str] = Field(min_length=1, description="Prompts to complete.")


class CompletionResponse(BaseModel):
    completions: list[tuple[str, list[str]]] = Field(description="(prompt, completions) pairs.")
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    response_tokens: int | None = None


# -- CHAT_COMPLETION ----------------------------------------------------------


class ChatCompletionRequest(Sampling):
    messages: list[Message] = Field(min_length=1, description="The conversation so far.")


class ChatPromptRequest(Sampling):
    """The platform's chat form: a new ``prompt`` plus earlier ``chat_history``.

    A model without chat support completes ``prompt`` alone; a long history is
    trimmed from the oldest end to fit the context window.
    """

    prompt: str = Field(description="The new user message.")
    chat_history: list[Message] = Field(default_factory=list)


class ChatCompletionResponse(BaseModel):
    message: Message
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    response_tokens: int | None = None
    trimmed_messages: int = Field(
        default=0, description="History messages dropped to fit the context window."
    )


# -- AGENT --------------------------------------------------------------------


class Tool(_Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")
    description: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(
        description="JSON Schema (type 'object') describing the tool's arguments."
    )

    @field_validator("arguments")
    @classmethod
    def _object_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("type") != "object":
            raise ValueError('must be a JSON Schema with "type": "object"')
        props = value.get("properties", {})
        if not isinstance(props, dict):
            raise ValueError('"properties" must be an object')
        return value


class MemoryStrategy(_Strict):
    name: Literal["last_k"] = "last_k"
    params: dict[str, int] = Field(default_factory=lambda: {"k": 10})

    @field_validator("params")
    @classmethod
    def _k_positive(cls, value: dict[str, int]) -> dict[str, int]:
        if value.get("k", 1) < 1:
            raise ValueError("k must be at least 1")
        return value


class AgentRequest(Sampling):
    messages: list[Message] = Field(min_length=1)
    tools: list[Tool] = Field(default_factory=list)
    instructions: str | None = None
    memory_strategy: MemoryStrategy | None = None


class ToolRequest(BaseModel):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    id: str | None = None


class AgentAction(StrEnum):
    TOOL_REQUEST = "tool_request"
    CONTENT = "content"


class ActionContext(BaseModel):
    content: str | None = None
    tool_request: ToolRequest | None = None


class AgentResponse(BaseModel):
    action: AgentAction
    context: ActionContext
    prompt_tokens: int | None = None
    response_tokens: int | None = None


REQUEST_TYPES: dict[ModelType, type[BaseModel]] = {
    ModelType.EMBEDDING: EmbeddingRequest,
    ModelType.RERANKING: RerankingRequest,
    ModelType.COMPLETION: CompletionRequest,
    ModelType.CHAT_COMPLETION: ChatCompletionRequest,
    ModelType.AGENT: AgentRequest,
}

RESPONSE_TYPES: dict[ModelType, type[BaseModel]] = {
    ModelType.EMBEDDING: EmbeddingResponse,
    ModelType.RERANKING: RerankingResponse,
    ModelType.COMPLETION: CompletionResponse,
    ModelType.CHAT_COMPLETION: ChatCompletionResponse,
    ModelType.AGENT: AgentResponse,
}


def _rule(err: Any, model: type[BaseModel]) -> str:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        allowed = ", ".join(sorted(model.model_fields))
        return f"unknown field; allowed fields are: {allowed}"
    if kind == "missing":
        return "required field is missing"
    if kind == "too_long":
        return f"at most {ctx.get('max_length')} items allowed (got {ctx.get('actual_length')})"
    if kind == "too_short":
        return f"at least {ctx.get('min_length')} item(s) required"
    if kind in ("less_than_equal", "greater_than_equal", "less_than", "greater_than"):
        ops = {
            "less_than_equal": ("<=", "le"),
            "greater_than_equal": (">=", "ge"),
            "less_than": ("<", "lt"),
            "greater_than": (">", "gt"),
        }
        sym, key = ops[kind]
        return f"must be {sym} {ctx.get(key)} (got {err.get('input')!r})"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')} (got {err.get('input')!r})"
    msg = str(err.get("msg", "invalid value"))
    return msg.removeprefix("Value error, ")


def problems_from_pydantic(
    exc: PydanticValidationError, model: type[BaseModel]
) -> list[FieldProblem]:
    problems = []
    for err in exc.errors():
        loc = ".".join(str(part) for part in err.get("loc", ())) or "(body)"
        problems.append(FieldProblem(field=loc, rule=_rule(err, model)))
    return problems


def parse_document(model: type[_M], payload: Any, what: str) -> _M:
    """Validate a JSON document as ``model``; errors name each field and rule."""
    return _parse(model, payload, what)  # type: ignore[return-value]


def _parse(model: type[BaseModel], payload: Any, what: str) -> BaseModel:
    if not isinstance(payload, dict):
        raise RequestValidationError([FieldProblem("(body)", "must be a JSON object")], what=what)
    try:
        return model.model_validate(payload)
    except PydanticValidationError as exc:
        raise RequestValidationError(problems_from_pydantic(exc, model), what=what) from exc


def validate_request(model_type: ModelType | str, payload: Any) -> BaseModel:
    """Validate ``payload`` as a request for ``model_type``.

    CHAT_COMPLETION accepts both the ``messages`` form and the platform's
    ``prompt`` + ``chat_history`` form.
    """
    mtype = ModelType(model_type)
    what = f"{mtype.value} request"
    if mtype is ModelType.CHAT_COMPLETION and isinstance(payload, dict) and "prompt" in payload:
        return _parse(ChatPromptRequest, payload, what)
    return _parse(REQUEST_TYPES[mtype], payload, what)


def model_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schemas of every request and response type, by model type."""
    out: dict[str, dict[str, Any]] = {}
    for mtype in ModelType:
        out[mtype.value] = {
            "request": REQUEST_TYPES[mtype].model_json_schema(),
            "response": RESPONSE_TYPES[mtype].model_json_schema(),
        }
    out["CHAT_COMPLETION"]["request_prompt_form"] = ChatPromptRequest.model_json_schema()
    return out


def dumps(obj: BaseModel) -> str:
    return json.dumps(obj.model_dump(mode="json"), indent=2)
