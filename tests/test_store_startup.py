"""Opening the database: a start at head runs no migration; a start behind head migrates.

The head revision is read from the migration files without importing Alembic (slow to
import: see bench/bench_cli.py); these tests keep that reading in step with Alembic's and
check that a database left behind by an older studio is still brought up to date.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, make_url, text
from sqlmodel import SQLModel

from studio.core.settings import get_settings, reset_settings
from studio.store import get_engine, reset_engine
from studio.store.db import alembic_config, head_revisions


def _stored_revision() -> str:
    """The revision the configured database holds, read without opening (migrating) it."""
    engine = create_engine(get_settings().resolved_database_url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one())
    finally:
        engine.dispose()


@pytest.fixture
def upgrades(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every ``alembic upgrade`` the studio runs from now on (and it still runs them)."""
    calls: list[str] = []
    real = command.upgrade

    def spy(cfg: Any, revision: str, **kw: Any) -> None:
        calls.append(revision)
        real(cfg, revision, **kw)

    monkeypatch.setattr(command, "upgrade", spy)
    return calls


def test_the_head_read_from_the_files_is_alembics_head() -> None:
    cfg = alembic_config("sqlite://")
    assert head_revisions() == frozenset(ScriptDirectory.from_config(cfg).get_heads())


def test_a_restart_at_head_runs_no_migration(upgrades: list[str]) -> None:
    get_engine()  # a fresh SQLite file is migrated here (the PostgreSQL pass's may be at head)
    assert {_stored_revision()} == head_revisions()
    before = len(upgrades)
    reset_engine()  # as if the process restarted
    get_engine()
    assert len(upgrades) == before
    assert {_stored_revision()} == head_revisions()


@pytest.fixture
def older_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A database of its own that an older studio left at revision 0005; DATABASE_URL
    points at it (a fresh PostgreSQL database in the PostgreSQL pass, else SQLite)."""
    base = os.environ.get("DATABASE_URL", "")
    if base.startswith("postgresql"):
        admin = make_url(base.replace("postgresql://", "postgresql+psycopg://", 1))
        name = f"{admin.database}_older"
        url = admin.set(database=name).render_as_string(hide_password=False)
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    else:
        url = f"sqlite:///{tmp_path / 'older.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    reset_settings()
    reset_engine()
    resolved = get_settings().resolved_database_url
    command.upgrade(alembic_config(resolved), "0005")  # what the older studio migrated to
    yield url
    reset_engine()
    if base.startswith("postgresql"):
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def test_a_database_behind_head_is_migrated_on_start(
    older_database: str, upgrades: list[str]
) -> None:
    assert _stored_revision() == "0005"
    engine = get_engine()  # this studio opens it: the migrations after 0005 run
    assert upgrades == ["head"]
    assert {_stored_revision()} == head_revisions()
    tables = set(inspect(engine).get_table_names())
    assert set(SQLModel.metadata.tables) <= tables  # every table of this studio is there
