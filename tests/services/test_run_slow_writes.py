"""A run's workers hand answered rows to the writer and go on: a slow database write does
not hold back the next model call (issue 11 item 6, a run at 0.88 of a bare client)."""

from __future__ import annotations

import threading
from typing import Any

from sqlmodel import Session

from studio.services import runs
from studio.services.runs import run_sync
from tests.services.test_run_concurrency import StartServer, _start_run


def test_the_next_call_starts_while_the_first_row_is_still_being_written(
    session: Session, faulty_server: StartServer, monkeypatch: Any
) -> None:
    server = faulty_server(latency_s=0.0)
    run_id = _start_run(session, server, rows=4, concurrency=1)
    persist, overlapped = runs._persist, []

    def slow_persist(*args: Any, **kwargs: Any) -> Any:
        if not overlapped:  # the first write: does the worker call the model meanwhile?
            second_call = threading.Event()
            for _ in range(200):
                if server.calls >= 2:
                    second_call.set()
                    break
                threading.Event().wait(0.01)
            overlapped.append(second_call.is_set())
        return persist(*args, **kwargs)

    monkeypatch.setattr(runs, "_persist", slow_persist)
    progress = run_sync(run_id=run_id)
    assert (progress.done, progress.errors) == (4, 0)
    assert overlapped == [True]  # before: the one worker waited for this write
