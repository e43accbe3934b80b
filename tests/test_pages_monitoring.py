"""The Monitoring page, driven with AppTest over requests logged through the gateway's own
request-log writer: stats, charts, filters, one request in detail, add to a dataset."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from streamlit.testing.v1 import AppTest

from studio.gateway.request_log import LogEntry, RequestLogger
from studio.services import endpoints
from studio.services.apps import create_app
from studio.services.datasets import list_datasets, load_rows, upload_dataset
from studio.store import session_scope
from studio.store.tables import utcnow
from tests.gateway.conftest import make_variant

ROOT = Path(__file__).resolve().parent.parent
MONITORING = str(ROOT / "pages" / "monitoring.py")


def _log(
    request_id: str,
    *,
    endpoint_id: int | None,
    status: int = 200,
    latency_ms: float = 100.0,
    minutes_ago: float = 1.0,
    inputs: dict[str, str] | None = None,
    error: str | None = None,
    model: str | None = "mock/echo",
) -> LogEntry:
    body = json.dumps({"inputs": inputs}) if inputs is not None else None
    answer = json.dumps({"output": "echo: hi"}) if status < 400 else None
    return LogEntry(
        request_id=request_id,
        route="/v1/endpoints/{name}/generate",
        status_code=status,
        latency_ms=latency_ms,
        created_at=utcnow() - timedelta(minutes=minutes_ago),
        endpoint_id=endpoint_id,
        app_id=1,
        model=model,
        api_key_id=None,
        model_latency_ms=latency_ms - 1.5,
        overhead_ms=1.5,
        prompt_tokens=10 if status < 400 else 0,
        response_tokens=5 if status < 400 else 0,
        cost=0.002 if status < 400 else 0.0,
        error=error,
        request_body=body,
        response_body=answer,
    )


def _traffic(mock_provider: Any) -> dict[str, int]:
    """App 'Marketing copy' with endpoints 'email' and 'promo', a dataset, and logged calls:
    three answers and one 502 on 'email' in the last minutes, one on 'promo' two days ago."""
    with session_scope() as session:
        app = create_app(session=session, name="Marketing copy")
        assert app.id is not None
        make_variant(session, app.id, "email", "Write about {{event}} for {{who}}.")
        make_variant(session, app.id, "promo", "Promote {{event}}.")
        email = endpoints.deploy(session=session, app=app.id, variant="email", name="email")
        promo = endpoints.deploy(session=session, app=app.id, variant="promo", name="promo")
        upload_dataset(
            session=session,
            app_id=app.id,
            name="events",
            data=b"event,who\nSpring gala,young professionals\n",
            filename="events.csv",
        )
        rows = [
            _log(
                "req-a",
                endpoint_id=email.id,
                latency_ms=80,
                inputs={"event": "Fair", "who": "kids"},
            ),
            _log(
                "req-b",
                endpoint_id=email.id,
                latency_ms=120,
                inputs={"event": "Expo", "who": "CTOs"},
            ),
            _log(
                "req-c", endpoint_id=email.id, latency_ms=400, inputs={"event": "Run", "who": "all"}
            ),
            _log(
                "req-fail",
                endpoint_id=email.id,
                status=502,
                latency_ms=30,
                inputs={"event": "Gala", "who": "VIPs"},
                error="The model's server failed (HTTP 500).",
            ),
            _log("req-old", endpoint_id=promo.id, minutes_ago=2 * 24 * 60, inputs={"event": "Old"}),
        ]
        ids = {"app": app.id, "email": email.id, "promo": promo.id}
    logger = RequestLogger()  # the gateway's writer: raw rows plus the statistics rollup
    for entry in rows:
        logger.log(entry)
    while logger.pending:
        assert logger.flush()
    return ids


def _open(**state: Any) -> AppTest:
    at = AppTest.from_file(MONITORING, default_timeout=60)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    _ok(at)
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def _requests(at: AppTest) -> Any:
    return next(d.value for d in at.dataframe if "Request id" in d.value.columns)


def test_no_requests_yet_says_how_to_send_one() -> None:
    at = _open()
    [info] = [i.value for i in at.info]
    assert "No requests yet" in info and "Deploy page" in info and "snippets" in info
    assert not at.metric and not at.get("plotly_chart")


def test_stats_and_charts_for_the_window(mock_provider: Any) -> None:
    _traffic(mock_provider)
    at = _open()
    assert _metric(at, "Requests") == "4"  # the two-day-old call is outside the last hour
    assert _metric(at, "Error rate") == "25.0%"
    assert _metric(at, "Tokens") == "45"
    assert _metric(at, "Cost") == "$0.0060"
    p50, p99 = _metric(at, "Latency p50"), _metric(at, "Latency p99")
    assert p50.endswith(" ms") and 75 <= float(p50.split()[0]) <= 85  # bins are ~5% wide
    assert 380 <= float(p99.split()[0].replace(",", "")) <= 420
    charts = at.get("plotly_chart")
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in charts]
    assert titles[:4] == [
        "Requests per minute (averaged per minute)",
        "Latency percentiles",
        "Error rate",
        "Tokens and cost",
    ]
    assert titles[4] == "Requests per day (last 30 days, UTC)"
    assert any("refreshing every 5 s" in c.value for c in at.caption)

    at.selectbox(key="mon_window").set_value("Last 7 days").run()
    assert _metric(at, "Requests") == "5"
    at.toggle(key="mon_live").set_value(False).run()
    assert any("live refresh is off" in c.value for c in at.caption)


def test_one_endpoint_and_an_empty_window(mock_provider: Any) -> None:
    ids = _traffic(mock_provider)
    at = _open()
    assert at.selectbox(key="mon_endpoint").options == [
        "All endpoints and models",
        "email (Marketing copy)",
        "promo (Marketing copy)",
    ]
    at.selectbox(key="mon_endpoint").set_value(ids["promo"]).run()
    _ok(at)
    assert any("No requests in the last hour" in i.value for i in at.info)
    at.selectbox(key="mon_window").set_value("Last 7 days").run()
    assert _metric(at, "Requests") == "1"
    assert list(_requests(at)["Request id"]) == ["req-old"]


def test_recent_requests_filters(mock_provider: Any) -> None:
    _traffic(mock_provider)
    at = _open()
    table = _requests(at)
    assert list(table["Request id"]) == ["req-fail", "req-c", "req-b", "req-a"]  # newest first
    assert set(table["Endpoint"]) == {"email"}
    assert list(table["Tokens in → out"])[1] == "10 → 5"

    at.selectbox(key="mon_status").set_value("Errors (4xx and 5xx)").run()
    assert list(_requests(at)["Request id"]) == ["req-fail"]
    assert list(_requests(at)["Error"]) == ["The model's server failed (HTTP 500)."]
    at.selectbox(key="mon_status").set_value("Successful (2xx)").run()
    at.text_input(key="mon_text").set_value("Expo").run()
    assert list(_requests(at)["Request id"]) == ["req-b"]
    at.text_input(key="mon_text").set_value("no such thing").run()
    assert any("No requests match these filters" in i.value for i in at.info)

    at.text_input(key="mon_text").set_value("").run()
    at.selectbox(key="mon_status").set_value("All").run()
    at.selectbox(key="mon_when").set_value("All time").run()
    assert "req-old" in list(_requests(at)["Request id"])


def test_detail_view_of_one_request(mock_provider: Any) -> None:
    _traffic(mock_provider)
    at = _open()
    at.selectbox(key="mon_detail").set_value("req-fail").run()
    _ok(at)
    assert any("The model's server failed (HTTP 500)." in e.value for e in at.error)
    assert _metric(at, "Total latency") == "30.0 ms"
    assert _metric(at, "Gateway overhead") == "1.5 ms"
    bodies = [c for c in at.code if c.language == "json"]
    assert json.loads(bodies[0].value) == {"inputs": {"event": "Gala", "who": "VIPs"}}
    assert any("Request id `req-fail`" in c.value for c in at.caption)

    at.selectbox(key="mon_detail").set_value("req-a").run()
    assert _metric(at, "Model latency") == "78.5 ms"
    assert _metric(at, "Tokens used") == "15"
    assert _metric(at, "Cost of this call") == "$0.002000"
    bodies = [json.loads(c.value) for c in at.code if c.language == "json"]
    assert bodies == [{"inputs": {"event": "Fair", "who": "kids"}}, {"output": "echo: hi"}]


def test_add_requests_to_a_new_dataset_and_to_an_existing_one(mock_provider: Any) -> None:
    ids = _traffic(mock_provider)
    app_id = ids["app"]
    at = _open()
    pick = at.multiselect(key=f"mon_add_pick_{app_id}")
    assert pick.value == ["req-c", "req-b", "req-a"]  # successful endpoint calls only
    at.text_input(key=f"mon_add_name_{app_id}").set_value("real traffic").run()
    at.button(key="mon_add_button").click().run()
    _ok(at)
    assert any("Saved 'real traffic' version 1 with 3 row(s)" in s.value for s in at.success)
    with session_scope() as session:
        made = {d.name: d for d in list_datasets(session=session, app_id=app_id)}
        assert load_rows(session=session, version_id=made["real traffic"].latest_version_id) == [
            {"event": "Fair", "who": "kids"},
            {"event": "Expo", "who": "CTOs"},
            {"event": "Run", "who": "all"},
        ]
        events = made["events"]

    at.multiselect(key=f"mon_add_pick_{app_id}").set_value(["req-b"]).run()
    at.selectbox(key=f"mon_add_target_{app_id}").set_value(events.id).run()
    assert at.button(key="mon_add_button").label == "Add 1 request(s) to the dataset"
    at.button(key="mon_add_button").click().run()
    _ok(at)
    assert any("Saved 'events' version 2 with 2 row(s)" in s.value for s in at.success)
    with session_scope() as session:
        latest = {d.name: d for d in list_datasets(session=session, app_id=app_id)}["events"]
        assert load_rows(session=session, version_id=latest.latest_version_id) == [
            {"event": "Spring gala", "who": "young professionals"},
            {"event": "Expo", "who": "CTOs"},
        ]


def test_add_to_a_dataset_name_that_exists_is_a_clear_error(mock_provider: Any) -> None:
    ids = _traffic(mock_provider)
    at = _open()
    at.text_input(key=f"mon_add_name_{ids['app']}").set_value("events").run()
    at.button(key="mon_add_button").click().run()
    _ok(at)
    assert any("already has a dataset called 'events'" in e.value for e in at.error)


def test_usage_by_day_per_endpoint_and_model(mock_provider: Any) -> None:
    _traffic(mock_provider)
    at = _open()
    usage = next(d.value for d in at.dataframe if "Day" in d.value.columns)
    by_endpoint = usage.groupby("Endpoint")["Requests"].sum().to_dict()
    assert by_endpoint == {"email": 4, "promo": 1}
    assert set(usage["Model"]) == {"mock/echo"}
    assert usage["Errors"].sum() == 1
