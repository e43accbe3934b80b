"""``studio finetune``: create (checked first; --wait follows the worker process to the
model's name), compare with the base, list, get, events, cancel."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session

from tests.services.finetune_fakes import FineTuningServer, make_dataset


def test_create_waits_for_the_worker_and_prints_the_model(cli: Any, session: Session) -> None:
    _, version_id = make_dataset(session)
    with FineTuningServer(polls=2) as server:
        server.connect(session)
        bad = cli(
            "finetune", "create", "--base", "acme/base-mini", "--dataset", str(version_id),
            "--prompt-column", "question", "--completion-column", "reply",
        )  # fmt: skip
        assert bad.code != 0
        assert "no column 'reply'" in bad.err and "Traceback" not in bad.err
        assert "No fine-tuning jobs yet" in cli("finetune", "list").out
        done = cli(
            "finetune", "create", "--base", "acme/base-mini", "--dataset", str(version_id),
            "--prompt-column", "question", "--completion-column", "answer", "--epochs", "2",
            "--wait",
        )  # fmt: skip
        assert done.code == 0, done.err
        # the new model beside its base on the one validation row, scored against the answer
        compared = cli("finetune", "compare", "1")
        assert compared.code == 0, compared.err
        assert "Comparison 1: Fine-tune #1" in compared.out
        rows = [line for line in compared.out.splitlines() if "%" in line and "│" in line]
        base, tuned = rows  # the table: contender, rows, pass rate, ...
        assert "base: acme/base-mini" in base and "│ 0.0% " in base
        assert "fine-tuned: acme/ft" in tuned and "│ 100.0% " in tuned
    assert done.out.strip() == "acme/ft:base-mini:studio::abc123"
    jobs = json.loads(cli("finetune", "list", "--json").out)
    assert [(j["state"], j["model"]) for j in jobs] == [("succeeded", done.out.strip())]
    shown = cli("finetune", "get", str(jobs[0]["id"])).out
    assert "succeeded" in shown and "epochs=2" in shown
    events = cli("finetune", "events", str(jobs[0]["id"])).out
    assert "Uploaded 7 training and 1 validation rows" in events
    assert "Losses" in events
    again = cli("finetune", "cancel", str(jobs[0]["id"]))
    assert again.code == 0 and "is succeeded" in again.out
    missing = cli("finetune", "get", "999")
    assert missing.code != 0 and "No fine-tuning job 999" in missing.err
