"""An LLM-judge evaluation at concurrency 32 against a 200 ms judge, beside a bare client.

    python bench/bench_eval_judge.py            # an aligned table
    python bench/bench_eval_judge.py --json     # the same figures as JSON
    python bench/bench_eval_judge.py --rows 640 --concurrency 32 --latency 0.2

A local fake OpenAI-compatible server answers every call after 200 ms; its chat
completions reply with a judge verdict (``{"verdict": "pass", "score": 0.9, ...}``),
its completions with an answer. A child process with a throwaway STUDIO_HOME on
SQLite makes a run of ``--rows`` rows through a real ``openai`` connection (the
outputs to judge), then an evaluation of it with the ``llm_judge`` evaluator on
that connection. The figure is the evaluation's wall time, executed as the CLI and
a job execute it (``evaluate_sync``, which stores every score), at ``--concurrency``
judge calls at a time. Ideal: rows / (concurrency / latency), e.g. 640 / 160 per s
= 4.0 s. The baseline, measured in the same session against the same server, is a
bare ``httpx.AsyncClient`` making the same number of judge calls (same message
sizes) at the same concurrency and reading each verdict. Peak memory is each
child's maximum resident set size (interpreter and libraries included).
Target (issue 13): evaluation efficiency >= 0.9 of the ideal. Figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import Row, report, run_child  # noqa: E402
from tests.providers.fakes import FaultyOpenAIServer, chat_body  # noqa: E402

TEMPLATE = "Write a short marketing email about {{event}} for {{demographic}}."
RUBRIC = "A short, polite marketing email that names the event and the audience."
VERDICT = json.dumps({"verdict": "pass", "score": 0.9, "reason": "Names the event, polite."})


class JudgeServer(FaultyOpenAIServer):
    """The fake server, whose chat completions are judge verdicts."""

    def _answer(self, path: str, body: Any) -> tuple[str | None, dict[str, Any]]:
        prompt, answer = super()._answer(path, body)
        if path.endswith("/chat/completions") and prompt is not None:
            usage = {"prompt_tokens": 120, "completion_tokens": 20, "total_tokens": 140}
            answer = {**chat_body(VERDICT, usage=usage), "model": answer.get("model")}
        return prompt, answer


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- child processes ------------------------------------------------------------------


def _setup(url: str, rows: int, concurrency: int) -> None:
    """A connection, a warm-up run and evaluation (one call per worker) and the measured
    ones; runs both runs; prints the two evaluation ids as JSON."""
    from studio.core.templates import PromptTemplate
    from studio.models.connections import ConnectionCreate, add_connection
    from studio.services.apps import create_app
    from studio.services.datasets import upload_dataset
    from studio.services.evaluations import EvaluatorConfig, create_evaluation
    from studio.services.runs import RunConfig, create_run, run_sync
    from studio.store import session_scope

    judge = EvaluatorConfig(
        id="llm_judge", key="judge", options={"rubric": RUBRIC, "model": "bench/fake-chat"}
    )
    with session_scope() as session:
        add_connection(
            session=session,
            data=ConnectionCreate(
                name="bench", kind="openai", base_url=url, options={"timeout_s": 30}
            ),
        )
        app = create_app(session=session, name="Bench")
        assert app.id is not None
        app_id = app.id
    ids = {}
    for name, n in (("warm", concurrency), ("main", rows)):
        csv = "event,demographic\n" + "".join(f"Launch {i},group {i % 17}\n" for i in range(n))
        with session_scope() as session:
            version = upload_dataset(
                session=session, app_id=app_id, name=name, data=csv.encode(), filename="e.csv"
            )
            config = RunConfig(
                model="bench/fake-chat",
                prompt=PromptTemplate(kind="completion", template=TEMPLATE),
                parameters={"max_tokens": 64},
                concurrency=concurrency,
                use_cache=False,
            )
            run = create_run(
                session=session, app_id=app_id, dataset_version_id=version.id or 0, config=config
            )
            session.flush()
            run_id = run.id or 0
        progress = run_sync(run_id=run_id)
        if progress.errors or progress.done != n:
            raise SystemExit(f"the {name} run did not answer every row: {progress}")
        with session_scope() as session:
            evaluation = create_evaluation(
                session=session, app_id=app_id, run_ids=[run_id], evaluators=[judge], name=name
            )
            ids[name] = evaluation.id
    print(json.dumps(ids))


def _evaluate(warm_id: int, main_id: int, concurrency: int) -> None:
    """Execute the warm-up evaluation, then time the measured one; print figures as JSON."""
    from studio.services.evaluations import evaluate_sync
    from studio.store import get_engine

    get_engine()
    evaluate_sync(evaluation_id=warm_id, concurrency=concurrency)
    cpu0 = time.process_time()
    started = time.perf_counter()
    card = evaluate_sync(evaluation_id=main_id, concurrency=concurrency)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    line = card.line("A", "judge")
    out = {
        "wall_s": wall,
        "cpu_s": cpu,
        "judged": line.judged,
        "passed": line.passed,
        "errors": line.errors,
        "maxrss_mb": _maxrss_mb(),
    }
    print(json.dumps(out))


def _messages(i: int) -> list[dict[str, str]]:
    """Judge messages of the same shape and size as the llm_judge evaluator sends."""
    prompt = f"Write a short marketing email about Launch {i} for group {i % 17}."
    user = (
        f"Rubric:\n{RUBRIC}\n\nInput given to the assistant:\n{prompt}\n\n"
        f"Output to grade:\nanswer to: {prompt}\n\n"
        'Reply with {"verdict": ..., "score": ..., "reason": ...} only.'
    )
    system = (
        "You are a strict grader. Read the rubric, the input, the reference if given and "
        "the output; reply with one JSON object: verdict pass or fail, a score from 0 to 1 "
        "and a one-sentence reason."
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def _bare(url: str, rows: int, concurrency: int) -> None:
    """The baseline: the same judge calls from a bare httpx.AsyncClient."""
    import httpx

    async def main() -> dict[str, Any]:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
            gate = asyncio.Semaphore(concurrency)
            verdicts: list[str] = []

            async def one(i: int) -> None:
                async with gate:
                    body = {"model": "fake-chat", "messages": _messages(i), "max_tokens": 160}
                    response = await client.post("/chat/completions", json=body)
                    response.raise_for_status()
                    content = response.json()["choices"][0]["message"]["content"]
                    verdicts.append(json.loads(content)["verdict"])

            await asyncio.gather(*(one(i) for i in range(concurrency)))  # warm up
            verdicts.clear()
            cpu0 = time.process_time()
            started = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(rows)))
            wall = time.perf_counter() - started
            cpu = time.process_time() - cpu0
        return {
            "wall_s": wall,
            "cpu_s": cpu,
            "judged": len(verdicts),
            "errors": 0,
            "maxrss_mb": _maxrss_mb(),
        }

    print(json.dumps(asyncio.run(main())))


# -- the parent -----------------------------------------------------------------------


def measure_eval(url: str, rows: int, concurrency: int, server: JudgeServer) -> dict[str, Any]:
    home = tempfile.mkdtemp(prefix="studio-bench-judge-")
    try:
        ids = json.loads(
            run_child(__file__, ["--child-setup", url, str(rows), str(concurrency)], home)
        )
        server.reset_counts()
        args = ["--child-eval", str(ids["warm"]), str(ids["main"]), str(concurrency)]
        result: dict[str, Any] = json.loads(run_child(__file__, args, home))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if result["judged"] != rows or result["errors"]:
        raise SystemExit(f"the evaluation of {rows} rows did not score every row: {result}")
    return result


def measure_bare(url: str, rows: int, concurrency: int, server: JudgeServer) -> dict[str, Any]:
    home = tempfile.mkdtemp(prefix="studio-bench-judge-")
    try:
        server.reset_counts()
        args = ["--child-bare", url, str(rows), str(concurrency)]
        return dict(json.loads(run_child(__file__, args, home)))
    finally:
        shutil.rmtree(home, ignore_errors=True)


def bench(rows: int, latency: float, concurrency: int) -> list[Row]:
    server = JudgeServer(latency_s=latency).start()
    try:
        bare = measure_bare(server.url, rows, concurrency, server)
        bare_peak = server.peak_in_flight
        judged = measure_eval(server.url, rows, concurrency, server)
        eval_peak = server.peak_in_flight
    finally:
        server.stop()
    ideal = concurrency / latency  # calls per second the wire allows at this concurrency
    what = f"{rows} judge calls, concurrency {concurrency}, server latency {latency * 1000:g} ms"
    bare_rate, eval_rate = rows / bare["wall_s"], rows / judged["wall_s"]
    load = os.getloadavg()[0]
    return [
        Row("ideal throughput", ideal, "scores/s", f"concurrency / latency; {what}"),
        Row("bare httpx throughput", bare_rate, "scores/s",
            f"baseline, same calls; wall {bare['wall_s']:.2f} s, CPU {bare['cpu_s']:.2f} s"),
        Row("bare efficiency vs ideal", bare_rate / ideal, "x", "what the wire allows here"),
        Row("evaluation throughput", eval_rate, "scores/s",
            f"evaluate_sync, llm_judge, scores stored; wall {judged['wall_s']:.2f} s, "
            f"CPU {judged['cpu_s']:.2f} s"),
        Row("evaluation efficiency vs ideal", eval_rate / ideal, "x",
            "evaluation throughput / ideal", ">= 0.9"),
        Row("evaluation vs bare", eval_rate / bare_rate, "x", "evaluation / bare throughput"),
        Row("bare peak in flight", bare_peak, "calls", "most calls the server had at once"),
        Row("evaluation peak in flight", eval_peak, "calls", "most calls the server had at once"),
        Row("bare peak memory", bare["maxrss_mb"], "MB", "ru_maxrss of the bare client"),
        Row("evaluation peak memory", judged["maxrss_mb"], "MB",
            "ru_maxrss of the evaluating process (interpreter, libraries, data)"),
        Row("load average", load, "", "1-minute, as the measurement ended (shared machine)"),
    ]  # fmt: skip


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child-setup":
        _setup(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--child-eval":
        _evaluate(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--child-bare":
        _bare(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--rows", type=int, default=640, help="outputs to judge")
    parser.add_argument("--latency", type=float, default=0.2, help="server latency, seconds")
    parser.add_argument("--concurrency", type=int, default=32, help="judge calls in flight")
    args = parser.parse_args()
    report("LLM-judge evaluation", bench(args.rows, args.latency, args.concurrency), args.json)


if __name__ == "__main__":
    main()
