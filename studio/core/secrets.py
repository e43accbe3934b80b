"""Encryption at rest for provider keys, and hashing for endpoint API keys.

Provider keys are encrypted with a Fernet key taken from ``STUDIO_SECRET_KEY``
or, failing that, from ``secret.key`` in ``STUDIO_HOME`` (created on first
use, readable by the owner only). Keys are never logged or printed; the UI and
CLI show :func:`mask` of them at most.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets as _secrets

from cryptography.fernet import Fernet, InvalidToken

from studio.core.errors import ConfigError
from studio.core.settings import get_settings

__all__ = ["decrypt", "encrypt", "hash_api_key", "mask", "new_api_key", "verify_api_key"]


def _fernet() -> Fernet:
    settings = get_settings()
    if settings.secret_key is not None:
        key = settings.secret_key.get_secret_value().encode()
    else:
        path = settings.ensure_home() / "secret.key"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(Fernet.generate_key())
        key = path.read_bytes().strip()
    try:
        return Fernet(key)
    except ValueError as exc:
        raise ConfigError(
            "The studio's secret key is not a valid Fernet key.",
            hint="Set STUDIO_SECRET_KEY to the output of "
            "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key())'`.",
        ) from exc


def encrypt(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ConfigError(
            "A stored provider key cannot be decrypted with this studio's secret key.",
            hint="Re-enter the key for that connection (the secret key changed).",
        ) from exc


def mask(secret: str | None) -> str:
    if not secret:
        return ""
    return "•" * 8 + (secret[-4:] if len(secret) >= 12 else "")


def new_api_key() -> str:
    return "sk-studio-" + _secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def verify_api_key(key: str, key_hash: str) -> bool:
    return hmac.compare_digest(hash_api_key(key), key_hash)
