"""The Playground says when a connection's own limit caps "Parallel calls"."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from streamlit.testing.v1 import AppTest

from studio.models.connections import ConnectionCreate, add_connection
from studio.services.apps import create_app
from studio.services.datasets import upload_dataset
from studio.store import session_scope
from tests.providers.fakes import FaultyOpenAIServer

PLAYGROUND = str(Path(__file__).resolve().parent.parent / "pages" / "playground.py")
CAPPED = "allows at most 4 calls at a time"


def test_parallel_calls_above_the_connection_limit_are_explained(
    faulty_server: Callable[..., FaultyOpenAIServer],
) -> None:
    server = faulty_server()
    with session_scope() as session:
        add_connection(
            session=session,
            data=ConnectionCreate(
                name="srv", kind="openai", base_url=server.url, options={"concurrency": 4}
            ),
        )
        app = create_app(session=session, name="Marketing copy")
        assert app.id is not None
        upload_dataset(
            session=session, app_id=app.id, name="events", data=b"event\nLaunch\n", filename="e.csv"
        )
    at = AppTest.from_file(PLAYGROUND, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    at.selectbox(key="pg_model").set_value("srv/fake-chat").run()
    at.number_input(key="pg_concurrency").set_value(32).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(CAPPED in c.value and "not 32" in c.value for c in at.caption)
    at.number_input(key="pg_concurrency").set_value(4).run()
    assert not any(CAPPED in c.value for c in at.caption)
