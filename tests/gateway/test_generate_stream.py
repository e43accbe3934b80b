"""``POST /v1/endpoints/{name}/generate`` with ``stream: true`` (issue 11 item 10).

Through a real gateway to a real streaming upstream that holds back the rest of its
answer until the test has seen the first token arrive: the test passes only if the
endpoint's tokens are relayed as the model writes them. No timing is asserted.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from tests.gateway.test_streaming import Setup, _events, gateway  # noqa: F401  (fixture)
from tests.providers.stream_fakes import FIRST, USAGE

BODY = {"inputs": {"question": "why?"}, "stream": True}


def _stream(setup: Setup, body: dict[str, Any], headers: dict[str, str]) -> Iterator[Any]:
    with (
        httpx.Client(base_url=setup.live.url, timeout=30) as client,
        client.stream("POST", "/v1/endpoints/answer/generate", json=body, headers=headers) as r,
    ):
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        yield from _events(r.iter_lines())


def test_generate_streams_tokens_before_the_model_has_finished(gateway: Setup) -> None:  # noqa: F811
    seen: list[Any] = []
    for event in _stream(gateway, BODY, gateway.app_headers):
        seen.append(event)
        if event != "[DONE]" and event["choices"] and event["choices"][0]["text"] == FIRST:
            assert not gateway.upstream.finished.is_set()  # the rest is still held back
            gateway.upstream.gate.set()
    assert seen[-1] == "[DONE]"
    chunks = seen[:-1]
    assert chunks[0]["object"] == "text_completion" and chunks[0]["model"] == "answer"
    assert "".join(c["choices"][0]["text"] for c in chunks if c["choices"]) == "Hello there"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    usage = chunks[-1]  # always sent: a whole /generate answer always has its usage
    assert usage["choices"] == [] and usage["usage"]["prompt_tokens"] == USAGE["prompt_tokens"]
    assert usage["usage"]["completion_tokens"] == USAGE["completion_tokens"]
    assert "why?" in gateway.upstream.bodies[0]["messages"][0]["content"]  # rendered template

    [row] = gateway.logged()  # the log has the streamed request with its endpoint and usage
    assert row.status_code == 200 and row.error is None and row.endpoint_id is not None
    assert (row.prompt_tokens, row.response_tokens) == (9, 3)


def test_generate_stream_keeps_the_checks_of_a_whole_call(gateway: Setup) -> None:  # noqa: F811
    gateway.upstream.gate.set()
    with httpx.Client(base_url=gateway.live.url, timeout=30) as client:
        post = client.post
        url = "/v1/endpoints/answer/generate"
        assert post(url, json=BODY).status_code == 401  # no key
        missing = post(url, json={"stream": True}, headers=gateway.app_headers)
        assert missing.status_code == 422 and "inputs.question" in missing.text
        bad = post(url, json={**BODY, "stream": "sometimes"}, headers=gateway.app_headers)
        assert bad.status_code == 422 and "stream" in bad.json()["error"]["message"]
        extra = post(url, json={**BODY, "model": "x"}, headers=gateway.app_headers)
        assert extra.status_code == 422 and "model" in extra.json()["error"]["message"]
    assert gateway.upstream.bodies == []  # none of them reached the model
