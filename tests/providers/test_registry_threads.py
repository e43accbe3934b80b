"""The provider registry fills itself once, even when many threads ask at the same moment."""

from __future__ import annotations

import threading
from typing import Any

import studio.providers as providers


def test_threads_asking_at_once_all_find_the_built_in_kinds(monkeypatch: Any) -> None:
    monkeypatch.setattr(providers, "_KINDS", {})
    monkeypatch.setattr(providers, "_loaded", False)
    start = threading.Barrier(8)
    found: list[str] = []
    errors: list[BaseException] = []

    def ask() -> None:
        start.wait()
        try:
            found.append(providers.provider_class("openai").kind)
        except BaseException as exc:  # the bug: "Unknown provider kind 'openai'. Known kinds: ."
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert found == ["openai"] * 8
