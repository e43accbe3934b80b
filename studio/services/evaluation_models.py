"""How model-backed evaluators (the LLM judge, semantic similarity) reach models.

:class:`LayerModels` calls them through the model layer (its retries, connection
limits, prices and usage records) and holds no database session while a model answers.

Rules: model calls go through :func:`~studio.models.registry.aexecute`, which needs an
administrator, a member, a key or the worker: the evaluation's caller.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import anyio.to_thread

from studio.core.errors import StudioError
from studio.core.prompting import output_text
from studio.core.prompting import response_tokens as tokens_of
from studio.evaluators import ModelCaller
from studio.models import registry
from studio.models.usage import Price, price_of, usage_values
from studio.store import session_scope

__all__ = ["LayerModels"]


class LayerModels(ModelCaller):
    """Model calls of model-backed evaluators, through the model layer (no session held).

    With ``usage`` (what :func:`execute_evaluation` passes) each judge or embedding model
    is resolved once per evaluation in a worker thread, as a run resolves its model, and
    each call's usage row is handed to ``usage`` (the score writer stores it with the
    scores, off the event loop) instead of a write of its own that the call waits for.
    With a lookup and a usage write per call (in worker threads, each awaited), 640 judge
    calls at concurrency 32 to a 200 ms server used 2.3 s of CPU and reached 0.89 of the
    ideal throughput; without them 0.3 s and 0.92-0.94 (bench/bench_eval_judge.py).
    Without ``usage`` every call goes through :func:`~studio.models.registry.aexecute`.
    """

    def __init__(self, usage: Callable[[dict[str, Any]], None] | None = None) -> None:
        self._usage = usage
        self._prepared: dict[tuple[str, str], tuple[registry.PreparedModel, Price]] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def chat(self, model: str, messages: list[dict[str, str]], **params: Any) -> str:
        data = await self._call(model, "chat", {"messages": messages, **params})
        return output_text(data)

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        data = await self._call(model, "embed", {"texts": texts})
        return [list(vector) for _text, vector in data["embeddings"]]

    async def _call(self, ref: str, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        if self._usage is None:
            response = await registry.aexecute(ref=ref, payload=payload, source="evaluation")
            return response.model_dump(mode="json")
        prepared, price = await self._prepare(ref, kind, payload)
        started = time.perf_counter()
        try:
            response = await registry.acall_prepared(prepared, payload)
        except StudioError as exc:
            self._note(prepared, price, started, None, str(exc))
            raise
        data = response.model_dump(mode="json")
        self._note(prepared, price, started, data, None)
        return data

    async def _prepare(
        self, ref: str, kind: str, payload: dict[str, Any]
    ) -> tuple[registry.PreparedModel, Price]:
        key = (ref, kind)
        found = self._prepared.get(key)
        if found is None:
            async with self._locks.setdefault(key, asyncio.Lock()):  # one lookup, not 32
                found = self._prepared.get(key)
                if found is None:
                    found = await anyio.to_thread.run_sync(_prepare_once, ref, payload)
                    self._prepared[key] = found
        return found

    def _note(
        self,
        prepared: registry.PreparedModel,
        price: Price,
        started: float,
        data: dict[str, Any] | None,
        error: str | None,
    ) -> None:
        assert self._usage is not None
        prompt, answer = tokens_of(data) if data is not None else (0, 0)
        values = usage_values(
            deployment_id=prepared.deployment_id,
            model_name=prepared.name,
            model_type=prepared.model_type,
            source="evaluation",
            latency_ms=(time.perf_counter() - started) * 1000,
            prompt_tokens=prompt,
            response_tokens=answer,
            cost=price.cost(prompt, answer) if data is not None else 0.0,
            error=error,
        )
        self._usage(values)


def _prepare_once(ref: str, payload: dict[str, Any]) -> tuple[registry.PreparedModel, Price]:
    """The model and its price, read with a short session (blocking: run in a thread)."""
    with session_scope() as session:
        prepared = registry.prepare_model(session=session, ref=ref, payload=payload)
        return prepared, price_of(session=session, names=prepared.price_names)
