"""What every benchmark prints: rows of figures, as a table or as JSON for bench/run_all.py."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass

from studio.core.identity import OPERATOR, set_actor

# Benchmarks set the studio up and call its services directly, as the CLI does: they act
# as the local operator (the services refuse a caller nobody named).
set_actor(OPERATOR)

__all__ = ["CHAT_ANSWER", "Row", "machine", "report", "run_child", "table"]

# A small OpenAI chat-completion answer, as the local backends of the benchmarks send it.
CHAT_ANSWER = json.dumps(
    {
        "id": "x",
        "object": "chat.completion",
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hi!"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
    }
).encode()


@dataclass
class Row:
    metric: str
    value: float
    unit: str
    detail: str = ""
    target: str = ""


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def table(rows: list[Row]) -> str:
    head = ("metric", "value", "unit", "target", "detail")
    cells = [(r.metric, f"{r.value:,.2f}", r.unit, r.target, r.detail) for r in rows]
    widths = [max(len(c[i]) for c in [head, *cells]) for i in range(5)]
    lines = []
    for i, (metric, value, unit, target, detail) in enumerate([head, *cells]):
        lines.append(
            f"{metric:<{widths[0]}}  {value:>{widths[1]}}  {unit:<{widths[2]}}  "
            f"{target:<{widths[3]}}  {detail}".rstrip()
        )
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def report(title: str, rows: list[Row], as_json: bool) -> None:
    if as_json:
        print(json.dumps({"machine": machine(), "results": [asdict(r) for r in rows]}))
    else:
        print(f"{title} on {machine()}\n")
        print(table(rows))


def run_child(script: str, args: list[str], home: str) -> str:
    """Run ``script`` again with ``args`` in a fresh process whose STUDIO_HOME is ``home``
    (a throwaway SQLite database, never a shared one); its last line of output."""
    env = {**os.environ, "STUDIO_HOME": home, "HF_HUB_OFFLINE": "1"}
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, script, *args],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"bench child {args} failed:\n{done.stderr}")
    return done.stdout.strip().splitlines()[-1]
