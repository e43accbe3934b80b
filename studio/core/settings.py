"""Process-wide settings, read from the environment (and an optional ``.env``).

One class, :class:`Settings`. Tests point ``STUDIO_HOME`` at a temporary
directory; everything the studio writes lives under it unless ``DATABASE_URL``
says otherwise.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_CONCURRENCY", "Settings", "get_settings", "reset_settings"]

# Calls in flight at once when nobody chose a number: a run's "Parallel calls", a
# connection without its own limit, a CSV batch on the gateway. The one place it is written.
DEFAULT_CONCURRENCY = 8


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    studio_home: Path = Field(
        default=Path.home() / ".studio",
        validation_alias="STUDIO_HOME",
        description="Data directory: SQLite database, encryption key, logs.",
    )
    database_url: str | None = Field(
        default=None,
        validation_alias="DATABASE_URL",
        description="SQLAlchemy URL. Default: SQLite file studio.db in STUDIO_HOME.",
    )
    auth: Literal["local", "none"] = Field(
        default="local",
        validation_alias="STUDIO_AUTH",
        description="'local': people sign in with studio accounts. 'none': no sign-in, the "
        "one person at this machine is an administrator; refused unless the UI listens on "
        "a loopback address.",
    )
    session_hours: float = Field(
        default=12.0,
        gt=0,
        le=24 * 90,
        validation_alias="STUDIO_SESSION_HOURS",
        description="A browser sign-in lasts this long.",
    )
    models_dir: Path | None = Field(
        default=None,
        validation_alias="STUDIO_MODELS_DIR",
        description="Directory of local model weights. Models created over the gateway may "
        "only load files inside it; unset, they may load none.",
    )
    gateway_host: str = Field(default="127.0.0.1", validation_alias="STUDIO_GATEWAY_HOST")
    gateway_port: int = Field(default=8765, ge=1, le=65535, validation_alias="STUDIO_GATEWAY_PORT")
    embedded_gateway: bool = Field(
        default=True,
        validation_alias="STUDIO_EMBEDDED_GATEWAY",
        description="`streamlit run app.py` starts the gateway in the same process when no "
        "gateway listens on the configured port.",
    )
    gateway_log_bodies: Literal["full", "truncate", "redact"] = Field(
        default="truncate",
        validation_alias="STUDIO_GATEWAY_LOG_BODIES",
        description="Request log: keep bodies whole, cut to gateway_log_body_chars, or drop them.",
    )
    gateway_log_body_chars: int = Field(
        default=4096, ge=0, le=10_000_000, validation_alias="STUDIO_GATEWAY_LOG_BODY_CHARS"
    )

    # Provider keys from the environment. They create implicit connections named
    # "openai" and "anthropic" when set.
    openai_api_key: SecretStr | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str = Field(
        default="https://api.openai.com/v1", validation_alias="OPENAI_BASE_URL"
    )
    anthropic_api_key: SecretStr | None = Field(default=None, validation_alias="ANTHROPIC_API_KEY")
    anthropic_base_url: str = Field(
        default="https://api.anthropic.com", validation_alias="ANTHROPIC_BASE_URL"
    )
    secret_key: SecretStr | None = Field(
        default=None,
        validation_alias="STUDIO_SECRET_KEY",
        description="Fernet key for stored provider keys; default: a key file in STUDIO_HOME.",
    )

    # Model layer defaults (per connection they can be overridden).
    request_timeout_s: float = Field(default=60.0, gt=0, validation_alias="STUDIO_REQUEST_TIMEOUT")
    max_retries: int = Field(default=5, ge=0, le=20, validation_alias="STUDIO_MAX_RETRIES")
    retry_base_delay_s: float = Field(default=0.5, ge=0, validation_alias="STUDIO_RETRY_BASE_DELAY")
    retry_max_delay_s: float = Field(default=30.0, ge=0, validation_alias="STUDIO_RETRY_MAX_DELAY")
    default_concurrency: int = Field(
        default=DEFAULT_CONCURRENCY, ge=1, le=1024, validation_alias="STUDIO_DEFAULT_CONCURRENCY"
    )

    # Database connections (PostgreSQL): see "Connection budget" in the README.
    db_pool_size: int = Field(
        default=5,
        ge=1,
        le=200,
        validation_alias="STUDIO_DB_POOL_SIZE",
        description="Connections each process keeps open to PostgreSQL.",
    )
    db_max_overflow: int = Field(
        default=5,
        ge=0,
        le=200,
        validation_alias="STUDIO_DB_MAX_OVERFLOW",
        description="Extra connections a process may open for a burst, closed after it.",
    )

    # Jobs: long work split into parts that workers share.
    jobs_executor: Literal["auto", "queue", "process"] = Field(
        default="auto",
        validation_alias="STUDIO_JOBS",
        description="Who executes jobs: 'queue' (studio worker processes; PostgreSQL only), "
        "'process' (the process that started the job), or 'auto' (the queue when a worker "
        "is alive, else this process).",
    )
    job_part_rows: int = Field(
        default=250, ge=1, le=100_000, validation_alias="STUDIO_JOB_PART_ROWS"
    )
    job_part_concurrency: int = Field(
        default=16,
        ge=1,
        le=512,
        validation_alias="STUDIO_JOB_PART_CONCURRENCY",
        description="Calls one part makes at a time: a run asking for more runs that many "
        "parts at once (on any workers), never more calls in total than it asked for.",
    )
    worker_heartbeat_s: float = Field(
        default=5.0, gt=0, le=600, validation_alias="STUDIO_WORKER_HEARTBEAT"
    )
    worker_stalled_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        validation_alias="STUDIO_WORKER_STALLED",
        description="A worker silent this long is dead: another worker takes its parts over.",
    )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            # Accept the URLs people copy from PostgreSQL docs and hosting dashboards.
            if url.startswith("postgres://"):
                url = "postgresql+psycopg://" + url[len("postgres://") :]
            elif url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://") :]
            return url
        return f"sqlite:///{self.studio_home / 'studio.db'}"

    def ensure_home(self) -> Path:
        self.studio_home.mkdir(parents=True, exist_ok=True)
        return self.studio_home


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings (tests change the environment between cases)."""
    get_settings.cache_clear()
