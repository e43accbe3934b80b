"""Journey (issue 17): answer from a handbook, end to end, in a real browser.

What a person does, page by page, with nothing set up behind the page's back:

1. Apps: create an app. Knowledge: create a knowledge base, upload the six handbook files
   in data/handbook, watch the ingestion finish, ask two questions whose answers are in
   the handbook (the best match is the document that holds the answer).
2. Datasets: upload data/handbook_questions.csv (each row names its expected document).
3. Playground: a prompt with {{context}} and {{question}}, retrieval on (the knowledge
   base, query {{question}}, top k 3), the preview's chunks, generate over every row on
   the built-in chat model (24 tokens), save as a variant.
4. Evaluations: evaluate that run with retrieval hit rate and faithfulness, read the hit
   rate with its interval (checked against the chunks the run stored), download the CSV.

The faithfulness judge is a model on a connection the test makes beforehand (as the
compare journey's provider): an OpenAI-compatible server on loopback that grades like a
strict reader, passing an answer whose words are in the retrieved context. The built-in
135M model, asked the same rubric, gave no readable verdict for any row, so every row
would be an evaluator error and the journey could not tell a judge that saw the chunks
from one that did not.

Screenshots land in test-artifacts/journey-handbook-*.png.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from studio.evaluators.stats import wilson_interval
from studio.models.connections import ConnectionCreate, add_connection
from studio.services.run_results import list_runs
from studio.services.variants import latest_version, list_variants
from studio.store import session_scope
from studio.store.tables import RunResult
from tests.browser.conftest import ARTIFACTS, ROOT
from tests.browser.helpers import download_csv, full_shot, nav, page_text, pick, settle
from tests.providers.fakes import FakeServer, Step, chat_body

HANDBOOK = sorted((ROOT / "data" / "handbook").iterdir())
QUESTIONS = ROOT / "data" / "handbook_questions.csv"
ASKED = {  # a question typed on the Knowledge page -> the document that answers it
    "How much does the Growth plan cost?": "billing.md",
    "How long are call recordings kept?": "mobile-and-phone.pdf",
}
PROMPT = (
    "Answer the question from these handbook notes.\n\nNotes:\n{{context}}\n\n"
    "Question: {{question}}\nAnswer:"
)
VARIANT = "handbook answers"
BUILTIN = "builtin/smollm2-135m-instruct"
JUDGE = "judges/grounding-judge"
_SECTION = re.compile(r"^(Question|Retrieved context|Output to grade)[^:\n]*:\n", re.M)
_WORD = re.compile(r"[a-z0-9]{4,}")


class GroundingJudge(FakeServer):
    """An OpenAI-compatible judge: an answer passes when at least 60% of its words (of four
    letters or more) are in the retrieved context it is shown. ``verdicts`` maps each
    question to its verdict, ``contexts`` to the context the judge was shown."""

    def __init__(self) -> None:
        super().__init__()
        self.verdicts: dict[str, str] = {}
        self.contexts: dict[str, str] = {}

    def _next(self, path: str, body: Any) -> Step:
        if path.endswith("/models"):
            return Step(body={"object": "list", "data": [{"id": JUDGE.split("/")[1]}]})
        if not path.endswith("/chat/completions"):
            return Step(status=404, body={"error": {"message": f"no route {path}"}})
        text = str(body["messages"][-1]["content"])
        marks = list(_SECTION.finditer(text))
        parts = {
            m.group(1): text[m.end() : nxt.start() if nxt else len(text)].strip()
            for m, nxt in zip(marks, [*marks[1:], None], strict=True)
        }
        context, output = parts.get("Retrieved context", ""), parts.get("Output to grade", "")
        output = output.split("Reply with", 1)[0]
        words = _WORD.findall(output.lower())
        found = [w for w in words if w in context.lower()]
        share = len(found) / len(words) if words else 0.0
        verdict = "pass" if words and share >= 0.6 else "fail"
        with self._lock:
            self.received.append((path, body))
            self.verdicts[parts.get("Question", "")] = verdict
            self.contexts[parts.get("Question", "")] = context
        reason = f"{len(found)} of {len(words)} words of the answer are in the context."
        reply = f'{{"verdict": "{verdict}", "score": {share:.2f}, "reason": "{reason}"}}'
        return Step(body=chat_body(reply))


@pytest.fixture
def judge(studio_env: Path) -> Iterator[GroundingJudge]:
    """A connection named "judges" to the grounding judge."""
    server = GroundingJudge()
    server.start()
    with session_scope() as session:
        add_connection(
            session=session,
            data=ConnectionCreate(name="judges", kind="openai", base_url=f"{server.url}/v1"),
        )
    try:
        yield server
    finally:
        server.stop()


def _shot(page: Any, step: str) -> None:
    settle(page)
    full_shot(page, f"journey-handbook-{step}")


def _no_crash(page: Any) -> None:
    content = page.content()
    assert "Traceback" not in content and "Something went wrong" not in content


def _knowledge_base(page: Any) -> None:
    """Apps and Knowledge: an app, a knowledge base of the handbook, two questions."""
    nav(page, "Apps")
    page.get_by_role("textbox", name="Name").first.fill("Support bot")
    page.get_by_role("button", name="Create app").click()
    page.get_by_text("Created 'Support bot'").wait_for(timeout=30_000)

    nav(page, "Knowledge")
    page.get_by_text("Support bot has no knowledge base yet").wait_for(timeout=30_000)
    page.get_by_role("textbox", name="Name").fill("Product handbook")
    page.get_by_text("By headings").click()
    settle(page)
    page.get_by_role("button", name="Create knowledge base").click()
    page.get_by_text("'Product handbook' is ready").wait_for(timeout=30_000)
    settle(page)
    page.locator("input[type=file]").first.set_input_files([str(p) for p in HANDBOOK])
    page.get_by_role("button", name="Upload and embed").click(timeout=30_000)
    page.get_by_text("Embedding chunks:").or_(
        page.get_by_text("every chunk can be found")
    ).first.wait_for(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "journey-handbook-1-progress.png"))
    page.get_by_text("every chunk can be found by a query").wait_for(timeout=180_000)
    settle(page)
    page.get_by_text(f"{len(HANDBOOK)} added").wait_for()
    _shot(page, "2-documents")

    page.get_by_role("tab", name="Try a query").click()
    for number, (question, document) in enumerate(ASKED.items(), start=3):
        query = page.get_by_role("textbox", name="Query")
        query.fill(question)
        query.press("Enter")
        settle(page)
        page.get_by_role("button", name="Search chunks", exact=True).click()
        page.get_by_text(f"Best match: {document}", exact=False).wait_for(timeout=120_000)
        _shot(page, f"{number}-query")
        _no_crash(page)


def _dataset(page: Any) -> None:
    nav(page, "Datasets")
    page.locator("input[type='file']").set_input_files(str(QUESTIONS))
    page.get_by_text("13 row(s), columns: question, expected_document, expected_answer").wait_for(
        timeout=30_000
    )
    pick(page, "Expected-output column", "expected_answer")
    page.get_by_role("button", name="Upload", exact=True).click()
    page.get_by_text("Uploaded 'handbook questions' as version 1 (13 rows).").wait_for(
        timeout=30_000
    )
    _shot(page, "5-dataset")


def _playground(page: Any) -> int:
    """Retrieval on, the preview's chunks, a run over every row, saved as a variant; the
    run's id."""
    nav(page, "Playground")
    template = page.get_by_role("textbox", name="Prompt template")
    template.fill(PROMPT)
    template.press("Control+Enter")
    settle(page)
    assert page.get_by_role("combobox", name="Model", exact=True).input_value() == BUILTIN
    max_tokens = page.get_by_role("spinbutton", name="Max tokens")
    max_tokens.fill("24")
    max_tokens.press("Enter")
    settle(page)

    page.get_by_text("Give the prompt chunks from a knowledge base").click()
    settle(page)
    assert page.get_by_role("combobox", name="Knowledge base").input_value() == ("Product handbook")
    assert page.get_by_role("textbox", name="Query template").input_value() == "{{question}}"
    top_k = page.get_by_role("spinbutton", name="Top k")
    top_k.fill("3")
    top_k.press("Enter")
    settle(page)
    # Row 1 asks how long an invitation is valid: getting-started.md holds the answer.
    page.get_by_text("Retrieved for this row").wait_for(timeout=60_000)
    page.get_by_text("Each invitation is valid for", exact=False).first.wait_for(state="attached")
    page.get_by_text("getting-started.md").first.wait_for(state="attached")  # the table
    _shot(page, "6-preview")

    page.get_by_role("button", name="Generate all 13 rows").click()
    page.get_by_text("Status: done").wait_for(timeout=240_000)
    _shot(page, "7-results")
    _no_crash(page)

    page.get_by_role("textbox", name="Variant name").fill(VARIANT)
    page.get_by_role("textbox", name="Note (what changed)").fill("answers from the handbook")
    page.get_by_role("button", name="Save variant").click()
    page.get_by_text(f"Saved variant '{VARIANT}' version 1.").wait_for(timeout=30_000)
    with session_scope() as session:
        (variant,) = list_variants(session=session, app_id=1)
        saved = latest_version(session=session, variant_id=variant.id)
        assert saved.retrieval["top_k"] == 3, "the variant keeps the retrieval step"
        (run,) = list_runs(session=session, app_id=1)
        assert run.id is not None and run.status == "done"
        return run.id


def _stored_hits(run_id: int) -> tuple[int, int, list[bool]]:
    """What the run's retrieval stored: rows with a chunk of the expected document."""
    expected = [
        r["expected_document"]
        for r in csv.DictReader(io.StringIO(QUESTIONS.read_text(encoding="utf-8")))
    ]
    with session_scope() as session:
        stored = session.exec(select(RunResult).where(RunResult.run_id == run_id)).all()
        assert len(stored) == len(expected)
    hits = []
    for result in sorted(stored, key=lambda r: r.row_index):
        assert result.retrieval, f"row {result.row_index + 1} stored no retrieval"
        chunks = result.retrieval["chunks"]
        assert len(chunks) == 3, "top k 3"
        documents = {c["document"] for c in chunks}
        hits.append(expected[result.row_index] in documents)
    return sum(hits), len(hits), hits


def _evaluate(page: Any, run_id: int, judge: GroundingJudge, tmp_path: Path) -> None:
    nav(page, "Evaluations")
    page.get_by_text("No evaluations yet").wait_for(timeout=30_000)
    # The saved variant is offered first; evaluate the run generated in the Playground.
    variants = page.get_by_role("combobox", name="Variant versions", exact=True)
    variants.click()
    variants.press("Backspace")
    page.keyboard.press("Escape")
    settle(page)
    pick(page, "Finished runs of this dataset version", f"Run {run_id}", close=True)
    page.get_by_role("tab", name="Retrieval (RAG)").click()
    for name in ("Retrieval hit rate", "Faithfulness (groundedness) (calls a model)"):
        page.get_by_role("checkbox", name=name, exact=True).check(force=True)
        settle(page)
    column = page.get_by_role("combobox", name="Column naming the expected document").first
    assert "expected_document" in column.input_value()
    model = page.get_by_role("combobox", name="Model", exact=True)
    assert model.input_value() == BUILTIN  # the default judge
    pick(page, "Model", JUDGE)
    assert model.input_value() == JUDGE
    _shot(page, "8-form")
    _no_crash(page)

    page.get_by_role("button", name="Evaluate", exact=True).click()
    page.get_by_text("Started evaluation 1").wait_for(timeout=30_000)
    page.get_by_role("button", name="Download results (wide CSV)").wait_for(timeout=300_000)
    page.get_by_role("heading", name="Retrieval").wait_for(timeout=30_000)
    _shot(page, "9-report")
    _no_crash(page)

    passed, total, hits = _stored_hits(run_id)
    interval = wilson_interval(passed, total)
    assert interval is not None
    figure = f"hit rate {interval.estimate:.0%} (95% CI {interval.low:.0%} to {interval.high:.0%})"
    report = page_text(page)
    assert figure in report, f"{figure!r} not in the report"
    assert "at least one retrieved chunk came from an expected document" in report

    wide = download_csv(page, "Download results (wide CSV)", tmp_path / "wide.csv")
    assert [r["row"] for r in wide] == [str(i) for i in range(1, total + 1)]
    assert [r["A retrieval_hit_rate pass"] == "pass" for r in wide] == hits
    # The judge saw each row's retrieved chunks, and the CSV holds its verdicts.
    questions = [r["question"] for r in wide]
    assert sorted(judge.verdicts) == sorted(questions)
    with session_scope() as session:
        stored = session.exec(select(RunResult).where(RunResult.run_id == run_id)).all()
        for result in stored:
            shown = judge.contexts[questions[result.row_index]]
            assert result.retrieval is not None
            for chunk in result.retrieval["chunks"]:
                assert chunk["text"].strip() in shown, f"row {result.row_index + 1}"
    assert [r["A faithfulness pass"] for r in wide] == [judge.verdicts[q] for q in questions]
    assert all("words of the answer" in r["A faithfulness reason"] for r in wide)


@pytest.mark.builtin_models
def test_answer_from_the_handbook_evaluate_hit_rate_and_faithfulness(
    judge: GroundingJudge, studio_url: str, page: Any, tmp_path: Path
) -> None:
    page.goto(studio_url)
    page.get_by_role("heading", name="Prompt Studio").wait_for(timeout=60_000)
    _knowledge_base(page)
    _dataset(page)
    run_id = _playground(page)
    _evaluate(page, run_id, judge, tmp_path)
