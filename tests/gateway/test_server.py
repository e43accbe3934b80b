"""The embedded gateway starts once per process, and not when the port is taken."""

from __future__ import annotations

import socket

import httpx
import pytest

from studio.core.settings import reset_settings
from studio.gateway import server


def test_embedded_gateway_starts_once(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("STUDIO_GATEWAY_PORT", str(port))
    reset_settings()
    url = server.ensure_embedded_gateway()
    assert url == f"http://127.0.0.1:{port}"
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{url}/v1/models").status_code == 401
    assert server.ensure_embedded_gateway() == url  # already running: nothing new
    embedded = server._embedded
    assert embedded is not None
    embedded[0].should_exit = True
    embedded[1].join(10)
    server._embedded = None


def test_an_occupied_port_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        monkeypatch.setenv("STUDIO_GATEWAY_PORT", str(port))
        reset_settings()
        assert server.ensure_embedded_gateway() == f"http://127.0.0.1:{port}"
        assert server._embedded is None
