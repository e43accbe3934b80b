"""`studio` starts without importing what the command does not use.

The times are measured in ``bench/bench_cli.py``; these tests keep the reasons
for them: the root help imports no command module; ``studio app list`` and the other
list commands import neither pandas, httpx nor the model layer; a start on a database
already at head imports no Alembic; and the command list in
``studio.cli.main.COMMANDS`` says what the modules register.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from studio.cli.main import COMMANDS, REGISTER, Entry, module_commands

HEAVY = (
    "pandas",
    "numpy",
    "torch",
    "httpx",
    "alembic",
    "fastapi",
    "studio.providers",
    "studio.models",
    "studio.gateway",
)
CLI_MODULES = tuple(REGISTER)


def _run_in_fresh_interpreter(commands: list[list[str]], home: Path) -> dict[str, Any]:
    """Run ``studio ARGS`` for each of ``commands`` in one fresh interpreter; the last
    command's exit code and output, and which of HEAVY and the CLI modules were imported."""
    code = (
        "import json, sys\n"
        "from studio.cli import main\n"
        f"for args in {commands!r}:\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit as exc:\n"
        "        code = exc.code\n"
        "    else:\n"
        "        code = 0\n"
        "sys.stdout.flush()\n"
        f"names = {list(HEAVY + CLI_MODULES)!r}\n"
        "extra = [n for n in ('sqlalchemy', 'sqlmodel', 'pydantic') if n in sys.modules]\n"
        "print(json.dumps({'code': code, 'loaded': [n for n in names if n in sys.modules],"
        " 'extra': extra}), file=sys.stderr)\n"
    )
    env = {**os.environ, "STUDIO_HOME": str(home)}
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.stderr.strip(), done
    report = json.loads(done.stderr.strip().splitlines()[-1])
    report["out"], report["err"] = done.stdout, done.stderr
    return dict(report)


def _imported_after(args: list[str], home: Path) -> dict[str, Any]:
    """Run ``studio ARGS`` in a fresh interpreter; which modules did it import?"""
    return _run_in_fresh_interpreter([args], home)


@pytest.fixture(scope="module")
def populated_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A studio home with an app, a dataset, a variant, an endpoint and a key."""
    home = tmp_path_factory.mktemp("populated-home")
    data = home / "events.csv"
    data.write_text("event\nLaunch\n", encoding="utf-8")
    made = _run_in_fresh_interpreter(
        [
            ["app", "create", "Marketing"],
            ["dataset", "upload", "--app", "Marketing", str(data)],
            ["variant", "create", "--app", "Marketing", "--name", "plain",
             "--model", "builtin/smollm2-135m-instruct", "--prompt", "About {{event}}"],
            ["deploy", "--app", "Marketing", "--variant", "plain", "--name", "copy"],
            ["key", "create", "--app", "Marketing", "--name", "website"],
        ],
        home,
    )  # fmt: skip
    assert made["code"] == 0, made["err"]
    return home


def test_the_command_list_matches_what_the_modules_register() -> None:
    registered: dict[str, Entry] = {}
    for module in REGISTER:
        for name, command in module_commands(module).items():
            registered[name] = Entry(module, command.help or "")
    assert registered == COMMANDS, "update COMMANDS in studio/cli/main.py to match the modules"


def test_root_help_lists_every_command_without_importing_them(tmp_path: Path) -> None:
    report = _imported_after(["--help"], tmp_path)
    assert report["code"] == 0
    for name in COMMANDS:
        assert f" {name} " in report["out"], name
    assert "Apps: one per use case." in report["out"]
    assert report["loaded"] == []


def test_app_list_imports_neither_pandas_nor_the_model_layer(tmp_path: Path) -> None:
    first = _imported_after(["app", "list", "--json"], tmp_path)  # creates the database
    assert first["code"] == 0
    assert json.loads(first["out"]) == []
    assert "alembic" in first["loaded"]  # a fresh database is migrated
    report = _imported_after(["app", "list", "--json"], tmp_path)
    assert report["code"] == 0
    assert json.loads(report["out"]) == []
    # at head, the list is read straight from the driver: no command module, no Alembic,
    # not even SQLAlchemy (studio.cli.quick)
    assert report["loaded"] == []
    assert "sqlalchemy" not in report["extra"]


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["app", "list"], "Marketing"),
        (["dataset", "list", "--app", "Marketing"], "events"),
        (["variant", "list", "--app", "Marketing"], "plain"),
        (["endpoint", "list"], "copy"),
        (["endpoint", "history", "copy"], "deploy"),
        (["key", "list"], "website"),
    ],
)
def test_list_commands_import_no_model_layer_and_no_alembic(
    populated_home: Path, args: list[str], shown: str
) -> None:
    report = _imported_after(args, populated_home)
    assert report["code"] == 0, report["err"]
    assert shown in report["out"]
    heavy = [name for name in report["loaded"] if name in HEAVY]
    assert heavy == [], f"`studio {' '.join(args)}` imported {heavy}"


@pytest.mark.parametrize("group", ["model", "provider", "app", "key"])
def test_each_group_still_shows_its_own_commands(cli: Any, group: str) -> None:
    result = cli(group, "--help")
    assert result.code == 0
    assert "list" in result.out


def test_a_mistyped_command_is_refused_with_a_suggestion(cli: Any) -> None:
    result = cli("apps", "list")
    assert result.code == 2
    assert "No such command 'apps'" in result.err
    assert "Try 'studio --help' for help." in result.err
    assert "unexpected" not in result.err


def test_an_unknown_option_is_a_usage_error_not_a_crash(cli: Any) -> None:
    result = cli("app", "list", "--bogus")
    assert result.code == 2
    assert "No such option: --bogus" in result.err
    assert "unexpected" not in result.err
