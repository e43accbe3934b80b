"""How long `studio` commands that call no model take to start and finish.

    python bench/bench_cli.py              # an aligned table
    python bench/bench_cli.py --json       # the same figures as JSON
    python bench/bench_cli.py --runs 15    # more runs per figure

Each figure is the median wall time of fresh processes, as a user running the
command sees it, with the median CPU time (user + system) beside it: on a shared
machine the CPU time moves less with the load. The cases take turns, one run
each per round, so a burst of load lands on all of them. Measured in the same
run: ``python -c pass`` (the interpreter alone, the floor), the imports every
command that reads the database needs (``sqlalchemy``, ``sqlmodel``, the table
definitions: the floor of every command that goes through the ORM; ``studio app list``
is read straight from the database driver, see ``studio/cli/quick.py``), ``app list``
through the ORM as it was before that, and the CLI with every command
module imported (what every command paid before the command list became lazy).
Figures only: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/bench_cli.py`

from bench.common import Row, report

EAGER = (
    "from studio.cli.main import REGISTER, main, module_commands\n"
    "for m in REGISTER: module_commands(m)\n"
    "main(['app', 'list'])\n"
)

VARIANT_LIST = ["variant", "list", "--app", "bench-cli"]


def studio_command() -> list[str]:
    """The installed `studio` script beside this interpreter, or the same entry point."""
    script = Path(sys.executable).with_name("studio")
    if script.exists():
        return [str(script)]
    found = shutil.which("studio")
    return [found] if found else [sys.executable, "-c", "from studio.cli import main; main()"]


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one fresh process; a failure stops the bench."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr.strip()[-300:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return took, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON for bench/run_all.py")
    parser.add_argument("--runs", type=int, default=7, help="processes per figure")
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="bench-cli-")
    env = {**os.environ, "STUDIO_HOME": os.environ.get("STUDIO_HOME", home)}
    studio = studio_command()
    # The first start creates (migrates) the database; the figures are of the starts after.
    subprocess.run([*studio, "app", "create", "bench-cli"], env=env, capture_output=True)
    subprocess.run([*studio, "app", "list"], env=env, capture_output=True, check=True)

    python = sys.executable
    floor = "python -c pass (baseline: the interpreter)"
    cases = [
        (floor, [python, "-c", "pass"], ""),
        ("python -c 'import sqlalchemy' (baseline)", [python, "-c", "import sqlalchemy"], ""),
        ("python -c 'import sqlmodel' (baseline)", [python, "-c", "import sqlmodel"], ""),
        (
            "import studio.store.tables (baseline: what reading the database needs)",
            [python, "-c", "import studio.store.tables"],
            "",
        ),
        ("studio --help", [*studio, "--help"], "≤ 0.5 s"),
        ("studio app list", [*studio, "app", "list"], "≤ 0.5 s"),
        (
            "app list through the ORM (before studio.cli.quick)",
            [python, "-c", "from studio.cli.main import main; main(['app', 'list'])"],
            "",
        ),
        ("studio key list", [*studio, "key", "list"], "≤ 0.5 s"),
        ("studio variant list --app bench-cli", [*studio, *VARIANT_LIST], "≤ 0.5 s"),
        ("app list, every command module imported (before)", [python, "-c", EAGER], ""),
    ]
    walls: dict[str, list[float]] = {metric: [] for metric, _, _ in cases}
    cpus: dict[str, list[float]] = {metric: [] for metric, _, _ in cases}
    for _ in range(args.runs):  # round robin: load that comes and goes hits every case
        for metric, cmd, _ in cases:
            took, cpu = timed(cmd, env)
            walls[metric].append(took)
            cpus[metric].append(cpu)

    base = statistics.median(walls[floor])
    rows = []
    for metric, _, target in cases:
        median = statistics.median(walls[metric])
        detail = (
            f"median of {args.runs}, fastest {min(walls[metric]):.2f} s, "
            f"CPU {statistics.median(cpus[metric]):.2f} s"
        )
        if metric != floor:
            detail += f", {median - base:.2f} s above the interpreter"
        rows.append(Row(metric, median, "s", detail, target))
    report("studio start-up", rows, args.json)


if __name__ == "__main__":
    main()
