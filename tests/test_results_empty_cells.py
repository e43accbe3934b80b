"""Playground results: a row without an error shows nothing in the error column.

Before, the table printed ``None`` there (and in a failed row's output cell).
The CSV export has empty cells too, never the text "None".
"""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from studio.core.errors import ProviderUnavailableError
from studio.services.apps import create_app
from studio.services.datasets import upload_dataset
from studio.services.run_results import export_results, list_runs
from studio.store import session_scope
from tests.test_pages_playground import CSV, _generate_and_wait, _open, _write


@pytest.fixture
def app_with_data(mock_provider: Any) -> int:
    with session_scope() as session:
        app = create_app(session=session, name="Marketing copy")
        assert app.id is not None
        upload_dataset(
            session=session, app_id=app.id, name="events", data=CSV, filename="events.csv"
        )
        return app.id


def test_rows_without_an_error_show_an_empty_error_cell(
    app_with_data: int, mock_provider: Any
) -> None:
    at = _write(_open())
    at.number_input(key="pg_concurrency").set_value(1).run()
    mock_provider.replies.append(
        ProviderUnavailableError("The provider is down (503).", provider="mock")
    )
    at = _generate_and_wait(at)
    table = at.dataframe[0].value
    errors, outputs = list(table["error"]), list(table["output"])
    failed = [i for i, e in enumerate(errors) if e]
    assert len(failed) == 1 and "The provider is down" in errors[failed[0]]
    assert [e for i, e in enumerate(errors) if i not in failed] == ["", ""]
    assert outputs[failed[0]] == ""
    assert "None" not in errors and "None" not in outputs

    with session_scope() as session:
        run_id = list_runs(session=session, app_id=app_with_data)[0].id
        assert run_id is not None
        data = export_results(session=session, run_id=run_id, fmt="csv")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert sorted(r["error"] for r in rows)[:2] == ["", ""]
    assert all(r["error"] != "None" and r["output"] != "None" for r in rows)
