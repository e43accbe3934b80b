"""Create (or drop) a fresh PostgreSQL database for one test run.

``create BASE_URL`` starts the local server if it is not running, creates a
database with a unique name and prints its URL; ``drop BASE_URL DB_URL``
removes it again.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg


def _connect(base: str) -> psycopg.Connection:
    url = base.replace("postgresql+psycopg://", "postgresql://")
    return psycopg.connect(url, autocommit=True, connect_timeout=5)


def _start_server() -> None:
    versions = (
        sorted(p.name for p in Path("/etc/postgresql").glob("*"))
        if shutil.which("pg_ctlcluster")
        else []
    )
    if versions:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
            check=False,
        )


def create(base: str) -> str:
    for attempt in range(2):
        try:
            conn = _connect(base)
            break
        except psycopg.OperationalError:
            if attempt:
                raise SystemExit(f"error: PostgreSQL at {base} is not reachable") from None
            _start_server()
            time.sleep(3)
    name = f"studio_ci_{uuid.uuid4().hex[:10]}"
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    prefix, _, _ = base.rpartition("/")
    return f"{prefix}/{name}"


def drop(base: str, db_url: str) -> None:
    name = db_url.rpartition("/")[2]
    if not name.startswith("studio_ci_"):
        raise SystemExit(f"refusing to drop {name}")
    with _connect(base) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    if sys.argv[1] == "create":
        print(create(sys.argv[2]))
    elif len(sys.argv) > 3:
        drop(sys.argv[2], sys.argv[3])
    else:  # drop URL: connect to the same server's "postgres" database to drop it
        drop(sys.argv[2].rpartition("/")[0] + "/postgres", sys.argv[2])
