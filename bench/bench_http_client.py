"""Provider HTTP clients side by side: the studio's pool, httpx tuned, aiohttp.

    python -m bench.bench_http_client [--calls 1500] [--seconds 2] [--rounds 3]
                                      [--loop uvloop|asyncio] [--hand-written FILE] [--json]

Issue 10 asks whether a well-kept library can replace the hand-written HTTP/1.1
client in ``studio/providers/http_pool.py`` without giving up the gateway's
figures. A minimal backend (a raw asyncio protocol on uvloop answering every POST
with a fixed chat-completion JSON body) runs in its own process, so the figures
are the client's CPU plus the loopback round trip. Every client is measured in
every round, in this one process, on the event loop the gateway runs (uvloop by
default), and each call does what a provider does: encode a JSON body, POST it,
read the whole answer, decode the JSON.

Clients:

* ``raw socket (floor)``: a bare asyncio connection writing one request and reading
  one answer by its Content-Length: what loopback and the backend cost.
* ``hand-written pool``: with ``--hand-written FILE``, another ``ConnectionPool``
  loaded from that file (an older version, or a library behind the same interface).
* ``studio pool``: ``studio.providers.http_pool.ConnectionPool`` as it is now.
* ``httpx default``: ``httpx.AsyncClient()``.
* ``httpx tuned``: HTTP/1.1 only, ``trust_env=False``, a reused client, generous
  ``limits``, ``AsyncHTTPTransport(retries=0)``.
* ``aiohttp``: a reused ``ClientSession`` on a ``TCPConnector(limit=64)``.
* ``provider via pool`` / ``provider via httpx``: ``HTTPProvider.request_json`` on the
  two paths ``http.py`` picks between, retries and semaphore included.

Figures: p50 and p99 of one call at a time, and calls per second with 50 calls in
flight. Each is the median over ``--rounds`` rounds; each ratio is the median of
the per-round ratios to the baseline (the hand-written pool when given, else the
studio pool) measured in the same round. The issue's bar for a library: within
~20% of the hand-written client, or the gateway's added latency p50 <= 1.5 ms held
(``bench/bench_gateway.py`` measures that).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import CHAT_ANSWER, Row, report  # noqa: E402

CHAT_REQUEST = {
    "model": "m",
    "messages": [{"role": "user", "content": "Say hi to Ada."}],
    "max_tokens": 16,
}

# A backend that costs as little as possible: it reads a request head and a
# Content-Length body, and answers with a canned response, keep-alive.
BACKEND = f"""
import asyncio, sys
BODY = {CHAT_ANSWER!r}
ANSWER = (b"HTTP/1.1 200 OK\\r\\ncontent-type: application/json\\r\\n"
          b"content-length: %d\\r\\n\\r\\n" % len(BODY)) + BODY

class Serve(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""
    def data_received(self, data):
        self.buffer += data
        while True:
            end = self.buffer.find(b"\\r\\n\\r\\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            at = head.find(b"content-length:")
            length = int(head[at + 15:].split(b"\\r\\n", 1)[0]) if at >= 0 else 0
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length:]
            self.transport.write(ANSWER)

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Serve, "127.0.0.1", int(sys.argv[1]), backlog=1024)
    print("ready", flush=True)
    await server.serve_forever()

try:
    import uvloop
    uvloop.run(main())
except ImportError:
    asyncio.run(main())
"""

Call = Callable[[], Awaitable[Any]]
FLOOR = "raw socket (floor)"
HAND_WRITTEN = "hand-written pool"
STUDIO_POOL = "studio pool"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def load_module(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location("hand_written_pool", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class RawConn:
    """The floor: one connection, a fixed request, an answer read by its Content-Length."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def call(self) -> Any:
        if self.streams is None:
            self.streams = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self.streams
        body = json.dumps(CHAT_REQUEST).encode()
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
            b"content-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body
        )
        head = await reader.readuntil(b"\r\n\r\n")
        at = head.lower().find(b"content-length:")
        length = int(head[at + 15 :].split(b"\r\n", 1)[0])
        return json.loads(await reader.readexactly(length))

    async def aclose(self) -> None:
        if self.streams is not None:
            self.streams[1].close()


class Client:
    """One way of calling the backend: ``make()`` builds it on the running loop."""

    def __init__(self, name: str, port: int, hand_written: Path | None) -> None:
        self.name = name
        self.port = port
        self.hand_written = hand_written
        self.url = f"http://127.0.0.1:{port}/v1/chat/completions"
        self._close: list[Callable[[], Awaitable[Any]]] = []

    async def make(self) -> Call:
        port, url = self.port, self.url
        if self.name == FLOOR:
            conns: list[RawConn] = []

            async def raw() -> Any:
                conn = conns.pop() if conns else RawConn(port)
                try:
                    return await conn.call()
                finally:
                    conns.append(conn)

            self._close.append(lambda: asyncio.gather(*(c.aclose() for c in conns)))
            return raw
        if self.name in (HAND_WRITTEN, STUDIO_POOL):
            if self.name == HAND_WRITTEN:
                assert self.hand_written is not None
                pool_class = load_module(self.hand_written).ConnectionPool
            else:
                from studio.providers.http_pool import ConnectionPool as pool_class
            pool = pool_class("127.0.0.1", port, max_idle=64)
            self._close.append(pool.aclose)

            async def via_pool() -> Any:
                body = json.dumps(CHAT_REQUEST, separators=(",", ":")).encode()
                response = await pool.request(
                    "POST",
                    "/v1/chat/completions",
                    body=body,
                    headers={"Content-Type": "application/json"},
                    timeout_s=30,
                )
                return response.json()

            return via_pool
        if self.name.startswith("httpx"):
            import httpx

            if self.name == "httpx default":
                client = httpx.AsyncClient(timeout=30)
            else:
                limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
                client = httpx.AsyncClient(
                    timeout=30,
                    trust_env=False,
                    http1=True,
                    http2=False,
                    follow_redirects=False,
                    transport=httpx.AsyncHTTPTransport(retries=0, limits=limits, http2=False),
                )
            self._close.append(client.aclose)

            async def via_httpx() -> Any:
                response = await client.post(url, json=CHAT_REQUEST)
                return response.json()

            return via_httpx
        if self.name == "aiohttp":
            import aiohttp

            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64),
                timeout=aiohttp.ClientTimeout(total=30),
                trust_env=False,
            )
            self._close.append(session.close)

            async def via_aiohttp() -> Any:
                async with session.post(url, json=CHAT_REQUEST) as response:
                    return json.loads(await response.read())

            return via_aiohttp
        if self.name.startswith("provider via"):
            import httpx

            from studio.providers.openai import OpenAIProvider

            transport = httpx.AsyncHTTPTransport() if self.name.endswith("httpx") else None
            provider = OpenAIProvider(
                name="bench",
                base_url=f"http://127.0.0.1:{port}/v1",
                options={"concurrency": 64, "max_retries": 0},
                transport=transport,
            )
            self._close.append(provider.aclose)

            async def via_provider() -> Any:
                return await provider.request_json(
                    "POST", "/chat/completions", json_body=CHAT_REQUEST
                )

            return via_provider
        raise ValueError(self.name)

    async def aclose(self) -> None:
        for close in self._close:
            await close()
        self._close.clear()


async def sequential(call: Call, n: int) -> list[float]:
    for _ in range(min(200, n)):  # warm up: connections open, code paths hot
        await call()
    out = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        out.append((time.perf_counter() - started) * 1000)
    return out


async def concurrent(call: Call, clients: int, seconds: float) -> float:
    done = 0
    await asyncio.gather(*(call() for _ in range(clients)))  # open the connections
    started = time.perf_counter()
    stop = started + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await call()
            done += 1

    await asyncio.gather(*(worker() for _ in range(clients)))
    return done / (time.perf_counter() - started)


Results = dict[str, dict[str, list[float]]]


async def measure(names: list[str], port: int, args: argparse.Namespace) -> Results:
    results: Results = {n: {"p50": [], "p99": [], "rps": []} for n in names}
    for round_no in range(args.rounds):
        order = names if round_no % 2 == 0 else list(reversed(names))  # no fixed position
        for name in order:
            client = Client(name, port, args.hand_written)
            call = await client.make()
            try:
                times = await sequential(call, args.calls)
                rps = await concurrent(call, args.concurrency, args.seconds)
            finally:
                await client.aclose()
            results[name]["p50"].append(statistics.median(times))
            results[name]["p99"].append(pct(times, 0.99))
            results[name]["rps"].append(rps)
            print(
                f"round {round_no + 1} {name:<22} p50 {statistics.median(times):.3f} ms  "
                f"p99 {pct(times, 0.99):.3f} ms  {rps:,.0f} calls/s",
                file=sys.stderr,
                flush=True,
            )
    return results


def rows_from(results: Results, args: argparse.Namespace, base_name: str) -> list[Row]:
    base = results[base_name]

    def ratio(name: str, key: str) -> float:
        pairs = zip(results[name][key], base[key], strict=True)
        return statistics.median(a / b for a, b in pairs)

    rows = []
    for name, figures in results.items():
        p50, p99, rps = (statistics.median(figures[k]) for k in ("p50", "p99", "rps"))
        judged = name not in (base_name, FLOOR)
        spread = ", ".join(f"{v:.3f}" for v in figures["p50"])
        rows.append(
            Row(
                f"{name}: p50, 1 call at a time",
                p50,
                "ms",
                f"{ratio(name, 'p50'):.2f}x {base_name}; rounds {spread}",
                f"<= 1.2x {base_name}" if judged else "",
            )
        )
        rows.append(Row(f"{name}: p99, 1 call at a time", p99, "ms", f"{ratio(name, 'p99'):.2f}x"))
        rows.append(
            Row(
                f"{name}: calls/s, {args.concurrency} in flight",
                rps,
                "/s",
                f"{ratio(name, 'rps'):.2f}x {base_name}",
                f">= 0.8x {base_name}" if judged else "",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1500, help="sequential calls per round")
    parser.add_argument("--seconds", type=float, default=2.0, help="concurrent phase length")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument(
        "--hand-written", type=Path, help="a file holding the hand-written ConnectionPool"
    )
    parser.add_argument("--only", nargs="*", help="client names to measure (and the baseline)")
    parser.add_argument("--json", action="store_true", help="print JSON for bench/run_all.py")
    args = parser.parse_args()

    base_name = HAND_WRITTEN if args.hand_written else STUDIO_POOL
    names = [
        FLOOR,
        *([HAND_WRITTEN] if args.hand_written else []),
        STUDIO_POOL,
        "httpx default",
        "httpx tuned",
        "aiohttp",
        "provider via pool",
        "provider via httpx",
    ]
    if args.only:
        names = [n for n in names if n in args.only or n == base_name]
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        print("aiohttp is not installed: measuring without it", file=sys.stderr)
        names = [n for n in names if n != "aiohttp"]

    port = free_port()
    backend = subprocess.Popen(
        [sys.executable, "-c", BACKEND, str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert backend.stdout is not None
        if backend.stdout.readline().strip() != "ready":
            raise SystemExit("the backend did not start")
        if args.loop == "uvloop":
            import uvloop

            results = uvloop.run(measure(names, port, args))
        else:
            results = asyncio.run(measure(names, port, args))
    finally:
        backend.terminate()
        backend.wait(10)
    title = f"Provider HTTP clients ({args.loop}, medians of {args.rounds} rounds)"
    report(title, rows_from(results, args, base_name), args.json)


if __name__ == "__main__":
    main()
