"""What every benchmark prints: rows of figures, as a table or as JSON for bench/run_all.py."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass

__all__ = ["Row", "machine", "report", "table"]


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
