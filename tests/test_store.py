"""The store: migrations on start, WAL on SQLite, tables in step with migrations."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import Session, SQLModel

from studio.store import get_engine, reset_engine
from studio.store.tables import App, ModelDeployment


def test_fresh_database_is_migrated_and_seeded() -> None:
    engine = get_engine()
    tables = set(inspect(engine).get_table_names())
    expected = {
        "app", "variant", "variantversion", "dataset", "datasetversion", "datasetrow", "run",
        "runresult", "evaluation", "evaluationscore", "endpoint", "apikey", "requestlog",
        "providerconnection", "modeltemplate", "model", "modeldeployment", "modelgroup",
        "modelcall", "modelprice", "alembic_version",
    }  # fmt: skip
    assert expected <= tables
    with Session(engine) as session:
        builtins = session.query(ModelDeployment).filter_by(is_builtin=True).count()
    assert builtins == 5


def test_tables_match_the_migrations() -> None:
    """A model change without a migration fails here (run alembic revision --autogenerate)."""
    engine = get_engine()
    with engine.connect() as conn:
        # The task queue's own tables (procrastinate, PostgreSQL) are not the studio's models.
        ours = {"include_name": lambda name, kind, _: not str(name).startswith("procrastinate")}
        diff = compare_metadata(MigrationContext.configure(conn, opts=ours), SQLModel.metadata)
    assert diff == []


def test_sqlite_uses_wal_mode() -> None:
    engine = get_engine()
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_data_survives_a_restart_and_seeding_is_idempotent() -> None:
    engine = get_engine()
    with Session(engine) as session:
        session.add(App(name="Marketing copy"))
        session.commit()
    reset_engine()  # as if the process restarted: migrate and seed again
    engine = get_engine()
    with Session(engine) as session:
        assert session.query(App).filter_by(name="Marketing copy").count() == 1
        assert session.query(ModelDeployment).filter_by(is_builtin=True).count() == 5


def test_unreachable_database_is_a_clear_error(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from studio.core.errors import ConfigError
    from studio.core.settings import reset_settings

    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    reset_settings()
    reset_engine()
    with pytest.raises(ConfigError, match="Cannot open the database"):
        get_engine()
