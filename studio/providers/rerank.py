"""Reranking servers that speak the common ``/rerank`` shape.

Cohere, Jina, vLLM and Infinity answer ``{"results": [{"index",
"relevance_score"}]}``; Hugging Face text-embeddings-inference answers a bare
list ``[{"index", "score"}]`` and reads the chunks from ``texts`` rather than
``documents`` (set the ``documents_field`` option). Scores come back sorted by
relevance; they are returned here in input order, one per chunk.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field
from pydantic import ValidationError as PydanticValidationError

from studio.core.errors import ConfigError, ProviderUnavailableError
from studio.core.schemas import (
    ModelType,
    RerankingRequest,
    RerankingResponse,
    problems_from_pydantic,
)
from studio.providers.http import HTTPProvider

__all__ = ["PROVIDER", "RerankProvider"]


class _Result(BaseModel):
    index: int
    relevance_score: float | None = None
    score: float | None = None


class _Tokens(BaseModel):
    input_tokens: int | None = None


class _Meta(BaseModel):
    tokens: _Tokens | None = None
    billed_units: _Tokens | None = None


class _Usage(BaseModel):
    total_tokens: int | None = None
    prompt_tokens: int | None = None


class _RerankBody(BaseModel):
    results: list[_Result]
    meta: _Meta | None = None
    usage: _Usage | None = None

    def tokens_used(self) -> int | None:
        if self.usage is not None:
            found = self.usage.total_tokens or self.usage.prompt_tokens
            if found is not None:
                return found
        if self.meta is not None:
            for tokens in (self.meta.tokens, self.meta.billed_units):
                if tokens is not None and tokens.input_tokens is not None:
                    return tokens.input_tokens
        return None


class RerankProvider(HTTPProvider):
    """Any server with a Cohere-style or text-embeddings-inference ``/rerank`` endpoint."""

    kind = "rerank"
    description = "Reranking servers with a /rerank endpoint (Cohere, Jina, vLLM, TEI, Infinity)."
    model_types = frozenset({ModelType.RERANKING})
    needs_key = False
    key_env_var = None
    default_base_url = None

    class Options(HTTPProvider.Options):
        path: str = Field(
            default="/rerank",
            min_length=2,
            max_length=200,
            pattern=r"^/\S*$",
            description="Path of the rerank endpoint under the base URL, e.g. '/v1/rerank'.",
        )
        documents_field: Literal["documents", "texts"] = Field(
            default="documents",
            description="Request field holding the chunks: 'documents' (Cohere, Jina, vLLM) "
            "or 'texts' (Hugging Face text-embeddings-inference).",
        )

    options: Options

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not self.base_url:
            raise ConfigError(
                f"Connection '{self.name}' (rerank) needs a base URL.",
                hint="Give the server's address, e.g. http://localhost:8080.",
            )

    def error_message(self, response: httpx.Response) -> str:
        message = super().error_message(response)
        return message.replace(self._api_key, "***") if self._api_key else message

    def _shape_error(self, problem: str, body: Any) -> ProviderUnavailableError:
        return ProviderUnavailableError(
            f"answered {self.options.path} in an unexpected shape ({problem})",
            provider=self.name,
            provider_message=json.dumps(body, default=str)[:200],
            hint="Check the rerank path option and that the server speaks the /rerank API.",
        )

    async def rerank(self, model: str, request: RerankingRequest) -> RerankingResponse:
        payload = {
            "model": model,
            "query": request.query,
            self.options.documents_field: list(request.chunks),
            "top_n": len(request.chunks),
        }
        raw = await self.request_json("POST", self.options.path, json_body=payload)
        try:
            body = _RerankBody.model_validate({"results": raw} if isinstance(raw, list) else raw)
        except PydanticValidationError as exc:
            problems = "; ".join(str(p) for p in problems_from_pydantic(exc, _RerankBody))
            raise self._shape_error(problems, raw) from exc

        scores: list[float | None] = [None] * len(request.chunks)
        for result in body.results:
            score = result.relevance_score if result.relevance_score is not None else result.score
            if score is None:
                raise self._shape_error(f"result for index {result.index} has no score", raw)
            if not 0 <= result.index < len(scores) or scores[result.index] is not None:
                raise self._shape_error(
                    f"index {result.index} is out of range or repeated for {len(scores)} chunk(s)",
                    raw,
                )
            scores[result.index] = score
        missing = [i for i, s in enumerate(scores) if s is None]
        if missing:
            raise self._shape_error(
                f"no score for chunk index(es) {', '.join(map(str, missing))}", raw
            )
        return RerankingResponse(
            chunk_scores=[s for s in scores if s is not None], tokens_used=body.tokens_used()
        )


PROVIDER = RerankProvider
