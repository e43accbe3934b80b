"""Errors the studio raises. Every message is written for the person reading it.

::

    StudioError                      anything the studio reports to a user
    ├── ConfigError                  settings, connections, missing packages
    ├── NotFoundError                no such app / model / template / deployment
    ├── ConflictError                name already taken, immutable object edited
    ├── PermissionDeniedError        admin-only action outside admin mode
    ├── RequestValidationError       a request or JSON file breaks a schema rule
    ├── ModelNotReadyError           deployment is PENDING or FAILED
    └── ProviderError                a model provider failed (after retries)
        ├── ProviderAuthError        401/403: key missing or wrong
        ├── ProviderRequestError     other 4xx: the provider refused the input
        ├── ProviderRateLimitError   429 still returned after all retries
        ├── ProviderUnavailableError 5xx, dropped connection, malformed body
        └── ProviderTimeoutError     no answer within the timeout

The gateway maps these classes to HTTP status codes in one place; the CLI
prints ``error: <message>`` and exits non-zero.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ConfigError",
    "ConflictError",
    "FieldProblem",
    "ModelNotReadyError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProviderAuthError",
    "ProviderError",
    "ProviderRateLimitError",
    "ProviderRequestError",
    "ProviderTimeoutError",
    "ProviderUnavailableError",
    "RequestValidationError",
    "StudioError",
]


class StudioError(Exception):
    """Base class. ``message`` says what is wrong; ``hint`` says how to fix it."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


class ConfigError(StudioError):
    pass


class NotFoundError(StudioError):
    pass


class ConflictError(StudioError):
    pass


class PermissionDeniedError(StudioError):
    pass


class ModelNotReadyError(StudioError):
    pass


@dataclass(frozen=True)
class FieldProblem:
    """One broken rule: ``field`` is a dotted path such as ``stop_sequences`` or
    ``messages.0.role``; ``rule`` says what the value must be."""

    field: str
    rule: str

    def __str__(self) -> str:
        return f"{self.field}: {self.rule}"


class RequestValidationError(StudioError):
    def __init__(self, problems: list[FieldProblem], *, what: str = "request") -> None:
        self.problems = problems
        joined = "; ".join(str(p) for p in problems)
        super().__init__(f"Invalid {what}: {joined}")


class ProviderError(StudioError):
    """A provider call failed. ``provider_message`` is the provider's own words."""

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status_code: int | None = None,
        provider_message: str | None = None,
        hint: str | None = None,
    ) -> None:
        full = f"{provider}: {message}"
        if provider_message:
            full += f" (provider said: {provider_message})"
        super().__init__(full, hint=hint)
        self.provider = provider
        self.status_code = status_code
        self.provider_message = provider_message


class ProviderAuthError(ProviderError):
    pass


class ProviderRequestError(ProviderError):
    pass


class ProviderRateLimitError(ProviderError):
    pass


class ProviderUnavailableError(ProviderError):
    pass


class ProviderTimeoutError(ProviderError):
    pass
