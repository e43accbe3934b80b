"""Database tables: one per concept in DESIGN.md.

Studio objects (apps, datasets, runs, endpoints, ...) have integer ids people
type in the CLI; Models API objects (templates, models, deployments, groups)
have UUID strings, as on the platform the studio follows. JSON columns hold
free-form configuration. Changing anything here needs a migration in
``studio/store/migrations/versions``.

Longer than 520 lines on purpose: the whole schema in one module is what the
migrations are checked against (tests/test_store.py) and what a reader compares
with DESIGN.md; each section is one concept, table definitions only.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

__all__ = [
    "ApiKey",
    "App",
    "Comparison",
    "ComparisonPreference",
    "Dataset",
    "DatasetRow",
    "DatasetVersion",
    "Endpoint",
    "EndpointRevision",
    "Evaluation",
    "EvaluationScore",
    "Job",
    "JobPart",
    "KeyRateWindow",
    "Model",
    "ModelCall",
    "ModelDeployment",
    "ModelGroup",
    "ModelPrice",
    "ModelTemplate",
    "ProviderConnection",
    "RequestLog",
    "RequestRollup",
    "ResponseCache",
    "Run",
    "RunResult",
    "Variant",
    "VariantVersion",
    "new_uuid",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_uuid() -> str:
    return str(uuid.uuid4())


def _json(**kw: Any) -> Any:
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=False), **kw)


def _json_list() -> Any:
    return Field(default_factory=list, sa_column=Column(JSON, nullable=False))


# -- apps, variants -------------------------------------------------------------


class App(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=200)
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    archived: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Variant(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("app_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    app_id: int = Field(foreign_key="app.id", index=True)
    name: str = Field(max_length=200)
    archived: bool = False
    forked_from_version_id: int | None = None
    created_at: datetime = Field(default_factory=utcnow)


class VariantVersion(SQLModel, table=True):
    """An immutable snapshot of a variant's configuration."""

    __table_args__ = (UniqueConstraint("variant_id", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    variant_id: int = Field(foreign_key="variant.id", index=True)
    version: int
    note: str = ""
    model: str = Field(
        description="Model name, e.g. builtin/smollm2-135m-instruct; kept current when a "
        "stored model is renamed"
    )
    model_id: str | None = Field(
        default=None,
        index=True,
        max_length=36,
        description="The stored model's id, the reference that survives renames; None for "
        "built-in and connection/model names, whose name is the reference",
    )
    prompt_kind: str = Field(default="completion", description="completion | chat")
    template: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    system_prompt: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    messages: list[dict[str, Any]] = _json_list()
    parameters: dict[str, Any] = _json()
    retrieval: dict[str, Any] = _json(
        description="the retrieval step, empty for none: {kb_id, query_template, top_k, "
        "reranker, join, ...} (see studio.services.retrieval)"
    )
    created_at: datetime = Field(default_factory=utcnow)


# -- datasets -------------------------------------------------------------------


class Dataset(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("app_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    app_id: int = Field(foreign_key="app.id", index=True)
    name: str = Field(max_length=200)
    archived: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class DatasetVersion(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("dataset_id", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id", index=True)
    version: int
    columns: list[str] = _json_list()
    expected_column: str | None = None
    row_count: int = 0
    source_filename: str | None = None
    note: str = ""
    created_at: datetime = Field(default_factory=utcnow)


class DatasetRow(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("dataset_version_id", "row_index"),)
    id: int | None = Field(default=None, primary_key=True)
    dataset_version_id: int = Field(foreign_key="datasetversion.id", index=True)
    row_index: int
    data: dict[str, Any] = _json()


# -- runs -----------------------------------------------------------------------


class Run(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    app_id: int = Field(foreign_key="app.id", index=True)
    variant_version_id: int | None = Field(default=None, foreign_key="variantversion.id")
    dataset_version_id: int = Field(foreign_key="datasetversion.id", index=True)
    model: str
    config: dict[str, Any] = _json()
    status: str = Field(default="pending", description="pending|running|cancelled|done|failed")
    concurrency: int | None = None
    samples: int = 1
    use_cache: bool = True
    total_rows: int = 0
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class RunResult(SQLModel, table=True):
    """One answer per dataset row (and sample); the unique key forbids duplicates."""

    __table_args__ = (UniqueConstraint("run_id", "row_index", "sample_index"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id", index=True)
    row_index: int
    sample_index: int = 0
    rendered_prompt: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    output: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    prompt_tokens: int | None = None
    response_tokens: int | None = None
    latency_ms: float | None = None
    cost: float | None = None
    cached: bool = False
    retrieval: dict[str, Any] | None = Field(
        default=None,
        sa_column=Column(JSON, nullable=True),
        description="what the retrieval step gave this row: {query, chunks: [{id, document_id, "
        "document, position, score, text}]}; None without a retrieval step",
    )
    created_at: datetime = Field(default_factory=utcnow)


# -- jobs ---------------------------------------------------------------------------


class Job(SQLModel, table=True):
    """Long work (a run today; evaluations, ingestion, fine-tuning later) split into parts.

    ``executor`` says who executes the parts: ``queue`` (``studio worker`` processes, on
    PostgreSQL) or ``process`` (a thread of the process that enqueued it). Progress for a
    run is counted from its rows, so every process sees the rows of every worker.
    """

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(default_factory=new_uuid, max_length=36, description="queue tasks carry it")
    kind: str = Field(index=True, description="run | evaluation | ingestion | finetuning")
    subject_id: int | None = Field(default=None, index=True, description="the run's id")
    app_id: int | None = Field(default=None, index=True)
    actor: str = Field(default="", description="who started it: ui, cli, gateway key <prefix>")
    state: str = Field(
        default="queued", index=True, description="queued|running|succeeded|failed|cancelled"
    )
    executor: str = Field(default="process", description="queue | process")
    total: int = 0
    done: int = 0
    errors: int = 0
    parts: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    cancel_requested: bool = False
    params: dict[str, Any] = _json()
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None


class JobPart(SQLModel, table=True):
    """One queue task of a job: rows ``[start, stop)`` of a run, in lane ``lane``."""

    __table_args__ = (UniqueConstraint("job_id", "index"),)
    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id", index=True)
    index: int
    start: int
    stop: int
    lane: int = 0
    concurrency: int = 1
    state: str = Field(default="queued", description="queued|running|done|failed|cancelled")
    attempts: int = 0
    worker: str | None = None
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    started_at: datetime | None = None
    finished_at: datetime | None = None


class ResponseCache(SQLModel, table=True):
    """Identical calls (model, parameters, rendered prompt) answered once."""

    key: str = Field(primary_key=True, max_length=64)
    model: str
    response: dict[str, Any] = _json()
    created_at: datetime = Field(default_factory=utcnow)


# -- endpoints, keys, request log ----------------------------------------------------


class Endpoint(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    app_id: int = Field(foreign_key="app.id", index=True)
    name: str = Field(index=True, unique=True, max_length=200)
    variant_version_id: int | None = Field(default=None, foreign_key="variantversion.id")
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class EndpointRevision(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    endpoint_id: int = Field(foreign_key="endpoint.id", index=True)
    variant_version_id: int | None = Field(default=None, foreign_key="variantversion.id")
    action: str = Field(description="deploy | rollback | undeploy")
    created_at: datetime = Field(default_factory=utcnow)


class ApiKey(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    app_id: int | None = Field(default=None, foreign_key="app.id", index=True)
    name: str
    prefix: str = Field(index=True, max_length=16, description="first characters, for display")
    key_hash: str = Field(unique=True, max_length=128)
    rate_limit_per_minute: int | None = None
    is_admin: bool = Field(
        default=False, description="an administrative key: belongs to no app, may manage models"
    )
    scopes: str = Field(
        default="invoke",
        max_length=100,
        description="comma-separated: invoke (this app's endpoints), models (raw models), "
        "manage (models, deployments, templates)",
    )
    user_id: int | None = Field(
        default=None,
        foreign_key="studiouser.id",
        index=True,
        description="set for a personal access token: it acts with this user's role",
    )
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class RequestLog(SQLModel, table=True):
    """One gateway request. ``minute`` (Unix minutes) and ``latency_bin`` (a log-scale
    latency class, see ``studio.services.monitoring``) let the monitoring statistics
    aggregate over a covering index without reading the bodies."""

    __table_args__ = (
        Index("ix_requestlog_endpoint_created", "endpoint_id", "created_at"),
        Index(
            "ix_requestlog_stats",
            "minute",
            "endpoint_id",
            "status_code",
            "latency_bin",
            "prompt_tokens",
            "response_tokens",
            "cost",
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(index=True, unique=True, max_length=64)
    endpoint_id: int | None = Field(default=None, foreign_key="endpoint.id")
    app_id: int | None = None
    minute: int = Field(default=0, description="created_at in whole minutes since the epoch")
    latency_bin: int = Field(default=0, description="log-scale latency class")
    model: str | None = None
    route: str = ""
    api_key_id: int | None = Field(default=None, foreign_key="apikey.id")
    status_code: int
    latency_ms: float
    model_latency_ms: float | None = None
    overhead_ms: float | None = None
    prompt_tokens: int | None = None
    response_tokens: int | None = None
    cost: float | None = None
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    request_body: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    response_body: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    retrieval: dict[str, Any] | None = Field(
        default=None,
        sa_column=Column(JSON, nullable=True),
        description="the chunks an endpoint's retrieval step used: {query, chunks: [{id, "
        "document, score}]}",
    )
    created_at: datetime = Field(default_factory=utcnow, index=True)


class RequestRollup(SQLModel, table=True):
    """Per-minute totals of the request log: one row per (minute, endpoint, latency class).

    The gateway's request-log writer adds to these rows (an upsert) in the same
    transaction as the raw :class:`RequestLog` rows, so the monitoring statistics
    read a few thousand rows instead of every request. ``endpoint_id`` is 0 for
    requests that reached no endpoint (the model API, errors before routing).
    """

    minute: int = Field(
        primary_key=True,
        sa_column_kwargs={"autoincrement": False},
        description="whole minutes since the epoch",
    )
    endpoint_id: int = Field(default=0, primary_key=True, sa_column_kwargs={"autoincrement": False})
    latency_bin: int = Field(
        primary_key=True,
        sa_column_kwargs={"autoincrement": False},
        description="log-scale latency class",
    )
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    response_tokens: int = 0
    cost: float = 0.0


# -- model layer: connections, templates, models, deployments -------------------------


class ProviderConnection(SQLModel, table=True):
    """A configured provider: the name is the prefix of its models' names."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=100)
    kind: str
    base_url: str | None = None
    api_key_env: str | None = Field(default=None, description="read the key from this variable")
    api_key_encrypted: str | None = Field(default=None, description="Fernet token; never shown")
    options: dict[str, Any] = _json()
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ModelGroup(SQLModel, table=True):
    id: str = Field(default_factory=new_uuid, primary_key=True, max_length=36)
    name: str = Field(index=True, unique=True, max_length=200)
    description: str = ""
    created_at: datetime = Field(default_factory=utcnow)


class ModelTemplate(SQLModel, table=True):
    id: str = Field(default_factory=new_uuid, primary_key=True, max_length=36)
    name: str = Field(index=True, unique=True, max_length=200)
    model_type: str
    runtime: str = Field(description="llama-cpp | sentence-transformers | openai-compatible ...")
    endpoint_type: str = "SYNC"
    runtime_config: dict[str, Any] = _json()
    model_creation_parameters_schema: dict[str, Any] = _json()
    is_system: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class Model(SQLModel, table=True):
    id: str = Field(default_factory=new_uuid, primary_key=True, max_length=36)
    name: str = Field(index=True, unique=True, max_length=200)
    model_type: str
    description: str = ""
    model_template_id: str | None = Field(default=None, foreign_key="modeltemplate.id")
    model_creation_parameters: dict[str, Any] = _json()
    connection: str | None = Field(default=None, description="provider connection name")
    provider_model: str | None = Field(default=None, description="the provider's model id")
    model_group_id: str | None = Field(default=None, foreign_key="modelgroup.id")
    is_builtin: bool = False
    context_window: int | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ModelDeployment(SQLModel, table=True):
    id: str = Field(default_factory=new_uuid, primary_key=True, max_length=36)
    model_id: str = Field(foreign_key="model.id", index=True)
    name: str = Field(index=True, unique=True, max_length=200)
    status: str = Field(default="PENDING", description="PENDING | READY | FAILED")
    status_reason: str | None = None
    is_builtin: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ModelCall(SQLModel, table=True):
    """One execute call: the source of usage statistics."""

    __table_args__ = (
        Index("ix_modelcall_deployment_day", "deployment_id", "day"),
        Index("ix_modelcall_model_day", "model_name", "day"),
    )
    id: int | None = Field(default=None, primary_key=True)
    deployment_id: str | None = Field(default=None, max_length=36)
    model_name: str
    model_type: str
    source: str = Field(default="api", description="cli | ui | gateway | run | api")
    day: date
    created_at: datetime = Field(default_factory=utcnow)
    latency_ms: float
    prompt_tokens: int = 0
    response_tokens: int = 0
    cost: float = 0.0
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class ModelPrice(SQLModel, table=True):
    """Price per million tokens; the user edits it with `studio price set`."""

    model: str = Field(primary_key=True, max_length=200)
    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0
    updated_at: datetime = Field(default_factory=utcnow)


# -- evaluations ----------------------------------------------------------------


class Evaluation(SQLModel, table=True):
    """Runs (the contenders) of one dataset version scored by configured evaluators.

    ``contenders``: ``[{"key": "A", "run_id": 3, "label": "Invite v2 on smollm2"}]``;
    ``evaluators``: ``[{"key": "judge", "id": "llm_judge", "options": {...},
    "version": "<hash of id and options>"}]``. ``summary`` keeps the headline figures
    (overall pass rate per contender) so a list of evaluations needs no scores.
    """

    id: int | None = Field(default=None, primary_key=True)
    app_id: int = Field(foreign_key="app.id", index=True)
    name: str
    dataset_version_id: int = Field(foreign_key="datasetversion.id", index=True)
    contenders: list[dict[str, Any]] = _json_list()
    evaluators: list[dict[str, Any]] = _json_list()
    status: str = Field(default="pending", description="pending|running|done|failed|cancelled")
    summary: dict[str, Any] = _json()
    actor: str = Field(default="", description="who started it: ui, cli, gateway key <prefix>")
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


class EvaluationScore(SQLModel, table=True):
    """One evaluator's verdict on one output; the unique key means a resumed evaluation
    scores each output once per evaluator version."""

    __table_args__ = (
        UniqueConstraint("evaluation_id", "evaluator_key", "run_id", "row_index", "sample_index"),
    )
    id: int | None = Field(default=None, primary_key=True)
    evaluation_id: int = Field(foreign_key="evaluation.id", index=True)
    evaluator_key: str = Field(max_length=100)
    evaluator_version: str = Field(max_length=64)
    run_id: int = Field(foreign_key="run.id")
    row_index: int
    sample_index: int = 0
    score: float
    passed: bool
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)


# -- comparisons ----------------------------------------------------------------


class Comparison(SQLModel, table=True):
    """Contenders (variant versions or unsaved prompt configurations, each with its run)
    side by side on one dataset version, against a baseline.

    ``contenders``: ``[{"key": "A", "label": "Invite v2", "run_id": 7,
    "variant_version_id": 3 | None, "config": {...}}]``; ``evaluation_id`` scores them all.
    """

    id: int | None = Field(default=None, primary_key=True)
    app_id: int = Field(foreign_key="app.id", index=True)
    name: str
    dataset_version_id: int = Field(foreign_key="datasetversion.id")
    contenders: list[dict[str, Any]] = _json_list()
    baseline: str = Field(default="A", max_length=10)
    evaluation_id: int | None = Field(default=None, foreign_key="evaluation.id")
    actor: str = ""
    created_at: datetime = Field(default_factory=utcnow)


class ComparisonPreference(SQLModel, table=True):
    """Which output of a row a person preferred (a contender key, or ``tie``)."""

    __table_args__ = (UniqueConstraint("comparison_id", "row_index", "rater"),)
    id: int | None = Field(default=None, primary_key=True)
    comparison_id: int = Field(foreign_key="comparison.id", index=True)
    row_index: int
    winner: str = Field(max_length=10, description="a contender key, or 'tie'")
    shown: list[str] = _json_list()  # the order the contenders were shown (blind mode)
    blind: bool = False
    rater: str = Field(default="you", max_length=200)
    created_at: datetime = Field(default_factory=utcnow)


# -- key rate windows -------------------------------------------------------------


class KeyRateWindow(SQLModel, table=True):
    """How many requests one API key was allowed in one minute (a limited key on
    PostgreSQL, shared by every gateway worker; see ``studio.services.rate_limits``).

    ``window_start`` is the minute's start in seconds since the epoch; windows older
    than a few minutes are deleted.
    """

    key_id: int = Field(
        sa_column=Column(
            Integer,
            ForeignKey("apikey.id", ondelete="CASCADE"),
            primary_key=True,
        )
    )
    window_start: int = Field(sa_column=Column(BigInteger, primary_key=True))
    count: int = 0


# -- accounts, sessions, audit ----------------------------------------------------


class StudioUser(SQLModel, table=True):
    """A person who signs in. ``password_hash`` is argon2 (never the password)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=100)
    role: str = Field(max_length=20, description="admin, member or reviewer")
    password_hash: str | None = Field(default=None, max_length=200)
    disabled: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    last_sign_in_at: datetime | None = None


class UserSession(SQLModel, table=True):
    """A browser sign-in: the cookie holds the token, the table its SHA-256 hash."""

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("studiouser.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    token_hash: str = Field(unique=True, max_length=128)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    address: str = Field(default="", max_length=100)


class AppMember(SQLModel, table=True):
    """Who belongs to an app: members see and change only their apps."""

    app_id: int = Field(
        sa_column=Column(Integer, ForeignKey("app.id", ondelete="CASCADE"), primary_key=True)
    )
    user_id: int = Field(
        sa_column=Column(Integer, ForeignKey("studiouser.id", ondelete="CASCADE"), primary_key=True)
    )
    added_at: datetime = Field(default_factory=utcnow)


class SignInThrottle(SQLModel, table=True):
    """Failed sign-ins per account name or per address (``subject`` is ``account:NAME``
    or ``address:IP``; names that match no account are counted the same way)."""

    subject: str = Field(primary_key=True, max_length=200)
    failures: int = 0
    first_failure_at: datetime = Field(default_factory=utcnow)
    locked_until: datetime | None = None


class AuditEvent(SQLModel, table=True):
    """Who created, changed or removed what, when and from where. ``details`` never holds
    a secret (``studio.store.audit`` drops secret-looking fields)."""

    __table_args__ = (Index("ix_auditevent_target", "target_kind", "target_id"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor: str = Field(max_length=200, description="who: a user, a key, the local operator")
    actor_user_id: int | None = Field(default=None, index=True)
    origin: str = Field(default="", max_length=200, description="ui, cli, gateway + address")
    action: str = Field(index=True, max_length=40, description="create, update, delete, ...")
    target_kind: str = Field(max_length=40, description="user, connection, model, key, ...")
    target_id: str = Field(default="", max_length=100)
    target_name: str = Field(default="", max_length=300)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


# -- human review -------------------------------------------------------------------


class HumanReview(SQLModel, table=True):
    """People rating outputs against criteria the team wrote.

    ``kind``: ``binary`` (good / bad), ``scale`` (1-5) or ``pairwise`` (A / B / tie, blind).
    ``criteria``: ``{"task", "good", "bad", "examples"}``. ``contenders``: the source's
    contenders reviewed, ``[{"key": "A", "run_id": 3, "label": "..."}]``. ``assignees``:
    user ids (``assignment`` ``named`` or ``split``); ``all`` means every reviewer and
    every member of the app.
    """

    id: int | None = Field(default=None, primary_key=True)
    app_id: int = Field(
        sa_column=Column(Integer, ForeignKey("app.id", ondelete="CASCADE"), index=True)
    )
    name: str = Field(max_length=200)
    kind: str = Field(max_length=20)
    criteria: dict[str, Any] = _json()
    raters_per_item: int = 1
    assignment: str = Field(default="all", max_length=20)
    assignees: list[int] = _json_list()
    item_order: str = Field(default="random", max_length=20)
    seed: int = 0
    sample_size: int | None = None
    source_kind: str = Field(max_length=20, description="run, evaluation, comparison, endpoint")
    source_id: int
    contenders: list[dict[str, Any]] = _json_list()
    created_by: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow)


class ReviewItem(SQLModel, table=True):
    """One thing to rate: a row's output (binary, scale) or two outputs side by side
    (pairwise; ``swapped`` shows the second contender on the left). ``assigned``: the
    user ids who should rate it (empty: anyone the review is given to)."""

    __table_args__ = (Index("ix_reviewitem_review_position", "review_id", "position"),)
    id: int | None = Field(default=None, primary_key=True)
    review_id: int = Field(
        sa_column=Column(Integer, ForeignKey("humanreview.id", ondelete="CASCADE"))
    )
    position: int
    row_index: int | None = None
    inputs: dict[str, Any] = _json()
    prompt: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    outputs: list[dict[str, Any]] = _json_list()  # [{"key", "label", "output"}]
    swapped: bool = False
    assigned: list[int] = _json_list()


class ReviewRating(SQLModel, table=True):
    """One person's rating of one item; the unique key means a rating given twice (two
    tabs, a double click) is one rating, changed."""

    __table_args__ = (
        UniqueConstraint("item_id", "rater"),
        Index("ix_reviewrating_review_rater", "review_id", "rater"),
    )
    id: int | None = Field(default=None, primary_key=True)
    review_id: int = Field(
        sa_column=Column(Integer, ForeignKey("humanreview.id", ondelete="CASCADE"))
    )
    item_id: int = Field(
        sa_column=Column(Integer, ForeignKey("reviewitem.id", ondelete="CASCADE"), index=True)
    )
    rater: str = Field(max_length=200, description="the rater's user name")
    rater_id: int | None = None
    rating: str = Field(max_length=20, description="good|bad, 1-5, a|b|tie, or skip")
    comment: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    source: str = Field(default="studio", max_length=20, description="studio or import")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ReviewVerdict(SQLModel, table=True):
    """The final verdict on an item raters disagreed on, and who settled it."""

    item_id: int = Field(
        sa_column=Column(Integer, ForeignKey("reviewitem.id", ondelete="CASCADE"), primary_key=True)
    )
    review_id: int = Field(index=True)
    verdict: str = Field(max_length=20)
    settled_by: str = Field(max_length=200)
    note: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    settled_at: datetime = Field(default_factory=utcnow)


# -- knowledge bases --------------------------------------------------------------


class KnowledgeBase(SQLModel, table=True):
    """Documents of an app, cut into chunks and embedded, for retrieval and chunk ranking.

    ``embedding_model``: the model new vectors are made with; ``serving_model``: the model
    whose vectors answer queries (the same, except while a changed model re-embeds: the
    old vectors serve until the new ones are complete). ``chunking``: ``{"method":
    "characters" | "paragraphs" | "headings", "size", "overlap"}`` (sizes in characters).
    """

    __table_args__ = (UniqueConstraint("app_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    app_id: int = Field(
        sa_column=Column(Integer, ForeignKey("app.id", ondelete="CASCADE"), index=True)
    )
    name: str = Field(max_length=200)
    embedding_model: str = Field(max_length=300)
    serving_model: str = Field(max_length=300)
    chunking: dict[str, Any] = _json()
    created_by: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class KnowledgeDocument(SQLModel, table=True):
    """One uploaded file of a knowledge base; ``content_hash`` (SHA-256 of the bytes and
    the parsing options) makes the same file uploaded again a no-op."""

    __table_args__ = (UniqueConstraint("kb_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    kb_id: int = Field(
        sa_column=Column(Integer, ForeignKey("knowledgebase.id", ondelete="CASCADE"), index=True)
    )
    name: str = Field(max_length=300)
    kind: str = Field(max_length=20, description="text, markdown, html, pdf, csv, jsonl")
    content_hash: str = Field(max_length=64)
    size_bytes: int = 0
    chunk_count: int = 0
    options: dict[str, Any] = _json()
    version: int = 1
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class KnowledgeChunk(SQLModel, table=True):
    """A piece of a document's text, in document order (``position``)."""

    __table_args__ = (Index("ix_knowledgechunk_document_position", "document_id", "position"),)
    id: int | None = Field(default=None, primary_key=True)
    kb_id: int = Field(index=True)
    document_id: int = Field(
        sa_column=Column(Integer, ForeignKey("knowledgedocument.id", ondelete="CASCADE"))
    )
    position: int
    text: str = Field(sa_column=Column(Text, nullable=False))


class ChunkVector(SQLModel, table=True):
    """A chunk's embedding by one model (float32 bytes). The key (chunk, model) means a
    chunk is embedded once per model, however often ingestion is resumed."""

    __table_args__ = (Index("ix_chunkvector_kb_model", "kb_id", "model"),)
    chunk_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("knowledgechunk.id", ondelete="CASCADE"), primary_key=True
        )
    )
    model: str = Field(max_length=300, primary_key=True)
    kb_id: int
    dim: int
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


# -- fine-tuning --------------------------------------------------------------------
# A fine-tuning job is a Job of kind "finetuning" whose ``params`` hold the spec and the
# hyperparameters (see studio.services.finetune); these tables hold what it produces.


class FineTuneMetric(SQLModel, table=True):
    """One training step's losses; the key (job, step) means a resumed job that repeats a
    step after its last checkpoint overwrites the row instead of adding a second one."""

    __table_args__ = (UniqueConstraint("job_id", "step"),)
    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(
        sa_column=Column(Integer, ForeignKey("job.id", ondelete="CASCADE"), index=True)
    )
    step: int
    epoch: float = 0.0
    train_loss: float | None = None
    val_loss: float | None = None
    at: datetime = Field(default_factory=utcnow)


class FineTuneLog(SQLModel, table=True):
    """A line of a fine-tuning job's log (the worker's own, or the provider's events)."""

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(
        sa_column=Column(Integer, ForeignKey("job.id", ondelete="CASCADE"), index=True)
    )
    level: str = Field(default="info", max_length=10, description="info | warning | error")
    message: str = Field(sa_column=Column(Text, nullable=False))
    at: datetime = Field(default_factory=utcnow)


class FineTunedModel(SQLModel, table=True):
    """The lineage of a model a fine-tuning job made: written in the same transaction as
    the model row, so a model exists only with its lineage and a failed job leaves none."""

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(
        sa_column=Column(Integer, ForeignKey("job.id", ondelete="CASCADE"), unique=True)
    )
    model_id: str = Field(
        sa_column=Column(
            String(36), ForeignKey("model.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    app_id: int | None = Field(default=None, index=True)
    base_model: str = Field(max_length=300)
    dataset_version_id: int = Field(foreign_key="datasetversion.id")
    columns: dict[str, Any] = _json(description="{prompt, completion} or {messages}")
    hyperparameters: dict[str, Any] = _json()
    final_train_loss: float | None = None
    final_val_loss: float | None = None
    artifact: str | None = Field(
        default=None, max_length=1000, description="the adapter's folder (local LoRA)"
    )
    created_at: datetime = Field(default_factory=utcnow)
