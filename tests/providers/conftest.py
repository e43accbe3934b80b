"""Fixtures for provider tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .fakes import FakeServer


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    """A real HTTP server on 127.0.0.1, stopped after the test."""
    server = FakeServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
