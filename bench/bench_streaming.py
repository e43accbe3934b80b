"""Time to first token of a streamed answer: through the gateway, and straight from the model.

    python bench/bench_streaming.py [--requests 60] [--first-ms 30] [--token-ms 10]
                                    [--tokens 20] [--json]

Three processes: a fake OpenAI-compatible model server (raw ASGI on uvicorn) that
answers ``stream: true`` with its first token after ``--first-ms`` and then
``--tokens`` more, one every ``--token-ms``; the gateway (the real app, one uvicorn
worker, SQLite in a throwaway STUDIO_HOME) with an endpoint on that model; and this
client, which sends the same chat request ``--requests`` times one after the other,
alternately straight to the fake model and to the endpoint through the gateway's
``/v1/chat/completions``, and times when the first token's bytes arrive and when the
answer is whole. Streaming is real when the gateway's first token comes about
``--first-ms`` after the request, not after the whole answer
(``--first-ms + tokens x token-ms``). Nothing is asserted; the figures are printed
beside the direct baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import Row, report  # noqa: E402

FAKE_MODEL = """
import asyncio, json, sys, uvicorn
FIRST, TOKEN, TOKENS = float(sys.argv[2]) / 1000, float(sys.argv[3]) / 1000, int(sys.argv[4])
def event(obj):
    return ("data: " + json.dumps(obj) + "\\n\\n").encode()
def delta(text, finish=None):
    choice = {"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}
    return event({"id": "x", "object": "chat.completion.chunk", "choices": [choice]})
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream")]})
    await asyncio.sleep(FIRST)  # the model reads the prompt
    await send({"type": "http.response.body", "body": delta("Hi"), "more_body": True})
    for _ in range(TOKENS):
        await asyncio.sleep(TOKEN)
        await send({"type": "http.response.body", "body": delta(" there"), "more_body": True})
    usage = {"prompt_tokens": 9, "completion_tokens": TOKENS + 1, "total_tokens": TOKENS + 10}
    end = delta(None, "stop") + event({"id": "x", "choices": [], "usage": usage})
    await send({"type": "http.response.body", "body": end + b"data: [DONE]\\n\\n"})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="error", access_log=False)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def setup_studio(fake_port: int) -> str:
    """A connection to the fake model, an endpoint on it, and an app key (returned)."""
    from studio.core.templates import PromptTemplate
    from studio.models.connections import ConnectionCreate, add_connection
    from studio.services import api_keys, endpoints
    from studio.services.apps import create_app
    from studio.services.variants import VariantConfig, create_variant
    from studio.store import session_scope

    with session_scope() as session:
        add_connection(
            session=session,
            data=ConnectionCreate(
                name="fake",
                kind="openai",
                base_url=f"http://127.0.0.1:{fake_port}/v1",
                options={"max_retries": 0},
            ),
        )
        app = create_app(session=session, name="Bench")
        assert app.id is not None
        create_variant(
            session=session,
            app_id=app.id,
            name="v",
            config=VariantConfig(
                model="fake/m", prompt=PromptTemplate.completion("Say hi to {{name}}.")
            ),
        )
        endpoints.deploy(session=session, app=app.id, variant="v", name="bench")
        return api_keys.create_key(session=session, app=app.id, name="bench").secret


async def timed_stream(
    client: httpx.AsyncClient, url: str, body: dict[str, object], headers: dict[str, str]
) -> tuple[float, float]:
    """(ms to the first token's bytes, ms to the whole answer) of one streamed call."""
    started = time.perf_counter()
    first: float | None = None
    async with client.stream("POST", url, json=body, headers=headers) as response:
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}: {await response.aread()!r}")
        async for line in response.aiter_lines():
            if first is None and line.startswith("data: ") and '"content": "Hi"' in line:
                first = time.perf_counter()
    done = time.perf_counter()
    if first is None:
        raise SystemExit(f"{url} streamed no token")
    return (first - started) * 1000, (done - started) * 1000


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(
    args: argparse.Namespace, fake_port: int, gw_port: int, key: str
) -> dict[str, list[float]]:
    message = [{"role": "user", "content": "Say hi to Ada."}]
    direct = {"model": "m", "messages": message, "stream": True}
    through = {"model": "bench", "inputs": {"name": "Ada"}, "messages": [], "stream": True}
    figures: dict[str, list[float]] = {"direct": [], "gateway": [], "direct_all": [], "gw_all": []}
    auth = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(timeout=30) as client:
        for warm in range(3):  # connections, the endpoint cache, imports
            await timed_stream(
                client, f"http://127.0.0.1:{fake_port}/v1/chat/completions", direct, {}
            )
            await timed_stream(
                client, f"http://127.0.0.1:{gw_port}/v1/chat/completions", through, auth
            )
            del warm
        for _ in range(args.requests):
            first, whole = await timed_stream(
                client, f"http://127.0.0.1:{fake_port}/v1/chat/completions", direct, {}
            )
            figures["direct"].append(first)
            figures["direct_all"].append(whole)
            first, whole = await timed_stream(
                client, f"http://127.0.0.1:{gw_port}/v1/chat/completions", through, auth
            )
            figures["gateway"].append(first)
            figures["gw_all"].append(whole)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=60, help="calls each way")
    parser.add_argument("--first-ms", type=float, default=30.0, help="the model's first token")
    parser.add_argument("--token-ms", type=float, default=10.0, help="between later tokens")
    parser.add_argument("--tokens", type=int, default=20, help="tokens after the first")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    home = os.environ.get("STUDIO_HOME") or tempfile.mkdtemp(prefix="bench-stream-")
    os.environ["STUDIO_HOME"] = home
    os.environ.pop("DATABASE_URL", None)  # a throwaway SQLite database, never a shared one
    fake_port, gw_port = free_port(), free_port()
    env = {**os.environ, "STUDIO_HOME": home}
    fake = [str(fake_port), str(args.first_ms), str(args.token_ms), str(args.tokens)]
    procs = [subprocess.Popen([sys.executable, "-c", FAKE_MODEL, *fake], env=env)]
    try:
        wait_port(fake_port)
        key = setup_studio(fake_port)
        serve = ["-c", "from studio.cli import main; main()", "serve", "--port", str(gw_port)]
        procs.append(subprocess.Popen([sys.executable, *serve], env=env, stdout=subprocess.DEVNULL))
        wait_port(gw_port)
        figures = asyncio.run(measure(args, fake_port, gw_port, key))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)

    whole_ms = args.first_ms + args.tokens * args.token_ms
    detail = (
        f"{args.requests} calls; model: first token {args.first_ms:g} ms, whole {whole_ms:g} ms"
    )
    d, g = figures["direct"], figures["gateway"]
    rows = [
        Row("first token, direct p50", pct(d, 0.5), "ms", detail, "baseline"),
        Row("first token, direct p95", pct(d, 0.95), "ms", "", "baseline"),
        Row("first token, through gateway p50", pct(g, 0.5), "ms", "", "~ direct"),
        Row("first token, through gateway p95", pct(g, 0.95), "ms", "", "~ direct"),
        Row("first token, added by gateway p50", pct(g, 0.5) - pct(d, 0.5), "ms", "", ""),
        Row("whole answer, direct p50", pct(figures["direct_all"], 0.5), "ms", "", ""),
        Row("whole answer, through gateway p50", pct(figures["gw_all"], 0.5), "ms", "", ""),
    ]
    report("Streaming: time to first token", rows, args.json)


if __name__ == "__main__":
    main()
