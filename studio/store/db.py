"""Engine, sessions and migrations.

SQLite (the default, a file in ``STUDIO_HOME``) runs in WAL mode so the UI,
the CLI and the gateway can read while one of them writes. PostgreSQL is used
when ``DATABASE_URL`` points at it; the code is the same. Migrations (Alembic)
run on start; on PostgreSQL an advisory lock keeps several processes from
migrating at once. A start on a database already at head costs one query:
the stored revision is compared with the head read from the migration files,
and Alembic (slow to import) is loaded only when they differ.

The store imports only :mod:`studio.core`. What a fresh database starts with
(built-in models, system templates, prices) belongs to the model layer, which
registers it with :func:`register_seeder`; seeders run after every migration,
inside the same transaction and lock, so concurrent starts agree.
"""

from __future__ import annotations

import ast
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlmodel import Session, create_engine

from studio.core.errors import ConfigError
from studio.core.settings import get_settings

if TYPE_CHECKING:  # alembic is imported only to migrate (see _migrate)
    from alembic.config import Config

__all__ = [
    "alembic_config",
    "get_engine",
    "init_db",
    "register_seeder",
    "reset_engine",
    "session_scope",
]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_MIGRATION_LOCK_ID = 727_274_001

_lock = threading.Lock()
_engine: Engine | None = None
_engine_url: str | None = None
_migrated: set[str] = set()
_seeders: list[Callable[[Session], None]] = []


def register_seeder(seeder: Callable[[Session], None]) -> None:
    """Run ``seeder(session)`` after every migration (idempotent seeders only).

    Registering a new seeder makes the next :func:`get_engine` run the
    migration step again (a no-op at head), so the seeder runs even when the
    engine was opened before it was registered.
    """
    with _lock:
        if seeder not in _seeders:
            _seeders.append(seeder)
            _migrated.clear()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_pre_ping=True
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    settings = get_settings()  # see "Connection budget" in the README
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
    )


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


_ASSIGNMENT = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.M)


@cache
def head_revisions() -> frozenset[str] | None:
    """The head revisions of the migration files, read without importing Alembic.

    ``None`` when a file is not the plain ``revision = "..."`` form this reads;
    the caller then asks Alembic.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        found = dict(_ASSIGNMENT.findall(path.read_text(encoding="utf-8")))
        try:
            revision = ast.literal_eval(found["revision"])
            down = ast.literal_eval(found.get("down_revision", "None"))
        except (KeyError, ValueError, SyntaxError):
            return None
        if not isinstance(revision, str):
            return None
        revisions.add(revision)
        parents.update([down] if isinstance(down, str) else down or ())
    heads = frozenset(revisions - parents)
    return heads or None


def _at_head(conn: Connection) -> bool:
    """Whether the database's stored revision is the head of the migration files."""
    heads = head_revisions()
    if heads is None or not conn.dialect.has_table(conn, "alembic_version"):
        return False
    stored = conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
    return frozenset(stored) == heads


def _migrate(engine: Engine) -> None:
    if not _seeders:
        with engine.connect() as conn:  # a read: the migration below re-checks under the lock
            if _at_head(conn):
                return
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_ID})
        if not _at_head(conn):  # another process may have migrated while we waited
            from alembic import command

            cfg = alembic_config(str(engine.url.render_as_string(hide_password=False)))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        # Seed inside the same transaction (and lock) so concurrent starts agree.
        with Session(bind=conn) as session:
            for seeder in list(_seeders):
                seeder(session)
            session.flush()


def get_engine() -> Engine:
    """The process-wide engine for the configured database, migrated to head."""
    global _engine, _engine_url
    url = get_settings().resolved_database_url
    with _lock:
        if _engine is None or _engine_url != url:
            if _engine is not None:
                _engine.dispose()
            get_settings().ensure_home()
            try:
                engine = _make_engine(url)
            except (SQLAlchemyError, ImportError, ValueError) as exc:
                raise ConfigError(
                    f"Cannot use the database URL: {exc}",
                    hint="Check DATABASE_URL (e.g. postgresql://user@host:5432/db).",
                ) from exc
            _engine, _engine_url = engine, url
        engine = _engine
        if url not in _migrated:
            try:
                _migrate(engine)
            except OperationalError as exc:
                reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
                raise ConfigError(
                    f"Cannot open the database ({reason}).",
                    hint="Check DATABASE_URL and that the database server is running.",
                ) from exc
            _migrated.add(url)
        return engine


def init_db() -> Engine:
    return get_engine()


def reset_engine() -> None:
    """Drop the cached engine (tests switch databases between cases)."""
    global _engine, _engine_url
    with _lock:
        if _engine is not None:
            _engine.dispose()
        _engine = None
        _engine_url = None
        _migrated.clear()


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = Session(get_engine(), expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
