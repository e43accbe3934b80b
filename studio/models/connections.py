"""Provider connections: which servers the studio can call, and with what key.

A connection has a name (the prefix of its models' names, as in
``openai/gpt-4o-mini``), a provider kind, a base URL, and a key read from an
environment variable or stored encrypted. Three kinds of connection exist:

* ``builtin``: always there, offline, no key;
* from the environment: ``openai`` when ``OPENAI_API_KEY`` is set and
  ``anthropic`` when ``ANTHROPIC_API_KEY`` is set;
* added by the user (CLI now, UI later), stored in the database.

Provider instances are cached per process by their configuration, so their
HTTP clients and loaded local models are shared; a connection's concurrency
limit (only when the user set one) is shared by name across the whole process.

Rules: administrators and members list connections (never their keys) and the models
they offer; adding, changing, removing and checking them is for administrators, and each
change is in the audit log (names and settings, never a key).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import time
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr
from sqlmodel import Session, select

from studio.core.errors import ConfigError, ConflictError, NotFoundError, StudioError
from studio.core.secrets import decrypt, encrypt, mask
from studio.core.settings import get_settings
from studio.models.permissions import require_model_admin, require_model_reader
from studio.providers import ModelInfo, Provider, provider_class
from studio.store import audit
from studio.store.tables import ProviderConnection, utcnow

__all__ = [
    "BUILTIN_CONNECTION",
    "ConnectionCheck",
    "ConnectionCreate",
    "ConnectionPublic",
    "ConnectionUpdate",
    "add_connection",
    "build_provider",
    "check_connection",
    "clear_provider_cache",
    "get_connection",
    "get_provider",
    "list_connection_models",
    "list_connections",
    "remove_connection",
    "update_connection",
]

BUILTIN_CONNECTION = "builtin"
NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"


class ConnectionCreate(BaseModel):
    name: str = Field(pattern=NAME_PATTERN, description="lower-case letters, digits, . _ -")
    kind: str
    base_url: str | None = None
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    api_key: SecretStr | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class ConnectionUpdate(BaseModel):
    """A change to a stored connection; fields left ``None`` stay as they are.

    A new ``api_key`` replaces the stored key (and any key variable);
    ``api_key_env`` switches to reading the key from that variable.
    """

    base_url: str | None = None
    api_key: SecretStr | None = None
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    clear_key: bool = False


class ConnectionCheck(BaseModel):
    """The outcome of one small real call to a connection's server."""

    name: str
    ok: bool
    latency_ms: float
    models: int = 0
    message: str


class ConnectionPublic(BaseModel):
    """What may be shown about a connection: never the key itself."""

    name: str
    kind: str
    base_url: str | None
    api_key_env: str | None
    has_key: bool
    key_hint: str
    options: dict[str, Any]
    source: Literal["builtin", "environment", "database"]


_cache_lock = threading.Lock()
_providers: dict[str, Provider] = {}


def clear_provider_cache() -> None:
    with _cache_lock:
        _providers.clear()


def build_provider(
    *,
    kind: str,
    name: str,
    base_url: str | None = None,
    api_key: str | None = None,
    options: dict[str, Any] | None = None,
) -> Provider:
    """A provider for this configuration, shared by every caller in the process."""
    key_fp = hashlib.sha256(api_key.encode()).hexdigest() if api_key else ""
    fingerprint = json.dumps([kind, name, base_url, key_fp, options or {}], sort_keys=True)
    with _cache_lock:
        provider = _providers.get(fingerprint)
        if provider is None:
            cls = provider_class(kind)
            defaults = _default_options()
            if cls.offline:  # local runtimes keep their own (longer) timeout
                defaults.pop("timeout_s")
            merged = {k: v for k, v in defaults.items() if k in cls.Options.model_fields}
            merged.update(options or {})
            provider = cls(name=name, base_url=base_url, api_key=api_key, options=merged)
            _providers[fingerprint] = provider
        return provider


def _default_options() -> dict[str, Any]:
    s = get_settings()
    return {
        "timeout_s": s.request_timeout_s,
        "max_retries": s.max_retries,
        "retry_base_delay_s": s.retry_base_delay_s,
        "retry_max_delay_s": s.retry_max_delay_s,
        # No "concurrency": a connection limits its calls in flight only when the
        # user gave it a limit of its own; otherwise each run's concurrency applies.
    }


def _env_connections() -> list[ConnectionPublic]:
    s = get_settings()
    out = [
        ConnectionPublic(
            name=BUILTIN_CONNECTION,
            kind="builtin",
            base_url=None,
            api_key_env=None,
            has_key=False,
            key_hint="",
            options={},
            source="builtin",
        )
    ]
    if s.openai_api_key is not None:
        out.append(
            ConnectionPublic(
                name="openai",
                kind="openai",
                base_url=s.openai_base_url,
                api_key_env="OPENAI_API_KEY",
                has_key=True,
                key_hint=mask(s.openai_api_key.get_secret_value()),
                options={},
                source="environment",
            )
        )
    if s.anthropic_api_key is not None:
        out.append(
            ConnectionPublic(
                name="anthropic",
                kind="anthropic",
                base_url=s.anthropic_base_url,
                api_key_env="ANTHROPIC_API_KEY",
                has_key=True,
                key_hint=mask(s.anthropic_api_key.get_secret_value()),
                options={},
                source="environment",
            )
        )
    return out


def _public(row: ProviderConnection) -> ConnectionPublic:
    key = _stored_key(row, required=False)
    return ConnectionPublic(
        name=row.name,
        kind=row.kind,
        base_url=row.base_url,
        api_key_env=row.api_key_env,
        has_key=bool(key),
        key_hint=mask(key),
        options=row.options,
        source="database",
    )


def _stored_key(row: ProviderConnection, *, required: bool) -> str | None:
    if row.api_key_encrypted:
        return decrypt(row.api_key_encrypted)
    if row.api_key_env:
        value = os.environ.get(row.api_key_env)
        if not value and required:
            raise ConfigError(
                f"Connection '{row.name}' reads its key from ${row.api_key_env}, which is not set.",
                hint=f"Export {row.api_key_env} in the environment that runs the studio.",
            )
        return value or None
    return None


def _all_connections(session: Session) -> list[ConnectionPublic]:
    rows = session.exec(select(ProviderConnection).order_by(ProviderConnection.name)).all()
    stored = [_public(r) for r in rows]
    names = {c.name for c in stored}
    implicit = [c for c in _env_connections() if c.name not in names]
    return implicit + stored


def list_connections(*, session: Session) -> list[ConnectionPublic]:
    require_model_reader("list connections")
    return _all_connections(session)


def get_connection(*, session: Session, name: str) -> ConnectionPublic:
    """Connection ``name`` (no key in it). Not checked: the model layer looks connections
    up with it while resolving models, on every face's call path."""
    every = _all_connections(session)
    for conn in every:
        if conn.name == name:
            return conn
    known = ", ".join(c.name for c in every)
    raise NotFoundError(
        f"No connection named '{name}'. Known connections: {known}.",
        hint="Add one with `studio provider add NAME --kind openai --base-url URL`.",
    )


def _audit(session: Session, action: str, row: ProviderConnection, **details: Any) -> None:
    """One audit event for a connection change: its settings, never its key."""
    audit.record(
        session,
        action=action,
        target_kind="connection",
        target_id=row.id,
        target_name=row.name,
        details={"kind": row.kind, "base_url": row.base_url, **details},
    )


def add_connection(*, session: Session, data: ConnectionCreate) -> ConnectionPublic:
    require_model_admin("add connections")
    if data.name == BUILTIN_CONNECTION:
        raise ConflictError("The name 'builtin' is reserved for the built-in models.")
    cls = provider_class(data.kind)
    if session.exec(select(ProviderConnection).where(ProviderConnection.name == data.name)).first():
        raise ConflictError(
            f"A connection named '{data.name}' already exists.",
            hint=f"Remove it with `studio provider remove {data.name}` or pick another name.",
        )
    base_url = data.base_url or cls.default_base_url
    if not base_url and cls.kind not in ("builtin", "llama-cpp", "sentence-transformers"):
        raise ConfigError(f"Provider kind '{data.kind}' needs a base URL (--base-url).")
    if base_url and not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"Base URL '{base_url}' must start with http:// or https://.")
    api_key = data.api_key.get_secret_value() if data.api_key else None
    if not api_key and data.api_key_env:
        api_key = os.environ.get(data.api_key_env)
    # Validate options and key requirements by building the provider once.
    cls(name=data.name, base_url=base_url, api_key=api_key or "unset-check", options=data.options)
    if cls.needs_key and not (data.api_key or data.api_key_env):
        raise ConfigError(
            f"Provider kind '{data.kind}' needs an API key.",
            hint="Pass --api-key-env VAR (the variable holding the key) or --api-key-stdin.",
        )
    row = ProviderConnection(
        name=data.name,
        kind=data.kind,
        base_url=base_url,
        api_key_env=data.api_key_env,
        api_key_encrypted=encrypt(data.api_key.get_secret_value()) if data.api_key else None,
        options=data.options,
    )
    session.add(row)
    session.flush()
    _audit(
        session,
        "create",
        row,
        api_key_env=row.api_key_env,
        encrypted_in_database=row.api_key_encrypted is not None,
        options=row.options,
    )
    return _public(row)


def remove_connection(*, session: Session, name: str) -> None:
    require_model_admin("remove connections")
    row = session.exec(select(ProviderConnection).where(ProviderConnection.name == name)).first()
    if row is None:
        if any(c.name == name for c in _env_connections()):
            raise ConflictError(
                f"Connection '{name}' comes from the environment or is built in; "
                "unset its variable to remove it."
            )
        raise NotFoundError(f"No stored connection named '{name}'.")
    _audit(session, "delete", row)
    session.delete(row)
    session.flush()
    clear_provider_cache()


def touch_connection(row: ProviderConnection) -> None:
    row.updated_at = utcnow()


def get_provider(*, session: Session, name: str) -> Provider:
    """The provider instance behind connection ``name``."""
    row = session.exec(select(ProviderConnection).where(ProviderConnection.name == name)).first()
    if row is not None:
        return build_provider(
            kind=row.kind,
            name=row.name,
            base_url=row.base_url,
            api_key=_stored_key(row, required=provider_class(row.kind).needs_key),
            options=row.options,
        )
    s = get_settings()
    if name == BUILTIN_CONNECTION:
        return build_provider(kind="builtin", name=name)
    if name == "openai" and s.openai_api_key is not None:
        return build_provider(
            kind="openai",
            name=name,
            base_url=s.openai_base_url,
            api_key=s.openai_api_key.get_secret_value(),
        )
    if name == "anthropic" and s.anthropic_api_key is not None:
        return build_provider(
            kind="anthropic",
            name=name,
            base_url=s.anthropic_base_url,
            api_key=s.anthropic_api_key.get_secret_value(),
        )
    get_connection(session=session, name=name)  # raises NotFoundError with the known names
    raise AssertionError("unreachable")  # pragma: no cover


# -- edit, check, list models (the browser's connection panel) ---------------------------


def _stored_row(session: Session, name: str) -> ProviderConnection:
    row = session.exec(select(ProviderConnection).where(ProviderConnection.name == name)).first()
    if row is not None:
        return row
    if any(c.name == name for c in _env_connections()):
        raise ConflictError(
            f"Connection '{name}' comes from the environment or is built in and cannot be "
            "edited here; change its environment variables instead."
        )
    raise NotFoundError(f"No stored connection named '{name}'.")


def update_connection(*, session: Session, name: str, data: ConnectionUpdate) -> ConnectionPublic:
    """Change a stored connection's base URL or key; the new key is stored encrypted."""
    require_model_admin("change connections")
    row = _stored_row(session, name)
    cls = provider_class(row.kind)
    if data.base_url is not None:
        base_url = data.base_url.strip() or cls.default_base_url
        if base_url and not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"Base URL '{base_url}' must start with http:// or https://.")
        if not base_url and cls.kind not in ("builtin", "llama-cpp", "sentence-transformers"):
            raise ConfigError(f"Provider kind '{row.kind}' needs a base URL.")
        row.base_url = base_url
    new_key = data.api_key.get_secret_value().strip() if data.api_key else ""
    if new_key:
        row.api_key_encrypted, row.api_key_env = encrypt(new_key), None
    elif data.api_key_env:
        row.api_key_encrypted, row.api_key_env = None, data.api_key_env
    elif data.clear_key:
        if cls.needs_key:
            raise ConfigError(
                f"Provider kind '{row.kind}' needs an API key, so it cannot be removed.",
                hint="Enter a new key instead, or remove the whole connection.",
            )
        row.api_key_encrypted, row.api_key_env = None, None
    touch_connection(row)
    session.add(row)
    _audit(
        session,
        "update",
        row,
        api_key_env=row.api_key_env,
        changed=[
            field
            for field, done in (
                ("base URL", data.base_url is not None),
                ("stored API key", bool(new_key)),
                ("API key variable", bool(not new_key and data.api_key_env)),
                ("API key removed", bool(data.clear_key and not new_key and not data.api_key_env)),
            )
            if done
        ],
    )
    session.flush()
    clear_provider_cache()
    return _public(row)


def _quick_provider(session: Session, name: str, timeout_s: float) -> Provider:
    """The connection's provider without retries and with a short timeout (for checks)."""
    provider = get_provider(session=session, name=name)
    if provider.offline:
        return provider
    options = {**provider.options.model_dump(), "max_retries": 0, "timeout_s": timeout_s}
    return build_provider(
        kind=provider.kind,
        name=provider.name,
        base_url=provider.base_url,
        api_key=provider._api_key,
        options=options,
    )


def list_connection_models(
    *, session: Session, name: str, timeout_s: float = 10.0
) -> list[ModelInfo]:
    """The models a connection offers, asking its server once (no retries)."""
    require_model_reader("list the models of connections")
    provider = _quick_provider(session, name, timeout_s)
    return asyncio.run(provider.list_models())


async def _probe(provider: Provider) -> int:
    """One small real call: the model list, or a one-chunk rerank where no list exists."""
    if type(provider).list_models is Provider.list_models:
        from studio.core.schemas import RerankingRequest

        await provider.rerank("", RerankingRequest(query="ping", chunks=["pong"]))
        return 0
    return len(await provider.list_models())


def check_connection(*, session: Session, name: str, timeout_s: float = 15.0) -> ConnectionCheck:
    """Make one small real call to the connection and report latency or the error."""
    require_model_admin("check connections")
    provider = _quick_provider(session, name, timeout_s)
    started = time.perf_counter()
    try:
        count = asyncio.run(_probe(provider))
    except StudioError as exc:
        return ConnectionCheck(
            name=name,
            ok=False,
            latency_ms=(time.perf_counter() - started) * 1000,
            message=str(exc),
        )
    latency = (time.perf_counter() - started) * 1000
    offers = f" and offers {count} model{'s' if count != 1 else ''}" if count else ""
    where = "runs on this machine" if provider.offline else f"answered in {latency:.0f} ms"
    return ConnectionCheck(
        name=name,
        ok=True,
        latency_ms=latency,
        models=count,
        message=f"Connection '{name}' {where}{offers}.",
    )
