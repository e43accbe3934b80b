"""The Monitoring page's request detail shows the chunks an endpoint's retrieval step
used (a real gateway request, logged by the gateway's own writer)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.gateway.test_endpoint_retrieval import Gateway, _ask
from tests.gateway.test_endpoint_retrieval import gateway as gateway  # the fixture

MONITORING = str(Path(__file__).resolve().parent.parent / "pages" / "monitoring.py")


def test_the_request_detail_lists_the_retrieved_chunks(gateway: Gateway) -> None:
    answer = _ask(gateway, "Where is customer data stored?")
    assert answer.status_code == 200
    gateway.logged()  # written
    at = AppTest.from_file(MONITORING, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    at.selectbox(key="mon_detail").set_value(answer.json()["request_id"]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("2 chunks the prompt was given" in m.value for m in at.markdown)
    (chunks,) = [d.value for d in at.dataframe if "chunk id" in d.value.columns]
    assert chunks["document"].iloc[0] == "data.md"
