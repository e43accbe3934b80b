"""Reading dataset files: CSV and JSON Lines into columns and string rows.

:func:`parse_table` detects the encoding (UTF-8 with or without BOM, else
Windows-1252/Latin-1) and the delimiter (``,`` ``;`` tab ``|``) and rejects
files it cannot read with a :class:`~studio.core.errors.DatasetError` that says
what is wrong and how to fix it. Rows whose cells are all empty (spreadsheet
leftovers) are skipped. Nothing here touches the database.

Rules: no check here (it reads bytes, not the database); the dataset services check.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from studio.core.errors import DatasetError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_NAME_LENGTH",
    "ParsedTable",
    "check_columns",
    "parse_table",
]

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
MAX_NAME_LENGTH = 200  # characters, for dataset and column names
DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_SNIFF_CHARS = 4 * 1024
_CHECK_CHARS = 32 * 1024
_JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "true/false"}


@dataclass(frozen=True)
class ParsedTable:
    columns: list[str]
    rows: list[dict[str, str]]
    encoding: str = "utf-8"
    delimiter: str = ","
    skipped_blank_rows: int = field(default=0, compare=False)


# -- parsing ----------------------------------------------------------------------


def _decode(data: bytes) -> tuple[str, str]:
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def _looks_binary(data: bytes, text: str) -> bool:
    if b"\x00" in data[:1_000_000]:
        return True
    sample = text[:65_536]
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\n\r\f")
    controls += sum(1 for ch in sample if 0x7F <= ord(ch) <= 0x9F)
    return controls > max(2, len(sample) // 20)


def _records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(first line number, cells)`` per record; multi-line cells count."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _csv_problem(str(exc), start, delimiter) from exc
        yield start, cells
        start = reader.line_num + 1


def _csv_problem(reason: str, line: int, delimiter: str) -> DatasetError:
    if "end of data" in reason:
        return DatasetError(
            f"A quoted cell that starts on line {line} is never closed.",
            hint='Add the missing closing double quote ("), or remove the stray opening one.',
        )
    if "expected after" in reason:
        return DatasetError(
            f"Line {line} has text right after a closing quote.",
            hint="Wrap the whole cell in double quotes and double any quote inside it, like "
            '"She said ""hi"" twice".',
        )
    if "field larger" in reason:
        return DatasetError(
            f"A cell on line {line} is longer than {csv.field_size_limit():,} characters.",
            hint="Shorten that cell, or check for a missing closing quote before it.",
        )
    return DatasetError(
        f"Line {line} could not be read as {_DELIMITER_NAMES.get(delimiter, delimiter)}-"
        f"separated text ({reason}).",
        hint="Open the file in a spreadsheet and export it again as CSV UTF-8.",
    )


def _consistent(text: str, delimiter: str, truncated: bool) -> bool:
    """The header splits into 2+ columns and the first rows have as many cells."""
    try:
        records = [cells for _, cells in _records(text, delimiter) if cells]
    except DatasetError:
        return False
    if truncated and len(records) > 1:
        records = records[:-1]
    if not records or len(records[0]) < 2:
        return False
    width = len(records[0])
    return all(len(_trim_trailing(r, width)) == width for r in records[1:51])


def _head(text: str, chars: int) -> tuple[str, bool]:
    """The first ``chars`` characters, cut after a line end; and whether it was cut."""
    if len(text) <= chars:
        return text, False
    head = text[:chars]
    return (head[: head.rindex("\n") + 1] if "\n" in head else head), True


def _sniff_delimiter(text: str) -> str:
    """csv.Sniffer's guess, checked against the first rows; "," when nothing fits.

    The sniffer's regular expressions get slow on long quoted text, so it only
    sees the first few kilobytes.
    """
    sample, truncated = _head(text, _CHECK_CHARS)
    try:
        sniffed = csv.Sniffer().sniff(_head(text, _SNIFF_CHARS)[0], "".join(DELIMITERS)).delimiter
    except csv.Error:
        sniffed = ""
    if sniffed in DELIMITERS and _consistent(sample, sniffed, truncated):
        return sniffed
    for candidate in DELIMITERS:
        if candidate != sniffed and _consistent(sample, candidate, truncated):
            return candidate
    return ","


def _trim_trailing(cells: list[str], width: int) -> list[str]:
    """Drop extra empty cells at the end of a row (a common spreadsheet leftover)."""
    while len(cells) > width and not cells[-1].strip():
        cells = cells[:-1]
    return cells


def _looks_like_data(name: str) -> bool:
    try:
        float(name.replace(",", ""))
    except ValueError:
        return False
    return True


def check_columns(names: Sequence[str], *, where: str = "the header row") -> list[str]:
    """Column names must be present, name-like, short and unique (spaces trimmed)."""
    columns = [name.strip() for name in names]
    if not columns or all(not c for c in columns):
        raise DatasetError(
            f"The column names are missing: {where} is empty.",
            hint="Put the column names (e.g. question, expected_answer) on the first line.",
        )
    if all(_looks_like_data(c) for c in columns if c):
        shown = ", ".join(repr(c) for c in columns[:5])
        raise DatasetError(
            f"The column names in {where} ({shown}) look like data, not names.",
            hint="Add a first line with a name for each column, e.g. event,demographic,size.",
        )
    empty = [str(i) for i, c in enumerate(columns, start=1) if not c]
    if empty:
        which = "Column" if len(empty) == 1 else "Columns"
        raise DatasetError(
            f"{which} {', '.join(empty)} in {where} {'has' if len(empty) == 1 else 'have'} "
            "no name.",
            hint="Give every column a name, or delete the empty column.",
        )
    too_long = [i for i, c in enumerate(columns, start=1) if len(c) > MAX_NAME_LENGTH]
    if too_long:
        raise DatasetError(
            f"The name of column {too_long[0]} in {where} is "
            f"{len(columns[too_long[0] - 1])} characters long; column names can have at most "
            f"{MAX_NAME_LENGTH}.",
            hint="Check that the first line holds short column names rather than data.",
        )
    seen: set[str] = set()
    dupes: list[str] = []
    for c in columns:
        if c in seen and c not in dupes:
            dupes.append(c)
        seen.add(c)
    if dupes:
        raise DatasetError(
            f"These column names appear more than once in {where}: "
            f"{', '.join(repr(d) for d in dupes)}.",
            hint="Rename the repeated columns so every column name is different.",
        )
    return columns


def _parse_csv(text: str) -> tuple[list[str], list[dict[str, str]], str, int]:
    delimiter = _sniff_delimiter(text)
    records = _records(text, delimiter)
    header: list[str] | None = None
    for _, cells in records:
        if cells:
            header = cells
            break
    if header is None:
        raise DatasetError(
            "The file has no rows, only blank lines.",
            hint="Upload a CSV with a header line of column names and one line per example.",
        )
    columns = check_columns(header)
    width = len(columns)
    rows: list[dict[str, str]] = []
    skipped = 0
    for line, raw in records:
        cells = _trim_trailing(raw, width)
        if not any(c.strip() for c in cells):
            skipped += 1
            continue
        if len(cells) != width:
            name = _DELIMITER_NAMES[delimiter]
            found = f"{len(cells)} cell{'' if len(cells) == 1 else 's'}"
            raise DatasetError(
                f"Line {line} has {found} but the header has {width} columns ({name}-separated).",
                hint=f"Fix that line so it has {width} cells. If a cell contains a {name}, put "
                "the whole cell in double quotes.",
            )
        rows.append(dict(zip(columns, cells, strict=True)))
    return columns, rows, delimiter, skipped


def _jsonl_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _parse_jsonl(text: str) -> tuple[list[str], list[dict[str, str]], int]:
    columns: list[str] = []
    known: set[str] = set()
    objects: list[dict[str, Any]] = []
    skipped = 0
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.removesuffix("\r")
        if not line.strip():
            skipped += 1
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise DatasetError(
                f"Line {number} is not valid JSON ({str(exc).split(':')[0]}).",
                hint="In a JSON Lines file every line is one JSON object, like "
                '{"question": "...", "expected_answer": "..."}.',
            ) from exc
        if not isinstance(obj, dict):
            raise DatasetError(
                f"Line {number} is a JSON {_JSON_KINDS.get(type(obj), 'value')}, not an object.",
                hint='Write one object per line, like {"question": "..."}.',
            )
        stripped = {str(k).strip(): v for k, v in obj.items()}
        if len(stripped) != len(obj) or "" in stripped:
            raise DatasetError(
                f"Line {number} has a key that is empty or repeated once spaces are trimmed.",
                hint='Give every key its own name, like {"question": "...", "answer": "..."}.',
            )
        for key in stripped:
            if key not in known:
                known.add(key)
                columns.append(key)
        objects.append(stripped)
    if not objects:
        raise DatasetError(
            "The file has no rows, only blank lines.",
            hint="Put one JSON object per line.",
        )
    columns = check_columns(columns, where="the JSON keys")
    rows = [{c: _jsonl_value(obj.get(c)) for c in columns} for obj in objects]
    rows = [r for r in rows if any(v.strip() for v in r.values())]
    return columns, rows, skipped + len(objects) - len(rows)


def parse_table(data: bytes, *, filename: str, max_bytes: int = DEFAULT_MAX_BYTES) -> ParsedTable:
    """Read a CSV (or ``.jsonl`` / ``.ndjson``) file into columns and string rows."""
    if len(data) > max_bytes:
        raise DatasetError(
            f"'{filename}' is {len(data) / 1024 / 1024:.1f} MB; the limit is "
            f"{max_bytes / 1024 / 1024:g} MB.",
            hint="Split the file into smaller datasets, or keep only the rows you need.",
        )
    if not data.strip():
        raise DatasetError(
            f"'{filename}' is empty.",
            hint="Upload a CSV with a header line of column names and one line per example.",
        )
    text, encoding = _decode(data)
    if _looks_binary(data, text):
        hint = "Upload a CSV (comma-separated text) or JSON Lines file."
        if data[:4] == b"PK\x03\x04" or data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
            hint = "This looks like an Excel workbook: use File → Save As → CSV UTF-8."
        raise DatasetError(f"'{filename}' is not a text file.", hint=hint)
    if filename.lower().endswith((".jsonl", ".ndjson")):
        columns, rows, skipped = _parse_jsonl(text)
        delimiter = ""
    else:
        columns, rows, delimiter, skipped = _parse_csv(text)
    if not rows:
        raise DatasetError(
            f"'{filename}' has column names ({', '.join(columns)}) but no rows.",
            hint="Add at least one row of example inputs under the header.",
        )
    return ParsedTable(columns, rows, encoding, delimiter, skipped)


# -- storing versions -------------------------------------------------------------------
