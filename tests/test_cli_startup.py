"""`studio` starts without importing what the command does not use.

The times are measured in ``bench/bench_cli.py``; these tests keep the reasons
for them: the root help imports no command module, ``studio app list`` imports
neither pandas nor the model layer, and the command list in
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

HEAVY = ("pandas", "numpy", "torch", "httpx", "studio.providers", "studio.models")
CLI_MODULES = tuple(REGISTER)


def _imported_after(args: list[str], home: Path) -> dict[str, Any]:
    """Run ``studio ARGS`` in a fresh interpreter; which modules did it import?"""
    code = (
        "import json, sys\n"
        "from studio.cli import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "else:\n"
        "    code = 0\n"
        "sys.stdout.flush()\n"
        f"names = {list(HEAVY + CLI_MODULES)!r}\n"
        "print(json.dumps({'code': code, 'loaded': [n for n in names if n in sys.modules]}),"
        " file=sys.stderr)\n"
    )
    env = {**os.environ, "STUDIO_HOME": str(home)}
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    report["out"] = done.stdout
    return dict(report)


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
    report = _imported_after(["app", "list", "--json"], tmp_path)
    assert report["code"] == 0
    assert json.loads(report["out"]) == []
    assert report["loaded"] == ["studio.cli.apps"]


@pytest.mark.parametrize("group", ["model", "provider", "app", "key"])
def test_each_group_still_shows_its_own_commands(cli: Any, group: str) -> None:
    result = cli(group, "--help")
    assert result.code == 0
    assert "list" in result.out


def test_a_mistyped_command_is_refused_with_a_suggestion(cli: Any) -> None:
    result = cli("apps", "list")
    assert result.code == 2
    assert "app" in result.err
