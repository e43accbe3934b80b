"""How long `studio` commands that call no model take to start and finish.

    python bench/bench_cli.py              # an aligned table
    python bench/bench_cli.py --json       # the same figures as JSON
    python bench/bench_cli.py --runs 15    # more runs per figure

Each figure is the median wall time of fresh processes, as a user running the
command sees it. Measured in the same run: ``python -c pass`` (the interpreter
alone, the floor) and the CLI with every command module imported (what every
command paid before the command list became lazy). Figures only: nothing here
asserts a speed.
"""

from __future__ import annotations

import argparse
import os
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


def studio_command() -> list[str]:
    """The installed `studio` script beside this interpreter, or the same entry point."""
    script = Path(sys.executable).with_name("studio")
    if script.exists():
        return [str(script)]
    found = shutil.which("studio")
    return [found] if found else [sys.executable, "-c", "from studio.cli import main; main()"]


def wall(cmd: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """(median, min) wall seconds of ``runs`` fresh processes; a failure stops the bench."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr.strip()[-300:]}")
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON for bench/run_all.py")
    parser.add_argument("--runs", type=int, default=7, help="processes per figure")
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="bench-cli-")
    env = {**os.environ, "STUDIO_HOME": os.environ.get("STUDIO_HOME", home)}
    studio = studio_command()
    subprocess.run([*studio, "app", "list"], env=env, capture_output=True, check=True)  # migrate

    cases = [
        ("python -c pass (baseline)", [sys.executable, "-c", "pass"], ""),
        ("studio --help", [*studio, "--help"], "≤ 0.5 s"),
        ("studio app list", [*studio, "app", "list"], "≤ 0.5 s"),
        ("app list, every command module imported (before)", [sys.executable, "-c", EAGER], ""),
    ]
    rows = []
    baseline = 0.0
    for metric, cmd, target in cases:
        median, fastest = wall(cmd, env, args.runs)
        baseline = baseline or median
        detail = f"median of {args.runs}, fastest {fastest:.2f} s"
        if cmd[-1] != "pass":
            detail += f", {median - baseline:.2f} s above the baseline"
        rows.append(Row(metric, median, "s", detail, target))
    report("studio start-up", rows, args.json)


if __name__ == "__main__":
    main()
