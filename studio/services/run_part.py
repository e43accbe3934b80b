"""A part of a run: rows ``[start, stop)`` answered by one job task at its share of calls.

A big run is split into parts that workers share (see :mod:`studio.services.jobs`).
The run engine answers a part exactly like a whole run, only over its rows: a
part executed twice (a worker died, a part handed back on shutdown) fills only
its gaps, thanks to the ``(run, row, sample)`` unique key.

Rules: no check here (a part's rows only); :mod:`studio.services.runs` checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from studio.store.tables import DatasetRow, RunResult

__all__ = ["RunPart", "stored_index_before"]

_PAST_THE_END = 2**62


@dataclass(frozen=True)
class RunPart:
    start: int  # first row (position in the dataset, from 0)
    stop: int  # one past the last row
    concurrency: int  # calls this part keeps in flight: its share of the run's
    after: int = -1  # stored row index of the row before ``start`` (-1: none)

    def rows(self, total_rows: int) -> int:
        return max(0, min(self.stop, total_rows) - self.start)

    def only(self, query: Any) -> Any:
        """``query`` over run results, narrowed to this part's rows."""
        return query.where(RunResult.row_index >= self.start, RunResult.row_index < self.stop)


def stored_index_before(*, session: Session, version_id: int, start: int) -> int:
    """The stored index of the row at position ``start - 1`` (-1 when ``start`` is 0; past
    the last row when the dataset has fewer rows, so the part reads none)."""
    if start <= 0:
        return -1
    found = session.exec(
        select(DatasetRow.row_index)
        .where(DatasetRow.dataset_version_id == version_id)
        .order_by(col(DatasetRow.row_index))
        .offset(start - 1)
        .limit(1)
    ).first()
    return int(found) if found is not None else _PAST_THE_END
