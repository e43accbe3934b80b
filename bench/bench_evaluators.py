"""Deterministic evaluators over 10,000 rows x 10 evaluators, beside hand-written checks.

    python bench/bench_evaluators.py [--rows 10000] [--repeat 3] [--json]

The studio's figure is what a user gets: the catalogue's evaluators built from
their options (as the UI and `studio eval` build them), run by
``score_items`` and summed into a report card with intervals. The baseline,
measured in the same run, is the same ten checks written as bare Python
expressions over the same strings (no verdicts, no reasons, no report), so the
difference is what the evaluator layer costs. Peak memory is the process's
maximum resident set size after the run (it includes the interpreter and the
libraries). Target (issue 13): <= 2 s on this machine for 10,000 x 10.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Row, report
from studio.evaluators import EvalItem, build
from studio.evaluators.report import report_card, score_items

WORDS = "the event invites young professionals to a spring wine tasting in the city".split()  # noqa: SIM905
SPECS: list[tuple[str, dict[str, object]]] = [
    ("exact_match", {}),
    ("contains", {"value": "wine"}),
    ("contains_any", {"values": ["spring", "autumn", "summer"]}),
    ("contains_all", {"values": ["event", "city"]}),
    ("not_contains", {"values": ["as an AI", "I cannot"]}),
    ("starts_with", {"value": "the"}),
    ("regex", {"pattern": r"\bwine\b"}),
    ("is_json", {}),
    ("length", {"unit": "words", "max": 40}),
    ("levenshtein", {"threshold": 0.8}),
]


def _data(rows: int) -> list[tuple[str, str]]:
    rng = random.Random(1)
    data = []
    for _ in range(rows):
        out = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 30)))
        ref = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 30)))
        data.append((out, ref))
    return data


def studio(data: list[tuple[str, str]]) -> float:
    evaluators = {f"{i}-{spec}": build(spec, options) for i, (spec, options) in enumerate(SPECS)}
    items = [("A", i, 0, EvalItem(output=o, reference=r)) for i, (o, r) in enumerate(data)]
    start = time.perf_counter()
    scores = asyncio.run(score_items(evaluators, items))
    report_card(scores)
    return time.perf_counter() - start


def baseline(data: list[tuple[str, str]]) -> float:
    from rapidfuzz.distance import Levenshtein

    word = re.compile(r"\bwine\b", re.IGNORECASE)
    start = time.perf_counter()
    passed = 0
    for out, ref in data:
        low = out.casefold()
        passed += low.strip() == ref.casefold().strip()
        passed += "wine" in low
        passed += any(v in low for v in ("spring", "autumn", "summer"))
        passed += all(v in low for v in ("event", "city"))
        passed += not any(v in low for v in ("as an ai", "i cannot"))
        passed += low.startswith("the")
        passed += word.search(out) is not None
        try:
            json.loads(out)
            passed += 1
        except ValueError:
            pass
        passed += len(out.split()) <= 40
        passed += Levenshtein.normalized_similarity(low, ref.casefold()) >= 0.8
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    data = _data(args.rows)
    studio(data[:100])  # warm imports (scipy, rapidfuzz) outside the timing
    ours = min(studio(data) for _ in range(args.repeat))
    bare = min(baseline(data) for _ in range(args.repeat))
    checks = args.rows * len(SPECS)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = [
        Row(
            f"{args.rows:,} rows x {len(SPECS)} evaluators + report card",
            ours,
            "s",
            f"{checks / ours:,.0f} checks/s; best of {args.repeat}",
            "<= 2 s",
        ),
        Row("baseline: same checks as bare Python", bare, "s", f"{checks / bare:,.0f} checks/s"),
        Row("evaluator layer overhead", ours / bare, "x baseline", "verdicts, reasons, intervals"),
        Row("peak memory (process RSS)", peak_mb, "MiB", "interpreter and libraries included"),
    ]
    report("Deterministic evaluators", rows, args.json)


if __name__ == "__main__":
    main()
