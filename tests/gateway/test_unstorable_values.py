"""Values the database cannot hold (a NUL character, a huge number) are the client's error:
a sentence and a 4xx on SQLite and PostgreSQL alike, never a 500 (the fuzz test found
`?endpoint=%00` answering 500 on PostgreSQL)."""

from __future__ import annotations

import pytest

from tests.gateway.conftest import Deployed


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/usage/by-day?endpoint=%00",
        "/api/v1/monitoring/stats?endpoint=a%00b",
        "/api/v1/monitoring/requests?endpoint=%00",
        "/api/v1/monitoring/requests/%00",
        "/api/v1/evaluations?app=%00",
    ],
)
def test_a_nul_character_in_a_lookup_is_a_client_error_with_a_sentence(
    deployed: Deployed, url: str
) -> None:
    response = deployed.client.get(url, headers=deployed.headers)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]["message"].endswith(".")
