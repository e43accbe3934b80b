"""Datasets: CSV and JSON Lines uploads, stored row by row, versioned.

A dataset belongs to an app and has numbered versions. A version never changes
once saved (runs pin the version they used): uploading again, editing cells or
choosing another expected-output column all make version N+1.

:func:`parse_table` turns an uploaded file into columns and string rows. It
detects the encoding (UTF-8 with or without BOM, else Windows-1252/Latin-1) and
the delimiter (``,`` ``;`` tab ``|``) and rejects files it cannot read with a
:class:`DatasetError` that says what is wrong and how to fix it. Rows whose
cells are all empty (spreadsheet leftovers) are skipped.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
from pydantic import BaseModel
from sqlalchemy import func, insert, literal
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from studio.errors import ConflictError, NotFoundError, StudioError
from studio.services.apps import get_app
from studio.store.tables import Dataset, DatasetRow, DatasetVersion

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DatasetError",
    "DatasetSummary",
    "ParsedTable",
    "get_version",
    "latest_version",
    "list_datasets",
    "list_versions",
    "load_rows",
    "parse_table",
    "rows_frame",
    "save_edited_version",
    "set_expected_column",
    "upload_dataset",
    "version_csv",
]

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
MAX_NAME_LENGTH = 200
DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_SNIFF_CHARS = 4 * 1024
_CHECK_CHARS = 32 * 1024
_INSERT_CHUNK = 5_000
_JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "true/false"}
_KEEP: Any = object()  # "leave the expected column as it is"


class DatasetError(StudioError):
    """A dataset file or edit that cannot be stored; the hint says how to fix it."""


@dataclass(frozen=True)
class ParsedTable:
    columns: list[str]
    rows: list[dict[str, str]]
    encoding: str = "utf-8"
    delimiter: str = ","
    skipped_blank_rows: int = field(default=0, compare=False)


class DatasetSummary(BaseModel):
    id: int
    name: str
    latest_version: int
    latest_version_id: int
    row_count: int
    columns: list[str]
    expected_column: str | None
    created_at: datetime
    updated_at: datetime


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


def _check_columns(names: Sequence[str], *, where: str = "the header row") -> list[str]:
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
    columns = _check_columns(header)
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
    columns = _check_columns(columns, where="the JSON keys")
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


def _check_expected(expected_column: str | None, columns: list[str]) -> str | None:
    if expected_column is None or expected_column == "":
        return None
    if expected_column not in columns:
        raise DatasetError(
            f"The expected-output column '{expected_column}' is not in this dataset.",
            hint=f"Pick one of its columns: {', '.join(columns)}.",
        )
    return expected_column


def _next_version_number(session: Session, dataset_id: int) -> int:
    newest = session.exec(
        select(func.max(DatasetVersion.version)).where(DatasetVersion.dataset_id == dataset_id)
    ).one()
    return int(newest or 0) + 1


def _new_version(
    session: Session,
    dataset: Dataset,
    *,
    columns: list[str],
    row_count: int,
    expected_column: str | None,
    source_filename: str | None,
    note: str,
) -> DatasetVersion:
    assert dataset.id is not None
    version = DatasetVersion(
        dataset_id=dataset.id,
        version=_next_version_number(session, dataset.id),
        columns=columns,
        expected_column=expected_column,
        row_count=row_count,
        source_filename=source_filename,
        note=note,
    )
    session.add(version)
    try:
        session.flush()
    except IntegrityError as exc:
        raise ConflictError(
            f"Someone else saved a new version of dataset '{dataset.name}' at the same moment.",
            hint="Reload the dataset and save again.",
        ) from exc
    return version


def _insert_rows(session: Session, version_id: int, rows: Sequence[Mapping[str, str]]) -> None:
    for start in range(0, len(rows), _INSERT_CHUNK):
        chunk = rows[start : start + _INSERT_CHUNK]
        session.execute(
            insert(DatasetRow),
            [
                {"dataset_version_id": version_id, "row_index": start + i, "data": dict(row)}
                for i, row in enumerate(chunk)
            ],
        )


def upload_dataset(
    *,
    session: Session,
    app_id: int,
    name: str,
    data: bytes,
    filename: str,
    expected_column: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> DatasetVersion:
    """Store a file as version 1 of a new dataset, or the next version of ``name``."""
    app = get_app(session=session, ref=app_id)
    assert app.id is not None
    clean = (name or "").strip()
    if not clean or len(clean) > MAX_NAME_LENGTH:
        raise DatasetError(
            "The dataset needs a name." if not clean else "The dataset name is too long.",
            hint=f"Use 1 to {MAX_NAME_LENGTH} characters, e.g. 'support questions'.",
        )
    table = parse_table(data, filename=filename, max_bytes=max_bytes)
    expected = _check_expected(expected_column, table.columns)
    dataset = session.exec(
        select(Dataset).where(Dataset.app_id == app.id, Dataset.name == clean)
    ).first()
    if dataset is None:
        dataset = Dataset(app_id=app.id, name=clean)
        session.add(dataset)
    dataset.archived = False
    session.flush()
    version = _new_version(
        session,
        dataset,
        columns=table.columns,
        row_count=len(table.rows),
        expected_column=expected,
        source_filename=filename,
        note=f"uploaded {filename}",
    )
    assert version.id is not None
    _insert_rows(session, version.id, table.rows)
    session.flush()
    return version


def get_version(*, session: Session, version_id: int) -> DatasetVersion:
    version = session.get(DatasetVersion, version_id)
    if version is None:
        raise NotFoundError(
            f"No dataset version {version_id}.", hint="Pick a version from the dataset's list."
        )
    return version


def _get_dataset(session: Session, dataset_id: int) -> Dataset:
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise NotFoundError(f"No dataset {dataset_id}.", hint="Pick one from the app's datasets.")
    return dataset


def latest_version(*, session: Session, dataset_id: int) -> DatasetVersion:
    dataset = _get_dataset(session, dataset_id)
    version = session.exec(
        select(DatasetVersion)
        .where(DatasetVersion.dataset_id == dataset_id)
        .order_by(col(DatasetVersion.version).desc())
    ).first()
    if version is None:
        raise NotFoundError(f"Dataset '{dataset.name}' has no versions yet.")
    return version


def list_versions(*, session: Session, dataset_id: int) -> list[DatasetVersion]:
    """All versions of a dataset, oldest first."""
    _get_dataset(session, dataset_id)
    return list(
        session.exec(
            select(DatasetVersion)
            .where(DatasetVersion.dataset_id == dataset_id)
            .order_by(col(DatasetVersion.version))
        ).all()
    )


def list_datasets(*, session: Session, app_id: int) -> list[DatasetSummary]:
    """The app's datasets with their latest version, the most recently changed first."""
    newest = (
        select(DatasetVersion.dataset_id, func.max(DatasetVersion.version).label("version"))
        .group_by(col(DatasetVersion.dataset_id))
        .subquery()
    )
    query = (
        select(Dataset, DatasetVersion)
        .join(DatasetVersion, col(DatasetVersion.dataset_id) == col(Dataset.id))
        .join(
            newest,
            (newest.c.dataset_id == col(DatasetVersion.dataset_id))
            & (newest.c.version == col(DatasetVersion.version)),
        )
        .where(Dataset.app_id == app_id, col(Dataset.archived).is_(False))
        .order_by(col(DatasetVersion.created_at).desc(), col(Dataset.id).desc())
    )
    summaries = []
    for dataset, version in session.exec(query).all():
        assert dataset.id is not None and version.id is not None
        summaries.append(
            DatasetSummary(
                id=dataset.id,
                name=dataset.name,
                latest_version=version.version,
                latest_version_id=version.id,
                row_count=version.row_count,
                columns=list(version.columns),
                expected_column=version.expected_column,
                created_at=dataset.created_at,
                updated_at=version.created_at,
            )
        )
    return summaries


def load_rows(*, session: Session, version_id: int) -> list[dict[str, str]]:
    """The version's rows in order, each with every column (missing values as "")."""
    version = get_version(session=session, version_id=version_id)
    stored = session.exec(
        select(DatasetRow.data)
        .where(DatasetRow.dataset_version_id == version_id)
        .order_by(col(DatasetRow.row_index))
    ).all()
    return [{c: str(data.get(c, "")) for c in version.columns} for data in stored]


def rows_frame(*, session: Session, version_id: int) -> pd.DataFrame:
    version = get_version(session=session, version_id=version_id)
    rows = load_rows(session=session, version_id=version_id)
    return pd.DataFrame(rows, columns=list(version.columns), dtype=object)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value if isinstance(value, str) else str(value)


def save_edited_version(
    *,
    session: Session,
    version_id: int,
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    expected_column: str | None = _KEEP,
    note: str = "",
) -> DatasetVersion:
    """Save edited rows (and columns) as the dataset's next version.

    The version edited from stays as it was. Values become strings (None and
    NaN become ""); rows with every cell empty are dropped. When nothing
    changed, the version edited from is returned and no version is made.
    """
    base = get_version(session=session, version_id=version_id)
    new_columns = (
        list(base.columns) if columns is None else _check_columns(columns, where="the edited table")
    )
    allowed = set(new_columns)
    clean: list[dict[str, str]] = []
    for number, row in enumerate(rows, start=1):
        unknown = [str(k) for k in row if str(k).strip() not in allowed]
        if unknown:
            raise DatasetError(
                f"Row {number} has values for columns that are not in the dataset: "
                f"{', '.join(repr(u) for u in unknown)}.",
                hint=f"Add those columns first, or use only: {', '.join(new_columns)}.",
            )
        values = {str(k).strip(): _cell(v) for k, v in row.items()}
        cells = {c: values.get(c, "") for c in new_columns}
        if any(v.strip() for v in cells.values()):
            clean.append(cells)
    if not clean:
        raise DatasetError(
            "A dataset version needs at least one row with a value in it.",
            hint="Add a row, or keep the rows you were about to delete.",
        )
    if expected_column is _KEEP:
        keep = base.expected_column
        expected = keep if keep in allowed else None
    else:
        expected = _check_expected(expected_column, new_columns)
    if (
        new_columns == list(base.columns)
        and expected == base.expected_column
        and clean == load_rows(session=session, version_id=version_id)
    ):
        return base
    dataset = _get_dataset(session, base.dataset_id)
    version = _new_version(
        session,
        dataset,
        columns=new_columns,
        row_count=len(clean),
        expected_column=expected,
        source_filename=base.source_filename,
        note=note or f"edited from version {base.version}",
    )
    assert version.id is not None
    _insert_rows(session, version.id, clean)
    session.flush()
    return version


def set_expected_column(
    *, session: Session, version_id: int, expected_column: str | None, note: str = ""
) -> DatasetVersion:
    """Choose the expected-output column (None for none) in a new version.

    The rows are copied inside the database. Choosing the column the version
    already has returns that version unchanged.
    """
    base = get_version(session=session, version_id=version_id)
    expected = _check_expected(expected_column, list(base.columns))
    if expected == base.expected_column:
        return base
    dataset = _get_dataset(session, base.dataset_id)
    label = f"'{expected}'" if expected else "none"
    version = _new_version(
        session,
        dataset,
        columns=list(base.columns),
        row_count=base.row_count,
        expected_column=expected,
        source_filename=base.source_filename,
        note=note or f"expected-output column set to {label} (from version {base.version})",
    )
    copy = select(literal(version.id), col(DatasetRow.row_index), col(DatasetRow.data)).where(
        DatasetRow.dataset_version_id == base.id
    )
    session.execute(
        insert(DatasetRow).from_select(["dataset_version_id", "row_index", "data"], copy)
    )
    session.flush()
    return version


def version_csv(*, session: Session, version_id: int, bom: bool = False) -> bytes:
    """The version as a UTF-8 CSV file (``bom=True`` helps Excel open it correctly).

    Every cell is quoted, so the file reads back with exactly the same cells.
    """
    version = get_version(session=session, version_id=version_id)
    out = io.StringIO(newline="")
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(version.columns)
    for row in load_rows(session=session, version_id=version_id):
        writer.writerow([row[c] for c in version.columns])
    return ("\ufeff" if bom else "").encode() + out.getvalue().encode("utf-8")
