"""Gateway overhead and throughput on loopback, and the monitoring query over 1M rows.

    python bench/bench_gateway.py [--requests 2000] [--seconds 5] [--rounds 3]
                                  [--backend-ms 50] [--rows 1000000] [--profile OUT]
                                  [--skip-http] [--skip-stats]

Three processes share the machine, as the issue asks: a fake OpenAI-compatible
provider (raw ASGI on uvicorn), the gateway (one uvicorn worker, the real app,
SQLite in a temp STUDIO_HOME) and this load generator (a minimal keep-alive
HTTP/1.1 client on asyncio, so the client costs as little as possible).

1. Gateway CPU per request on a deployed endpoint: the gateway process's CPU time
   (user + system, from ``/proc/<pid>/stat``, so its request-log writer thread
   counts too) over ``--requests`` calls of ``POST /v1/endpoints/bench/generate``
   from one client, divided by the count (after the log writer has drained).
2. Added latency at 1 client: p50/p99 of the same call through the gateway minus
   p50/p99 of the same chat call sent straight to the fake provider.
3. Throughput with 50 concurrent clients through the gateway (one worker) as a
   share of the fake provider's own throughput at 50 clients, both measured in
   each round, one after the other. Here the provider takes ``--backend-ms`` to
   answer, as a model does (50 clients over a 50 ms backend: about 1000/s
   direct), so the figure says whether the gateway keeps up with a backend, not
   whether Python matches a bare uvicorn answering at once.
4. ``monitoring.request_stats`` over a window holding N logged requests (the raw
   rows and their per-minute rollup are written as the request-log writer does).

Each HTTP figure is measured ``--rounds`` times and the median is compared with
the target; the load average is printed alongside, since other work on the
machine moves these figures. The last lines are a table of figures vs targets.
``--profile OUT`` records the gateway with py-spy (raw folded stacks) during the
50-client rounds.

Targets (issue 11 item 15, 2-core box): <= 1 ms gateway CPU per request,
+p50 <= 1.5 ms and +p99 <= 4 ms at 1 client, >= 0.9 of the direct throughput at
50 clients, stats <= 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import CHAT_ANSWER  # noqa: E402

FAKE_PROVIDER = f"""
import asyncio, sys, uvicorn
BODY = {CHAT_ANSWER!r}
DELAY = float(sys.argv[2]) / 1000
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    if scope["path"].startswith("/slow/"):
        await asyncio.sleep(DELAY)
    await send({{"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(BODY)).encode())]}})
    await send({{"type": "http.response.body", "body": BODY}})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="error",
            access_log=False, http="httptools", loop="uvloop")
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


class Conn:
    """One keep-alive HTTP/1.1 connection (just enough HTTP for the benchmark)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head += f"content-length: {len(body)}\r\n\r\n"
        self.writer.write(head.encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        length = 0
        for line in lines[1:]:
            if line.lower().startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


TICKS_PER_S = os.sysconf("SC_CLK_TCK")
DRAIN_S = 0.6  # > the request log's flush interval: its writer's work is counted too


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of process ``pid`` (all its threads), from /proc."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S


async def sequential(
    port: int, path: str, body: bytes, headers: dict[str, str], n: int, pid: int | None = None
) -> tuple[list[float], float]:
    """Latencies (ms) of ``n`` calls in a row on one connection, and the CPU ms per call
    process ``pid`` spent on them (0 without a pid)."""
    conn = Conn(port)
    for _ in range(200):  # warm up
        await conn.post(path, body, headers)
    if pid is not None:
        await asyncio.sleep(DRAIN_S)
    cpu = cpu_seconds(pid)
    out = []
    for _ in range(n):
        started = time.perf_counter()
        status, _ = await conn.post(path, body, headers)
        out.append((time.perf_counter() - started) * 1000)
        assert status == 200, status
    if pid is not None:
        await asyncio.sleep(DRAIN_S)
    cpu = cpu_seconds(pid) - cpu
    conn.close()
    return out, cpu * 1000 / n


async def concurrent(
    port: int, path: str, body: bytes, headers: dict[str, str], clients: int, seconds: float
) -> tuple[int, int]:
    done = errors = 0
    stop = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done, errors
        conn = Conn(port)
        while time.perf_counter() < stop:
            status, _ = await conn.post(path, body, headers)
            done += 1
            errors += status != 200
        conn.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return done, errors


def setup_studio(fake_port: int) -> str:
    """Create the connections (the fake provider answering at once, and after
    ``--backend-ms`` under /slow), the app, the variants, their endpoints and a key;
    returns the key."""
    from studio.core.templates import PromptTemplate
    from studio.models.connections import ConnectionCreate, add_connection
    from studio.services import api_keys, endpoints
    from studio.services.apps import create_app
    from studio.services.variants import VariantConfig, create_variant
    from studio.store import session_scope

    with session_scope() as session:
        for name, prefix in (("fake", ""), ("slow", "/slow")):
            add_connection(
                session=session,
                data=ConnectionCreate(
                    name=name,
                    kind="openai",
                    base_url=f"http://127.0.0.1:{fake_port}{prefix}/v1",
                    options={"concurrency": 256, "max_retries": 0},
                ),
            )
        app = create_app(session=session, name="Bench")
        assert app.id is not None
        for variant, model in (("v", "fake/m"), ("slow", "slow/m")):
            create_variant(
                session=session,
                app_id=app.id,
                name=variant,
                config=VariantConfig(
                    model=model,
                    prompt=PromptTemplate(kind="completion", template="Say hi to {{name}}."),
                ),
            )
        endpoints.deploy(session=session, app=app.id, variant="v", name="bench")
        endpoints.deploy(session=session, app=app.id, variant="slow", name="bench-slow")
        return api_keys.create_key(session=session, app=app.id, name="bench").secret


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


class Figures:
    """The measured figures, printed as one table against the issue's targets."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []
        self.records: list[dict[str, object]] = []  # for --json (bench/run_all.py)

    def add(self, name: str, value: float, unit: str, target: float | None, higher: bool) -> None:
        if target is None:
            verdict, goal = "", ""
        else:
            ok = value >= target if higher else value <= target
            verdict = "ok" if ok else "MISSED"
            goal = f"{'>=' if higher else '<='} {target:g}"
        self.rows.append((name, f"{value:,.2f} {unit}", goal, verdict))
        self.records.append(
            {"metric": name, "value": value, "unit": unit, "target": goal, "detail": verdict}
        )

    def print(self) -> None:
        width = max(len(r[0]) for r in self.rows)
        print()
        print(f"{'figure':<{width}}  {'measured':>16}  {'target':>8}  result")
        print("-" * (width + 38))
        for name, value, goal, verdict in self.rows:
            print(f"{name:<{width}}  {value:>16}  {goal:>8}  {verdict}")
        print(f"load average now: {load_average()}")


def bench_http(args: argparse.Namespace, home: str, figures: Figures) -> None:
    fake_port, gw_port = free_port(), free_port()
    env = {**os.environ, "STUDIO_HOME": home}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", FAKE_PROVIDER, str(fake_port), str(args.backend_ms)], env=env
        )
    ]
    done = 0
    sent = 0
    try:
        wait_port(fake_port)
        key = setup_studio(fake_port)
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from studio.cli import main; main()",
                    "serve",
                    "--port",
                    str(gw_port),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
            )
        )
        wait_port(gw_port)
        direct_body = json.dumps(
            {"model": "m", "messages": [{"role": "user", "content": "Say hi to Ada."}]}
        ).encode()
        gw_body = json.dumps({"inputs": {"name": "Ada"}}).encode()
        auth = {"authorization": f"Bearer {key}"}
        gw_path = "/v1/endpoints/bench/generate"
        slow_path, slow_direct = "/v1/endpoints/bench-slow/generate", "/slow/v1/chat/completions"

        gw_pid = procs[-1].pid
        added50, added99, cpu_ms, ratios, rates = [], [], [], [], []
        print(f"1 client, {args.requests} requests per round (ms), load average {load_average()}:")
        for round_ in range(1, args.rounds + 1):
            direct, _ = asyncio.run(
                sequential(fake_port, "/v1/chat/completions", direct_body, {}, args.requests)
            )
            via, cpu = asyncio.run(
                sequential(gw_port, gw_path, gw_body, auth, args.requests, gw_pid)
            )
            sent += len(via) + 200
            d50, d99 = pct(direct, 0.50), pct(direct, 0.99)
            g50, g99 = pct(via, 0.50), pct(via, 0.99)
            added50.append(g50 - d50)
            added99.append(g99 - d99)
            cpu_ms.append(cpu)
            print(
                f"  round {round_}: direct p50 {d50:5.2f} p99 {d99:5.2f} | gateway p50 {g50:5.2f} "
                f"p99 {g99:5.2f} | added p50 {g50 - d50:5.2f} p99 {g99 - d99:5.2f} | "
                f"gateway CPU {cpu:4.2f} ms/request"
            )
        print(
            f"50 clients, {args.seconds:g} s per round, a backend answering in "
            f"{args.backend_ms:g} ms, load average {load_average()}:"
        )
        profiler = None
        if args.profile:
            profiler = subprocess.Popen(
                [
                    *("py-spy", "record", "--pid", str(gw_pid), "--format", "raw"),
                    *("--nonblocking", "--rate", "250", "-o", args.profile),
                ],
                stdout=subprocess.DEVNULL,
            )
            time.sleep(1.0)
        for round_ in range(1, args.rounds + 1):
            cpu = cpu_seconds(gw_pid)
            done, errors = asyncio.run(
                concurrent(gw_port, slow_path, gw_body, auth, 50, args.seconds)
            )
            time.sleep(DRAIN_S)
            cpu = (cpu_seconds(gw_pid) - cpu) * 1000 / max(1, done)
            ddone, _ = asyncio.run(
                concurrent(fake_port, slow_direct, direct_body, {}, 50, args.seconds)
            )
            sent += done
            rate, ceiling = done / args.seconds, ddone / args.seconds
            rates.append(rate)
            ratios.append(rate / ceiling)
            print(
                f"  round {round_}: gateway {rate:7.1f}/s ({errors} errors, CPU {cpu:4.2f} "
                f"ms/request) | direct {ceiling:7.1f}/s | ratio {rate / ceiling:4.2f} | "
                f"load average {load_average()}"
            )
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(60)
            print(f"  py-spy profile of the gateway: {args.profile}")
        figures.add(
            "gateway CPU per request, 1 client (median)", statistics.median(cpu_ms), "ms", 1, False
        )
        figures.add(
            "added latency p50, 1 client (median)", statistics.median(added50), "ms", 1.5, False
        )
        figures.add(
            "added latency p99, 1 client (median)", statistics.median(added99), "ms", 4, False
        )
        figures.add(
            "gateway / direct throughput, 50 clients (median)",
            statistics.median(ratios),
            "x",
            0.9,
            True,
        )
        figures.add(
            "  requests/s, 50 clients, 1 worker (median)",
            statistics.median(rates),
            "/s",
            None,
            True,
        )
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(15)
    from sqlmodel import func, select

    from studio.store import session_scope
    from studio.store.tables import RequestLog

    with session_scope() as session:
        logged = session.exec(select(func.count()).select_from(RequestLog)).one()
    print(f"request log: {logged} rows for {sent} requests served (clean shutdown drained)")


def bench_stats(rows: int, figures: Figures) -> None:
    from sqlalchemy import insert

    from studio.services.monitoring import (
        add_to_rollup,
        epoch_minute,
        latency_bin,
        request_stats,
    )
    from studio.store import session_scope
    from studio.store.tables import RequestLog, utcnow

    now = utcnow()
    rng = random.Random(7)
    started = time.perf_counter()
    batch = 50_000
    for first in range(0, rows, batch):
        values = []
        for i in range(first, min(rows, first + batch)):
            when = now - timedelta(seconds=rng.uniform(0, 24 * 3600))
            latency = rng.lognormvariate(3.0, 0.6)
            values.append(
                {
                    "request_id": f"b{i}",
                    "endpoint_id": None,
                    "route": "POST /v1/endpoints/bench/generate",
                    "model": "fake/m",
                    "status_code": 500 if rng.random() < 0.02 else 200,
                    "latency_ms": latency,
                    "model_latency_ms": latency - 1,
                    "overhead_ms": 1.0,
                    "prompt_tokens": 9,
                    "response_tokens": 2,
                    "cost": 0.00001,
                    "created_at": when,
                    "minute": epoch_minute(when),
                    "latency_bin": latency_bin(latency),
                }
            )
        with session_scope() as session:  # as the request-log writer does: rows + rollup
            session.execute(insert(RequestLog), values)
            add_to_rollup(session=session, rows=values)
    print(f"inserted {rows} log rows (and their rollup) in {time.perf_counter() - started:.1f} s")
    timings = []
    for _ in range(5):
        with session_scope() as session:
            t0 = time.perf_counter()
            stats = request_stats(session=session, since=now - timedelta(hours=24), until=now)
            timings.append((time.perf_counter() - t0) * 1000)
    print(
        f"monitoring stats over 24 h ({stats.totals.requests} requests, {len(stats.buckets)} "
        f"buckets, p50 {stats.totals.p50_ms} ms, p99 {stats.totals.p99_ms} ms): "
        f"median {statistics.median(timings):.0f} ms, best {min(timings):.0f} ms, "
        f"load average {load_average()}"
    )
    with session_scope() as session:
        t0 = time.perf_counter()
        request_stats(session=session, since=now - timedelta(hours=1), until=now)
        hour = (time.perf_counter() - t0) * 1000
    print(f"  last hour only: {hour:.0f} ms")
    figures.add(
        f"monitoring stats, 24 h, {rows:,} requests (median)",
        statistics.median(timings),
        "ms",
        300,
        False,
    )
    figures.add("monitoring stats, last hour", hour, "ms", None, False)


def main() -> None:
    from studio.core.identity import OPERATOR, set_actor

    set_actor(OPERATOR)  # the bench sets up the studio as the CLI does (an administrator)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each HTTP measurement")
    parser.add_argument(
        "--backend-ms",
        type=float,
        default=50.0,
        help="how long the backend takes to answer in the 50-client rounds (a model is slow: "
        "at 0 ms no Python gateway keeps up with a bare uvicorn)",
    )
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--profile", metavar="OUT", help="py-spy the gateway at 50 clients")
    parser.add_argument("--skip-stats", action="store_true")
    parser.add_argument("--json", action="store_true", help="end with the figures as JSON")
    args = parser.parse_args()
    if args.profile and shutil.which("py-spy") is None:
        parser.error("--profile needs py-spy on PATH: `pip install py-spy`, then run this again.")
    print(f"load average at start: {load_average()} ({os.cpu_count()} cores)")
    figures = Figures()
    with tempfile.TemporaryDirectory() as home:
        os.environ["STUDIO_HOME"] = home
        os.environ.pop("DATABASE_URL", None)
        if not args.skip_http:
            bench_http(args, home, figures)
    if not args.skip_stats:
        with tempfile.TemporaryDirectory() as home:
            os.environ["STUDIO_HOME"] = home
            from studio.core.settings import reset_settings
            from studio.store import reset_engine

            reset_settings()
            reset_engine()
            bench_stats(args.rows, figures)
    figures.print()
    if args.json:
        print(json.dumps({"machine": f"{os.cpu_count()} CPUs", "results": figures.records}))


if __name__ == "__main__":
    main()
