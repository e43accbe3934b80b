"""`studio app list` answered straight from the database driver (studio.cli.quick) says
exactly what the ordinary path through the ORM says, and steps aside when it cannot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from studio.cli.main import main as full_main
from studio.cli.quick import try_quick
from studio.store import quick, session_scope

CSV = "event,audience\nLaunch,students\nSale,parents\n"


def _ordinary(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    full_main(list(args))
    return capsys.readouterr().out


def _quick(capsys: pytest.CaptureFixture[str], *args: str) -> str | None:
    capsys.readouterr()
    answered = try_quick(list(args))
    out = capsys.readouterr().out
    return out if answered else None


@pytest.fixture
def busy_studio(cli: Any, tmp_path: Path, mock_provider: Any) -> None:
    """Three apps: one with variants, datasets (one archived) and a run; one archived."""
    data = tmp_path / "events.csv"
    data.write_text(CSV)
    for name in ("Marketing", "Support", "Old"):
        assert cli("app", "create", name, "--description", f"{name} app").code == 0
    assert cli("dataset", "upload", "--app", "Marketing", str(data), "--json").code == 0
    second = cli("dataset", "upload", "--app", "Marketing", str(data), "--name", "spare")
    assert second.code == 0, second.err
    made = cli(
        "variant", "create", "--app", "Marketing", "--name", "plain", "--model", "mock/echo",
        "--prompt", "{{event}} for {{audience}}",
    )  # fmt: skip
    assert made.code == 0, made.err
    ran = cli("run", "--app", "Marketing", "--variant", "plain", "--dataset", "1", "--json")
    assert ran.code == 0, ran.err
    assert cli("dataset", "upload", "--app", "Support", str(data)).code == 0
    with session_scope() as session:  # archive one dataset and one app
        session.execute(text("UPDATE dataset SET archived = TRUE WHERE name = 'spare'"))
        session.execute(text("UPDATE app SET archived = TRUE WHERE name = 'Old'"))
        session.commit()


@pytest.mark.parametrize("flags", [[], ["--json"], ["--archived"], ["--archived", "--json"]])
def test_the_quick_answer_is_the_ordinary_answer(
    busy_studio: None, capsys: pytest.CaptureFixture[str], flags: list[str]
) -> None:
    fast = _quick(capsys, "app", "list", *flags)
    assert fast is not None, "the quick path stepped aside on a database at head"
    assert fast == _ordinary(capsys, "app", "list", *flags)
    if "--json" in flags:
        apps = {a["name"]: a for a in json.loads(fast)}
        assert ("Old" in apps) == ("--archived" in flags)
        assert (apps["Marketing"]["variants"], apps["Marketing"]["datasets"]) == (1, 1)
        assert apps["Marketing"]["runs"] == 1


def test_an_empty_studio_lists_nothing_the_same_way(
    cli: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("app", "list", "--json").code == 0  # the first start creates the database
    assert _quick(capsys, "app", "list", "--json") == _ordinary(capsys, "app", "list", "--json")


def test_no_database_yet_goes_the_ordinary_way_which_creates_it(
    studio_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if quick.database_target() is not None and quick.database_target()[0] == "postgresql":  # type: ignore[index]
        pytest.skip("the PostgreSQL pass has its database before the test")
    assert not (studio_env / "studio.db").exists()
    assert _quick(capsys, "app", "list") is None
    assert "Apps" in _ordinary(capsys, "app", "list")
    assert (studio_env / "studio.db").exists()


def test_a_database_behind_the_migrations_goes_the_ordinary_way(
    cli: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("app", "create", "Marketing").code == 0
    head = quick.head_revision()
    with session_scope() as session:
        session.execute(text("UPDATE alembic_version SET version_num = '0001'"))
        session.commit()
    try:
        assert quick.app_summaries() is None
        assert _quick(capsys, "app", "list") is None
    finally:  # the PostgreSQL pass shares one database: put the version back
        with session_scope() as session:
            session.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
            session.commit()


@pytest.mark.parametrize(
    "args", [["app", "list", "--help"], ["app", "list", "--bogus"], ["app", "show", "1"]]
)
def test_other_commands_and_options_go_the_ordinary_way(
    cli: Any, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    assert cli("app", "create", "Marketing").code == 0
    assert _quick(capsys, *args) is None


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("postgres://u@h:5432/db", ("postgresql", "postgresql://u@h:5432/db")),
        ("postgresql+psycopg://u@h/db", ("postgresql", "postgresql://u@h/db")),
        ("sqlite:////tmp/x.db", ("sqlite", "/tmp/x.db")),
        ("mysql://u@h/db", None),
    ],
)
def test_database_urls_are_read_as_the_settings_read_them(
    monkeypatch: pytest.MonkeyPatch, url: str, target: tuple[str, str] | None
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    assert quick.database_target() == target


def test_a_dot_env_file_names_the_database_as_for_the_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("STUDIO_HOME", raising=False)
    (tmp_path / ".env").write_text('STUDIO_HOME="/srv/studio"\n')
    monkeypatch.chdir(tmp_path)
    assert quick.database_target() == ("sqlite", "/srv/studio/studio.db")
