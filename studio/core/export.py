"""Export run results as CSV (for Excel) or JSON Lines, streamed or whole.

CSV cells that are strings starting with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return are prefixed with a single quote so that spreadsheet programs
show them as text instead of running them as formulas (OWASP "CSV injection").
Numbers are written as they are, negative ones included. JSON Lines needs no
escaping: it is data, not a spreadsheet.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

__all__ = [
    "CSV_BOM",
    "FORMULA_PREFIXES",
    "csv_cell",
    "iter_csv",
    "iter_jsonl",
    "to_csv",
    "to_jsonl",
]

CSV_BOM = "\ufeff".encode()
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_BATCH_ROWS = 500


def csv_cell(value: Any) -> str | int | float:
    """One CSV cell: None → empty, numbers as-is, formula-looking text quoted with ``'``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return "" if isinstance(value, float) and math.isnan(value) else value
    text = value if isinstance(value, str) else _as_text(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def _as_text(value: Any) -> str:
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def iter_csv(rows: Iterable[Mapping[str, Any]], columns: list[str]) -> Iterator[bytes]:
    """Yield a UTF-8 CSV (with BOM, so Excel detects the encoding) in chunks.

    The first chunk holds the BOM and the header; every later chunk holds up to
    a few hundred rows. Keys missing from a row give empty cells; extra keys are
    ignored.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([csv_cell(c) for c in columns])
    yield CSV_BOM + buffer.getvalue().encode("utf-8")
    buffer.seek(0)
    buffer.truncate()
    pending = 0
    for row in rows:
        writer.writerow([csv_cell(row.get(c)) for c in columns])
        pending += 1
        if pending >= _BATCH_ROWS:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    if pending:
        yield buffer.getvalue().encode("utf-8")


def to_csv(rows: Iterable[Mapping[str, Any]], columns: list[str]) -> bytes:
    """The whole CSV export as bytes (see :func:`iter_csv`)."""
    return b"".join(iter_csv(rows, columns))


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # NaN and infinity are not valid JSON
    return value


def iter_jsonl(rows: Iterable[Mapping[str, Any]], columns: list[str]) -> Iterator[bytes]:
    """Yield one UTF-8 JSON object per line, keys in ``columns`` order."""
    for row in rows:
        record = {c: _json_value(row.get(c)) for c in columns}
        line = json.dumps(record, ensure_ascii=False, default=str, allow_nan=False)
        yield line.encode("utf-8") + b"\n"


def to_jsonl(rows: Iterable[Mapping[str, Any]], columns: list[str]) -> bytes:
    """The whole JSON Lines export as bytes (see :func:`iter_jsonl`)."""
    return b"".join(iter_jsonl(rows, columns))
