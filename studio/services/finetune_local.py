"""Local fine-tuning: a LoRA adapter for the built-in SmolLM2, trained on this machine's CPU
in the worker process, then served by llama.cpp on top of the unchanged base.

* The base is the built-in GGUF itself, loaded into ``transformers`` (which dequantizes
  it); the first job saves it in ``STUDIO_HOME/finetune/base`` so later jobs load in
  seconds.
* Each example is the chat prompt (the base's own chat template, the one llama.cpp uses
  when it serves) followed by the completion and the end-of-turn token; only the
  completion's tokens count in the loss.
* ``peft`` trains rank-r adapters on every attention and MLP projection with AdamW; the
  batches of each epoch come from a seeded shuffle, so a resumed job sees the same ones.
* Every ``checkpoint_every`` steps (and at each epoch's end) the adapter and the optimiser
  state are saved atomically; a worker started after a crash or SIGKILL loads the last
  checkpoint and goes on with the next step. Each step's training loss, and each epoch's
  validation loss, go to the database as they are measured; Cancel is honoured between
  steps.
* The adapter is written as a GGUF adapter (:mod:`studio.services.finetune_gguf`) and
  registered as a model of the ``llama-cpp-lora`` template (base GGUF + adapter), in the
  base's group, with its lineage.

Rules: no check here; the worker acts as WORKER for a job that
:mod:`studio.services.finetune` checked when it was queued.
"""

from __future__ import annotations

import math
import os
import random
import shutil
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from studio.core.errors import ConfigError
from studio.core.schemas import ModelType
from studio.core.settings import get_settings
from studio.models.registry import create_template
from studio.models.specs import ModelCreate, TemplateCreate
from studio.providers.builtin import SMOLLM2_N_CTX, SMOLLM2_THREADS, smollm2_gguf
from studio.services.finetune_data import Example
from studio.services.finetune_gguf import write_lora_gguf
from studio.services.finetune_records import (
    Heartbeat,
    load_split,
    log_line,
    record_metric,
    register_model,
)
from studio.store.tables import ModelTemplate

__all__ = [
    "CHECKPOINT_EVERY",
    "TARGET_MODULES",
    "Batches",
    "encode",
    "job_dir",
    "load_base",
    "run_local_job",
    "train_threads",
]

TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
CHECKPOINT_EVERY = 10
MAX_EXAMPLE_TOKENS = 1024  # longer examples are cut (the check allows up to the context)
TEMPLATES = {"chat": "llama-cpp-lora-chat", "completion": "llama-cpp-lora-completion"}


def train_threads() -> int:
    """Half the CPUs (as the built-in model uses), at least one."""
    return max(1, (os.cpu_count() or 2) // 2)


def job_dir(job_id: int) -> Path:
    path = get_settings().ensure_home() / "finetune" / f"job-{job_id}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _require() -> Any:
    try:
        import peft
        import torch
        import transformers
    except ImportError as exc:
        raise ConfigError(
            f"Local fine-tuning needs the package '{exc.name}'.",
            hint="Install the studio's dependencies again (scripts/install.sh).",
        ) from exc
    return torch, transformers, peft


def load_base() -> tuple[Any, Any]:
    """The built-in SmolLM2 as a ``transformers`` model (float32) and its tokenizer."""
    torch, transformers, _ = _require()
    gguf = smollm2_gguf()
    cache = get_settings().ensure_home() / "finetune" / "base" / gguf.stem
    if not (cache / "model.safetensors").is_file():
        import safetensors.torch

        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
        )
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name
        )
        tmp = cache.with_name(cache.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        # save_pretrained refuses a GGUF-loaded model; its weights are plain float32 now
        tokenizer.save_pretrained(tmp)
        if hasattr(model.config, "quantization_config"):  # the weights are not quantized now
            del model.config.quantization_config
        model.config.save_pretrained(tmp)
        safetensors.torch.save_model(model, str(tmp / "model.safetensors"))
        shutil.rmtree(cache, ignore_errors=True)
        tmp.rename(cache)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(cache), dtype=torch.float32)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(cache))
    return model, tokenizer


def encode(tokenizer: Any, example: Example, prompt_kind: str) -> tuple[list[int], list[int]]:
    """Token ids of prompt + completion + end of turn, and the labels (-100 on the prompt)."""
    if prompt_kind == "chat":
        prompt = tokenizer.apply_chat_template(
            [m.model_dump(include={"role", "content"}) for m in example.messages],
            add_generation_prompt=True,
            tokenize=False,
        )
    else:
        prompt = example.prompt
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(example.completion, add_special_tokens=False)["input_ids"]
    answer_ids = [*answer_ids, tokenizer.eos_token_id]
    ids = (prompt_ids + answer_ids)[:MAX_EXAMPLE_TOKENS]
    labels = ([-100] * len(prompt_ids) + answer_ids)[:MAX_EXAMPLE_TOKENS]
    return ids, labels


class Batches:
    """The examples' batches, epoch by epoch, in a seeded order (the same after a resume)."""

    def __init__(self, encoded: list[tuple[list[int], list[int]]], size: int, seed: int) -> None:
        self.encoded, self.size, self.seed = encoded, size, seed
        self.per_epoch = math.ceil(len(encoded) / size) if encoded else 0

    def epoch(self, number: int) -> list[list[int]]:
        order = list(range(len(self.encoded)))
        random.Random(self.seed * 1000 + number).shuffle(order)
        return [order[i : i + self.size] for i in range(0, len(order), self.size)]

    def tensors(self, indices: list[int], pad_id: int) -> dict[str, Any]:
        import torch

        rows = [self.encoded[i] for i in indices]
        width = max(len(ids) for ids, _ in rows)
        ids = [r[0] + [pad_id] * (width - len(r[0])) for r in rows]
        labels = [r[1] + [-100] * (width - len(r[1])) for r in rows]
        mask = [[1] * len(r[0]) + [0] * (width - len(r[0])) for r in rows]
        return {
            "input_ids": torch.tensor(ids),
            "labels": torch.tensor(labels),
            "attention_mask": torch.tensor(mask),
        }


def _save_checkpoint(path: Path, step: int, model: Any, optimizer: Any) -> None:
    import torch
    from peft import get_peft_model_state_dict

    tmp = path.with_suffix(".tmp")
    state = {
        "step": step,
        "adapter": get_peft_model_state_dict(model),
        "optimizer": optimizer.state_dict(),
    }
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic: a kill mid-save keeps the previous checkpoint


def _load_checkpoint(path: Path, model: Any, optimizer: Any) -> int:
    import torch
    from peft import set_peft_model_state_dict

    if not path.is_file():
        return 0
    state = torch.load(path, weights_only=True)
    set_peft_model_state_dict(model, state["adapter"])
    optimizer.load_state_dict(state["optimizer"])
    return int(state["step"])


def _validation_loss(model: Any, batches: Batches, pad_id: int) -> float | None:
    import torch

    if not batches.encoded:
        return None
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for indices in batches.epoch(0):
            batch = batches.tensors(indices, pad_id)
            tokens = int((batch["labels"][:, 1:] != -100).sum())
            total += float(model(**batch).loss) * tokens
            count += tokens
    model.train()
    return total / max(count, 1)


def _ensure_template(session: Session, prompt_kind: str) -> None:
    name = TEMPLATES[prompt_kind]
    if session.exec(select(ModelTemplate).where(ModelTemplate.name == name)).first() is None:
        param = {"type": "str", "required": True}
        create_template(
            session=session,
            local=True,
            data=TemplateCreate.model_validate(
                {
                    "name": name,
                    "model_type": "CHAT_COMPLETION" if prompt_kind == "chat" else "COMPLETION",
                    "runtime": "llama-cpp",
                    "runtime_config": {"n_ctx": SMOLLM2_N_CTX},
                    "model_creation_parameters_schema": {
                        "parameters": [
                            {"name": "model_path", **param, "description": "The base GGUF"},
                            {"name": "lora_path", **param, "description": "The LoRA adapter"},
                            {"name": "n_ctx", "type": "int", "description": "Context window"},
                            {"name": "n_threads", "type": "int", "description": "CPU threads"},
                        ]
                    },
                }
            ),
        )


def run_local_job(job_id: int, params: dict[str, Any]) -> None:
    """Train (or go on training) the job's adapter, then register the model."""
    torch, _, peft = _require()
    torch.set_num_threads(train_threads())
    hyper, kind = params["hyperparameters"], params.get("prompt_kind", "chat")
    torch.manual_seed(hyper["seed"])
    folder = job_dir(job_id)
    with Heartbeat(job_id) as beat:
        train, validation = load_split(params)
        log_line(job_id, "Loading the base model.")
        base, tokenizer = load_base()
        beat.check()
        rank = int(hyper["lora_rank"])
        model = peft.get_peft_model(
            base,
            peft.LoraConfig(
                r=rank,
                lora_alpha=2 * rank,
                lora_dropout=0.0,
                target_modules=TARGET_MODULES,
                task_type="CAUSAL_LM",
            ),
        )
        optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad], lr=float(hyper["learning_rate"])
        )
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        batches = Batches(
            [encode(tokenizer, e, kind) for e in train], hyper["batch_size"], hyper["seed"]
        )
        held_out = Batches([encode(tokenizer, e, kind) for e in validation], hyper["batch_size"], 0)
        checkpoint = folder / "checkpoint.pt"
        done = _load_checkpoint(checkpoint, model, optimizer)
        total = batches.per_epoch * int(hyper["epochs"])
        every = int(hyper.get("checkpoint_every") or CHECKPOINT_EVERY)
        if done:
            log_line(job_id, f"Resuming after step {done} of {total} (the last checkpoint).")
        else:
            log_line(job_id, f"Training {total} steps on {train_threads()} CPU threads.")
        model.train()
        step, train_loss, val_loss = 0, None, None
        for epoch in range(int(hyper["epochs"])):
            for position, indices in enumerate(batches.epoch(epoch)):
                step = epoch * batches.per_epoch + position + 1
                if step <= done:
                    continue
                beat.check()
                loss = model(**batches.tensors(indices, pad_id)).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                optimizer.zero_grad()
                train_loss = float(loss.detach())
                at_epoch_end = position == batches.per_epoch - 1
                if at_epoch_end:
                    val_loss = _validation_loss(model, held_out, pad_id)
                record_metric(
                    job_id,
                    step=step,
                    epoch=step / batches.per_epoch,
                    train_loss=train_loss,
                    val_loss=val_loss if at_epoch_end else None,
                )
                if step % every == 0 or at_epoch_end:
                    _save_checkpoint(checkpoint, step, model, optimizer)
        beat.check()
        if train_loss is None or val_loss is None:  # everything was done before a resume
            from studio.services.finetune_openai import _last_losses

            train_loss, val_loss = _last_losses(job_id)
        adapter = folder / "adapter.gguf"
        config = base.config
        write_lora_gguf(
            adapter,
            peft.get_peft_model_state_dict(model),
            alpha=2 * rank,
            n_head=config.num_attention_heads,
            n_head_kv=config.num_key_value_heads,
            name=f"fine-tuning job {job_id}",
        )
        model.save_pretrained(folder / "adapter")
        log_line(job_id, f"Wrote the adapter ({adapter.stat().st_size:,} bytes).")
        short = params["base_model"].removeprefix("builtin/")
        template = TEMPLATES[kind]
        register_model(
            job_id,
            model=ModelCreate(
                name=params.get("name") or f"{short}-ft-{job_id}",
                model_type=ModelType.CHAT_COMPLETION if kind == "chat" else ModelType.COMPLETION,
                description=f"{params['base_model']} fine-tuned (LoRA rank {rank}) by "
                f"fine-tuning job {job_id} on dataset version {params['dataset_version_id']}.",
                model_template_id=template,
                model_creation_parameters={
                    "model_path": str(smollm2_gguf()),
                    "lora_path": str(adapter),
                    "n_threads": SMOLLM2_THREADS,
                },
                model_group=params.get("group"),
                context_window=SMOLLM2_N_CTX,
            ),
            final_train_loss=train_loss,
            final_val_loss=val_loss,
            artifact=str(folder),
            prepare=lambda session: _ensure_template(session, kind),
        )
