"""The fine-tuning API of an OpenAI-compatible server: upload a training file, create a
job, read its status and events, cancel it.

Paths are relative to the connection's base URL (``/files``, ``/fine_tuning/jobs``), as
for the rest of :class:`~studio.providers.openai.OpenAIProvider`, whose retries (429 with
Retry-After, 5xx, dropped connections, with backoff and jitter) every call here shares.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from studio.core.errors import ProviderUnavailableError
from studio.providers.http import _Transient, same_origin
from studio.providers.openai import OpenAIProvider

__all__ = ["FineTuningClient", "RemoteEvent", "RemoteJob"]

EVENTS_PAGE = 100


class RemoteJob(BaseModel):
    """A provider's fine-tuning job, as much as the studio reads of it."""

    model_config = ConfigDict(extra="ignore")

    id: str
    status: str  # validating_files | queued | running | succeeded | failed | cancelled
    model: str | None = None
    fine_tuned_model: str | None = None
    error: dict[str, Any] | None = None
    trained_tokens: int | None = None

    @property
    def reason(self) -> str:
        if self.error and self.error.get("message"):
            return str(self.error["message"])
        return "the provider gave no reason"


class RemoteEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    created_at: int = 0
    level: str = "info"
    message: str = ""
    type: str | None = None
    data: dict[str, Any] | None = None


class FineTuningClient:
    """Fine-tuning calls through one OpenAI-kind connection."""

    def __init__(self, provider: OpenAIProvider) -> None:
        self.provider = provider

    async def upload(self, filename: str, content: bytes) -> str:
        """Upload a JSON Lines training file (``purpose=fine-tune``); the file's id."""
        provider = self.provider
        path = "/files"
        auth = provider.auth_headers() if same_origin(provider.base_url, path) else {}
        attempts = provider.options.max_retries + 1
        for attempt in range(attempts):
            try:
                async with provider._slot():
                    try:
                        response = await provider._client().post(
                            path,
                            data={"purpose": "fine-tune"},
                            files={"file": (filename, content, "application/jsonl")},
                            headers=auth,
                        )
                    except (httpx.HTTPError, httpx.InvalidURL) as exc:
                        raise provider._transport_error(exc) from exc
                    provider._check_status(response)
                    body = response.json()
                    if not isinstance(body, dict) or not body.get("id"):
                        raise ProviderUnavailableError(
                            "answered the file upload without a file id",
                            provider=provider.name,
                            provider_message=response.text[:200],
                        )
                    return str(body["id"])
            except _Transient as transient:
                if attempt + 1 >= attempts:
                    raise transient.error from None
                await asyncio.sleep(provider._backoff(attempt, transient.retry_after))
        raise AssertionError("unreachable")  # pragma: no cover

    async def create_job(
        self,
        *,
        model: str,
        training_file: str,
        validation_file: str | None,
        hyperparameters: dict[str, Any],
        suffix: str | None = None,
        seed: int | None = None,
    ) -> RemoteJob:
        body: dict[str, Any] = {
            "model": model,
            "training_file": training_file,
            "hyperparameters": hyperparameters,
        }
        if validation_file:
            body["validation_file"] = validation_file
        if suffix:
            body["suffix"] = suffix
        if seed is not None:
            body["seed"] = seed
        answer = await self.provider.request_json("POST", "/fine_tuning/jobs", json_body=body)
        return RemoteJob.model_validate(answer)

    async def get_job(self, job_id: str) -> RemoteJob:
        answer = await self.provider.request_json("GET", f"/fine_tuning/jobs/{job_id}")
        return RemoteJob.model_validate(answer)

    async def events(self, job_id: str) -> list[RemoteEvent]:
        """The job's latest events, oldest first."""
        answer = await self.provider.request_json(
            "GET", f"/fine_tuning/jobs/{job_id}/events?limit={EVENTS_PAGE}"
        )
        data = answer.get("data", []) if isinstance(answer, dict) else []
        events = [RemoteEvent.model_validate(e) for e in data if isinstance(e, dict)]
        return sorted(events, key=lambda e: e.created_at)

    async def cancel(self, job_id: str) -> RemoteJob:
        answer = await self.provider.request_json("POST", f"/fine_tuning/jobs/{job_id}/cancel")
        return RemoteJob.model_validate(answer)
