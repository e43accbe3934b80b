"""Fuzz every operation of the gateway's OpenAPI document: no input may cause a 5xx.

Schemathesis generates requests from the schema (valid and edge-case bodies,
paths and queries); each is sent with a valid key, so the requests reach the
routes' own validation and services rather than stopping at auth.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.gateway.conftest import Deployed

EXAMPLES_PER_OPERATION = 25


def _operations(deployed: Deployed) -> list[Any]:
    raw = deployed.client.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(raw)
    return [result.ok() for result in schema.get_all_operations()]


def test_the_schema_covers_the_public_routes(deployed: Deployed) -> None:
    paths = {op.path for op in _operations(deployed)}
    for route in (
        "/v1/endpoints/{name}/generate",
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/models",
    ):
        assert route in paths, f"{route} is missing from the OpenAPI document"


@pytest.mark.filterwarnings("ignore")
def test_no_generated_request_causes_a_server_error(deployed: Deployed) -> None:
    failures: list[str] = []
    statuses: dict[int, int] = {}
    operations = _operations(deployed)
    assert len(operations) >= 10
    for operation in operations:
        strategy = operation.as_strategy()

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def check(case: Any) -> None:
            kwargs = case.as_transport_kwargs(base_url="http://testserver")
            headers = {**(kwargs.pop("headers", None) or {}), **deployed.headers}
            kwargs.pop("base_url", None)
            response = deployed.client.request(headers=headers, **kwargs)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code >= 500 and response.status_code not in (502, 504):
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: "
                    f"{response.text[:200]}"
                )
            if response.status_code >= 400:
                body = response.json()
                assert isinstance(body.get("error", {}).get("message"), str), response.text

        check()
    assert not failures, "\n".join(failures[:10])
    # The fuzzing reached both the routes' success paths and their validation.
    assert sum(statuses.values()) >= len(operations) * 5, statuses
    assert any(code < 300 for code in statuses) and 422 in statuses, statuses
