"""Opening the database: a start at head runs no migration; a start behind head migrates.

The head revision is read from the migration files without importing Alembic (slow to
import: see bench/bench_cli.py); these tests keep that reading in step with Alembic's and
check that a database left behind by an older studio is still brought up to date.
"""

from __future__ import annotations

from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from studio.store import get_engine, reset_engine
from studio.store.db import alembic_config, head_revisions


def _stored_revision() -> str:
    with get_engine().connect() as conn:
        return str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one())


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


def test_a_database_behind_head_is_migrated_on_start(upgrades: list[str]) -> None:
    engine = get_engine()
    command.downgrade(alembic_config(engine.url.render_as_string(hide_password=False)), "0004")
    assert _stored_revision() == "0004"
    before = len(upgrades)
    reset_engine()  # an older studio left the database at 0004; this one starts
    engine = get_engine()
    assert {_stored_revision()} == head_revisions()
    columns = {c["name"] for c in inspect(engine).get_columns("variantversion")}
    assert "model_id" in columns  # what 0005 adds is there
    assert len(upgrades) == before + 1
