"""`studio variant create --kb ...` and `studio variant retrieval`: a variant's retrieval
step from the command line, and a run of it that stores which chunks each row used."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from studio.services.runs import list_results
from studio.store import session_scope
from tests.services.retrieval_setup import PROMPT, QUESTIONS, handbook, help_app


def test_a_variant_with_retrieval_from_the_cli_runs_and_can_be_switched_off(
    cli: Any, session: Session, mock_provider: Any, tmp_path: Any
) -> None:
    handbook(session, help_app(session), name="handbook")
    made = cli(
        "variant", "create", "--app", "Help desk", "--name", "rag", "--model", "mock/echo",
        "--prompt", PROMPT, "--kb", "handbook", "--top-k", "2", "--json",
    )  # fmt: skip
    assert made.code == 0, made.err
    assert made.json()["retrieval"]["top_k"] == 2

    data = tmp_path / "q.csv"
    data.write_text(QUESTIONS)
    ran = cli("run", "--app", "Help desk", "--variant", "rag", "--dataset", str(data), "--json")
    assert ran.code == 0, ran.err
    with session_scope() as s:
        results = list_results(session=s, run_id=int(ran.json()["run_id"]))
    assert [r.retrieval["chunks"][0]["document"] for r in results if r.retrieval] == [
        "plans.md",
        "refunds.md",
        "data.md",
    ]

    off = cli("variant", "retrieval", "rag", "--app", "Help desk", "--off")
    assert off.code == 0 and "version 2 without retrieval" in off.out
    # {{context}} with no retrieval step: refused with a sentence, no traceback.
    again = cli("run", "--app", "Help desk", "--variant", "rag", "--dataset", str(data))
    assert again.code != 0 and "retrieval step fills in" in again.err
    assert "Traceback" not in again.err


def test_retrieval_options_without_a_knowledge_base_say_what_is_missing(
    cli: Any, session: Session, mock_provider: Any
) -> None:
    help_app(session)
    made = cli(
        "variant", "create", "--app", "Help desk", "--name", "rag", "--model", "mock/echo",
        "--prompt", "{{question}}", "--top-k", "2",
    )  # fmt: skip
    assert made.code != 0 and "need --kb" in made.err
    missing = cli(
        "variant", "create", "--app", "Help desk", "--name", "rag", "--model", "mock/echo",
        "--prompt", "{{question}}", "--kb", "nope",
    )  # fmt: skip
    assert missing.code != 0 and "No knowledge base 'nope'" in missing.err
