"""Calls to a local model queue in asyncio for its turn: a call that times out while
queued never runs, and queued calls park no thread of the default executor.

The "model" is a fake slow object plugged in through ``load_model``'s loader, so no
weights are needed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import pytest

from studio.core.errors import ProviderTimeoutError
from studio.core.schemas import CompletionRequest, CompletionResponse, ModelType
from studio.providers.local import (
    LoadedModel,
    LocalProvider,
    clear_loaded_models,
    load_model,
)

KEY = ("fake-local", "shared")


class SlowModel:
    """Generates by waiting for ``release`` (or ``seconds``); records what ran and overlap."""

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.release = threading.Event()
        self.started = threading.Event()
        self.active = 0
        self.peak = 0
        self._lock = threading.Lock()

    def generate(self, prompt: str, seconds: float | None) -> str:
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        self.started.set()
        try:
            if seconds is None:
                self.release.wait(30)
            else:
                threading.Event().wait(seconds)
            with self._lock:
                self.ran.append(prompt)
            return f"done: {prompt}"
        finally:
            with self._lock:
                self.active -= 1


class FakeLocalProvider(LocalProvider):
    kind = "fake-local"
    model_types: ClassVar[frozenset[ModelType]] = frozenset({ModelType.COMPLETION})
    model: ClassVar[SlowModel]

    def _key(self) -> tuple[str, str]:
        return KEY

    def _load(self) -> LoadedModel:
        return load_model(KEY, lambda: (FakeLocalProvider.model, {}))

    def _label(self) -> tuple[str, str, int | None]:
        return "slow", "a fake slow model", None

    async def complete(self, model: str, request: CompletionRequest) -> CompletionResponse:
        prompt = request.prompts[0]
        seconds = None if prompt.startswith("hold") else 0.01

        def run(entry: LoadedModel) -> CompletionResponse:
            text = entry.model.generate(prompt, seconds)
            return CompletionResponse(
                completions=[(prompt, [text])],
                finish_reason="stop",
                prompt_tokens=1,
                response_tokens=1,
            )

        return await self._run(run)


@pytest.fixture
def slow() -> Iterator[SlowModel]:
    clear_loaded_models()
    FakeLocalProvider.model = SlowModel()
    try:
        yield FakeLocalProvider.model
    finally:
        FakeLocalProvider.model.release.set()
        clear_loaded_models()


def local(timeout_s: float = 30) -> FakeLocalProvider:
    return FakeLocalProvider(name="local", options={"timeout_s": timeout_s})


def ask(prompt: str) -> CompletionRequest:
    return CompletionRequest(prompts=[prompt])


async def _until(event: threading.Event) -> None:
    assert await asyncio.to_thread(event.wait, 30)


async def test_a_call_that_times_out_while_queued_never_runs(slow: SlowModel) -> None:
    holder = asyncio.ensure_future(local().complete("m", ask("hold the model")))
    await _until(slow.started)
    with pytest.raises(ProviderTimeoutError):
        await local(timeout_s=0.1).complete("m", ask("gave up"))
    slow.release.set()
    answer = await holder
    assert answer.completions[0][1] == ["done: hold the model"]
    after = await local().complete("m", ask("next"))  # the model's next turn comes after
    assert after.completions[0][1] == ["done: next"]
    assert slow.ran == ["hold the model", "next"]  # the call that gave up never ran


async def test_queued_calls_park_no_default_executor_thread(slow: SlowModel) -> None:
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(max_workers=2))
    await local().complete("m", ask("load"))  # the weights are loaded now
    holder = asyncio.ensure_future(local().complete("m", ask("hold the model")))
    await _until(slow.started)
    waiting = [asyncio.ensure_future(local().complete("m", ask(f"row {i}"))) for i in range(8)]
    await asyncio.sleep(0)
    # Both default-executor threads are still free for other work while 9 calls wait
    # for (or hold) the model; with threads parked on the model's lock this would hang.
    assert await asyncio.wait_for(loop.run_in_executor(None, lambda: 2 + 2), 10) == 4
    assert await asyncio.wait_for(loop.run_in_executor(None, lambda: 3 + 3), 10) == 6
    slow.release.set()
    await holder
    answers = await asyncio.gather(*waiting)
    assert [a.completions[0][1] for a in answers] == [[f"done: row {i}"] for i in range(8)]
    assert slow.peak == 1  # one call at a time on the model


def test_two_event_loops_in_two_threads_take_turns_on_one_model(slow: SlowModel) -> None:
    errors: list[BaseException] = []

    def drive(tag: str) -> None:
        async def main() -> Any:
            calls = [local().complete("m", ask(f"{tag}{i}")) for i in range(5)]
            return await asyncio.gather(*calls)

        try:
            asyncio.run(main())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=drive, args=(t,)) for t in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(slow.ran) == sorted([f"{t}{i}" for t in "ab" for i in range(5)])
    assert slow.peak == 1
