"""Errors the studio raises. Every message is written for the person reading it.

::

    StudioError                      anything the studio reports to a user
    ├── ConfigError                  settings, connections, missing packages
    ├── NotFoundError                no such app / model / template / deployment
    ├── ConflictError                name already taken, immutable object edited
    ├── PermissionDeniedError        the caller's role, scopes or apps do not allow it
    ├── RequestValidationError       a request or JSON file breaks a schema rule
    ├── ModelNotReadyError           deployment is PENDING or FAILED
    ├── DatasetError                 a dataset file or edit that cannot be stored
    ├── PromptTemplateError          a prompt template the studio cannot use
    │   ├── PromptSyntaxError        Jinja syntax (with the line number)
    │   ├── UnsafeTemplateError      reaches outside the sandbox
    │   ├── TemplateLimitError       output, loop or number too large
    │   ├── MissingColumnsError      names a column the dataset lacks
    │   └── PromptRenderError        failed while rendering one row
    ├── InvalidApiKeyError           no key, or one the studio never issued (HTTP 401)
    ├── RevokedApiKeyError           revoked, or another app's key (HTTP 403)
    ├── RateLimitedError             the key's requests per minute are used up (HTTP 429)
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
    "DatasetError",
    "FieldProblem",
    "InvalidApiKeyError",
    "MissingColumnsError",
    "ModelNotReadyError",
    "NotFoundError",
    "PermissionDeniedError",
    "PromptRenderError",
    "PromptSyntaxError",
    "PromptTemplateError",
    "ProviderAuthError",
    "ProviderError",
    "ProviderRateLimitError",
    "ProviderRequestError",
    "ProviderTimeoutError",
    "ProviderUnavailableError",
    "RateLimitedError",
    "RequestValidationError",
    "RevokedApiKeyError",
    "StudioError",
    "TemplateLimitError",
    "UnsafeTemplateError",
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


class DatasetError(StudioError):
    """A dataset file or edit that cannot be stored; the hint says how to fix it."""


class PromptTemplateError(StudioError):
    """Base class of every template problem."""


class PromptSyntaxError(PromptTemplateError):
    def __init__(self, message: str, *, lineno: int | None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.lineno = lineno


class UnsafeTemplateError(PromptTemplateError):
    pass


class TemplateLimitError(PromptTemplateError):
    pass


class MissingColumnsError(PromptTemplateError):
    def __init__(self, message: str, *, missing: list[str], columns: list[str]) -> None:
        super().__init__(message, hint="Rename the variable or pick another dataset.")
        self.missing = missing
        self.columns = columns


class PromptRenderError(PromptTemplateError):
    pass


class InvalidApiKeyError(StudioError):
    """No key, or a key the studio never issued (HTTP 401)."""


class RevokedApiKeyError(StudioError):
    """A key that was revoked, or that belongs to another app (HTTP 403)."""


class RateLimitedError(StudioError):
    """The key's requests-per-minute limit is used up (HTTP 429 with Retry-After)."""

    def __init__(self, message: str, *, retry_after_s: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after_s = retry_after_s


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
