"""Local fine-tuning beside a bare peft loop, and the fine-tuned model beside its base.

    python bench/bench_finetune.py            # an aligned table
    python bench/bench_finetune.py --json     # the same figures as JSON

* Training: steps/s of a studio fine-tuning job on the built-in SmolLM2 (the worker's
  loop: batches, loss, AdamW, a database row per step, checkpoints, heartbeats), from
  the first to the last step's timestamp, beside a bare ``peft`` loop over the same
  batches with the same settings and threads (target >= 0.9 of it).
* Serving: tokens/s of greedy generation by llama.cpp with the job's GGUF adapter on
  top of the base, beside the base alone (target >= 0.8 of it).
* What it learned: the dataset teaches a fixed answer format ("CAPITAL: PARIS") that
  the base does not use; the share of held-out questions answered in that format by
  each model.
* Peak memory (maximum resident set size) of the process.

Figures only: nothing here asserts a speed. A throwaway SQLite database is used.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/bench_finetune.py`
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ["STUDIO_HOME"] = tempfile.mkdtemp(prefix="bench-finetune-")
os.environ.pop("DATABASE_URL", None)

from bench.common import Row, report

CAPITALS = [
    ("France", "Paris"), ("Spain", "Madrid"), ("Italy", "Rome"), ("Germany", "Berlin"),
    ("Portugal", "Lisbon"), ("Greece", "Athens"), ("Austria", "Vienna"), ("Poland", "Warsaw"),
    ("Norway", "Oslo"), ("Sweden", "Stockholm"), ("Finland", "Helsinki"), ("Ireland", "Dublin"),
    ("Egypt", "Cairo"), ("Kenya", "Nairobi"), ("Japan", "Tokyo"), ("China", "Beijing"),
    ("India", "New Delhi"), ("Peru", "Lima"), ("Chile", "Santiago"), ("Cuba", "Havana"),
    ("Canada", "Ottawa"), ("Mexico", "Mexico City"), ("Russia", "Moscow"), ("Turkey", "Ankara"),
]  # fmt: skip
HELD_OUT = [("Belgium", "Brussels"), ("Hungary", "Budapest"), ("Denmark", "Copenhagen"),
            ("Thailand", "Bangkok"), ("Argentina", "Buenos Aires"), ("Iran", "Tehran")]  # fmt: skip
FORMAT = "CAPITAL: "


def _question(country: str) -> str:
    return f"What is the capital of {country}?"


def _dataset() -> tuple[int, int]:
    import csv
    import io

    from studio.services.apps import create_app
    from studio.services.datasets import upload_dataset
    from studio.store import session_scope

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["question", "answer"])
    writer.writerows([(_question(c), f"{FORMAT}{city.upper()}") for c, city in CAPITALS])
    with session_scope() as session:
        app = create_app(session=session, name="Geography")
        assert app.id is not None
        version = upload_dataset(
            session=session,
            app_id=app.id,
            name="capitals",
            data=out.getvalue().encode(),
            filename="capitals.csv",
        )
        assert version.id is not None
        return app.id, version.id


def _bare_rate(params: dict[str, Any], epochs: int) -> float:
    """Steps/s of a bare peft loop: the job's base, adapter, batches, optimiser and
    threads, and nothing else (no database, checkpoints, heartbeats, validation)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from studio.services.finetune_local import (
        TARGET_MODULES,
        Batches,
        encode,
        load_base,
        train_threads,
    )
    from studio.services.finetune_records import load_split

    torch.set_num_threads(train_threads())
    torch.manual_seed(0)
    base, tokenizer = load_base()
    model = get_peft_model(
        base,
        LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=TARGET_MODULES),
    )
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    train, _ = load_split(params)
    batches = Batches([encode(tokenizer, e, "chat") for e in train], 4, 0)
    pad = tokenizer.pad_token_id or 0
    model.train()
    times = []
    for epoch in range(epochs):
        for indices in batches.epoch(epoch):
            times.append(time.perf_counter())
            loss = model(**batches.tensors(indices, pad)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad()
    times.append(time.perf_counter())
    return (len(times) - 2) / (times[-1] - times[1])  # as the job's: step 2 to the end


def bench_training(epochs: int) -> tuple[list[Row], int]:
    from studio.services import finetune
    from studio.services.finetune import FineTuneCreate
    from studio.services.finetune_local import load_base
    from studio.services.finetune_worker import run_job
    from studio.store import session_scope
    from studio.store.tables import Job

    _, version_id = _dataset()
    ask = FineTuneCreate(
        base_model="builtin/smollm2-135m-instruct",
        dataset_version_id=version_id,
        prompt_column="question",
        completion_column="answer",
        epochs=epochs,
        learning_rate=1e-3,
        validation_share=0.1,
    )
    job = finetune.create_job(data=ask, actor="bench", start=False)
    load_base()  # converted once, as any later job finds it
    with session_scope() as session:
        row = session.get(Job, job.id)
        assert row is not None
        params = dict(row.params)
    before = _bare_rate(params, epochs)
    started = time.perf_counter()
    run_job(job.id)
    whole = time.perf_counter() - started
    view = finetune.get_job(job_id=job.id)
    if view.state != "succeeded":
        raise SystemExit(f"the job {view.state}: {view.error}")
    metrics = finetune.job_metrics(job_id=job.id)
    span = (metrics[-1].at - metrics[0].at).total_seconds()
    studio_rate = (len(metrics) - 1) / span
    after = _bare_rate(params, epochs)
    bare_rate = max(before, after)  # the machine may be shared: the better is the baseline

    rows = [
        Row("training: bare peft loop", bare_rate, "steps/s",
            f"batch 4; before {before:.2f}, after {after:.2f}"),
        Row("training: studio job", studio_rate, "steps/s", f"{len(metrics)} steps"),
        Row("training: studio / bare", studio_rate / bare_rate, "x", "", ">= 0.9"),
        Row("training: whole job", whole, "s", "claim to registered model"),
        Row("training: first -> last loss", metrics[0].train_loss or 0, "loss",
            f"-> {metrics[-1].train_loss:.3f}; val {metrics[-1].val_loss:.3f}"),
    ]  # fmt: skip
    return rows, job.id


def bench_serving(job_id: int, tokens: int) -> list[Row]:
    from llama_cpp import Llama

    from studio.providers.builtin import SMOLLM2_THREADS, smollm2_gguf
    from studio.services.finetune_local import job_dir

    adapter = job_dir(job_id) / "adapter.gguf"
    path = str(smollm2_gguf())
    models = {
        "base": Llama(path, n_ctx=1024, n_threads=SMOLLM2_THREADS, verbose=False),
        "fine-tuned": Llama(
            path, n_ctx=1024, n_threads=SMOLLM2_THREADS, lora_path=str(adapter), verbose=False
        ),
    }

    def ask(llm: Llama, country: str) -> str:
        answer: Any = llm.create_chat_completion(
            [{"role": "user", "content": _question(country)}], temperature=0, max_tokens=12
        )
        return str(answer["choices"][0]["message"]["content"] or "")

    def rate(llm: Llama) -> float:
        best = 0.0
        for _ in range(3):  # the best of three: the machine may be shared
            start = time.perf_counter()
            out: Any = llm.create_completion(
                "Once upon a time, in a small harbour town by the sea,",
                max_tokens=tokens,
                temperature=0,
            )
            made = out["usage"]["completion_tokens"]
            best = max(best, made / (time.perf_counter() - start))
        return best

    rows: list[Row] = []
    rates = {name: rate(llm) for name, llm in models.items()}
    rows.append(Row("serving: base (llama.cpp)", rates["base"], "tokens/s", f"{tokens} tokens"))
    rows.append(Row("serving: fine-tuned (base + GGUF adapter)", rates["fine-tuned"], "tokens/s"))
    ratio = rates["fine-tuned"] / rates["base"] if rates["base"] else 0.0
    rows.append(Row("serving: fine-tuned / base", ratio, "x", "", ">= 0.8"))
    for name, llm in models.items():
        answers = [ask(llm, country) for country, _ in HELD_OUT]
        share = sum(a.strip().startswith(FORMAT) for a in answers) / len(answers)
        rows.append(
            Row(f"held-out questions in the learned format: {name}", share, "share",
                f"e.g. {answers[0].strip()[:40]!r}")
        )  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64, help="tokens generated per timing")
    args = parser.parse_args()
    rows, job_id = bench_training(args.epochs)
    rows += bench_serving(job_id, args.tokens)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows.append(Row("peak memory (max RSS)", peak, "MiB"))
    report("Fine-tuning", rows, args.json)


if __name__ == "__main__":
    main()
