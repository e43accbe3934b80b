"""Datasets: uploads stored row by row, versioned.

A dataset belongs to an app and has numbered versions. A version never changes
once saved (runs pin the version they used): uploading again, editing cells or
choosing another expected-output column all make version N+1. Files are read by
:mod:`studio.services.dataset_files`.

Rules: reading needs access to the dataset's app, uploading and editing also the admin or
member role (:mod:`studio.services.app_access`); reviewers and anonymous callers none.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from sqlalchemy import func, insert, literal
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from studio.core.errors import ConflictError, DatasetError, NotFoundError
from studio.services.app_access import check_app
from studio.services.apps import get_app
from studio.services.dataset_files import (
    DEFAULT_MAX_BYTES,
    MAX_NAME_LENGTH,
    check_columns,
    parse_table,
)
from studio.services.members import require_member_role
from studio.store.tables import Dataset, DatasetRow, DatasetVersion

if TYPE_CHECKING:  # pandas is imported by rows_frame only: the CLI starts without it
    import pandas as pd

__all__ = [
    "DatasetSummary",
    "get_version",
    "latest_version",
    "list_datasets",
    "list_versions",
    "load_rows",
    "rows_frame",
    "save_edited_version",
    "set_expected_column",
    "subset_version",
    "upload_dataset",
    "version_csv",
]

_INSERT_CHUNK = 5_000
_KEEP: Any = object()  # "leave the expected column as it is"


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


def _dataset_named(session: Session, app_id: int, name: str) -> Dataset:
    """The app's dataset called ``name`` (made, or taken out of the archive, if need be)."""
    dataset = session.exec(
        select(Dataset).where(Dataset.app_id == app_id, Dataset.name == name)
    ).first()
    if dataset is None:
        dataset = Dataset(app_id=app_id, name=name)
        session.add(dataset)
    dataset.archived = False
    session.flush()
    return dataset


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
    require_member_role("upload datasets")
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
    dataset = _dataset_named(session, app.id, clean)
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


def subset_version(
    *,
    session: Session,
    version_id: int,
    rows: Sequence[int],
    name: str,
    expected_column: str | None,
    note: str,
) -> DatasetVersion:
    """Some rows of a version (0-based, in the order given) as the next version of dataset
    ``name`` in the same app, e.g. a fine-tuning job's validation rows to compare models on."""
    require_member_role("make datasets")
    source = get_version(session=session, version_id=version_id)
    parent = _get_dataset(session, source.dataset_id)
    stored = load_rows(session=session, version_id=version_id)
    picked = [stored[i] for i in rows if 0 <= i < len(stored)]
    if not picked:
        raise DatasetError(f"None of those rows is in version {version_id} of '{parent.name}'.")
    dataset = _dataset_named(session, parent.app_id, name.strip()[:MAX_NAME_LENGTH])
    version = _new_version(
        session, dataset, columns=list(source.columns), row_count=len(picked),
        expected_column=_check_expected(expected_column, list(source.columns)),
        source_filename=source.source_filename, note=note,
    )  # fmt: skip
    assert version.id is not None
    _insert_rows(session, version.id, picked)
    session.flush()
    return version


def get_version(*, session: Session, version_id: int) -> DatasetVersion:
    version = session.get(DatasetVersion, version_id)
    dataset = session.get(Dataset, version.dataset_id) if version is not None else None
    if version is None or dataset is None:
        raise NotFoundError(
            f"No dataset version {version_id}.", hint="Pick a version from the dataset's list."
        )
    check_app(
        session=session, app_id=dataset.app_id, action="read datasets", what="dataset version"
    )
    return version


def _get_dataset(session: Session, dataset_id: int) -> Dataset:
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise NotFoundError(f"No dataset {dataset_id}.", hint="Pick one from the app's datasets.")
    check_app(session=session, app_id=dataset.app_id, action="read datasets", what="dataset")
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
    check_app(session=session, app_id=app_id, action="list datasets")
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
    import pandas as pd

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
    require_member_role("edit datasets")
    base = get_version(session=session, version_id=version_id)
    new_columns = (
        list(base.columns) if columns is None else check_columns(columns, where="the edited table")
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
    require_member_role("edit datasets")
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
