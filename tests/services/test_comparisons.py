"""Comparisons: contenders resolved to runs (reused when finished), one evaluation over all,
paired tests against the baseline on the rows they share, the grid and its filters."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session, select

from studio.core.errors import StudioError
from studio.core.templates import PromptTemplate
from studio.services.apps import create_app
from studio.services.comparison_summary import comparison_summary, grid_page
from studio.services.comparisons import (
    ContenderSpec,
    add_contender,
    create_comparison,
    parse_contender,
)
from studio.services.datasets import set_expected_column, upload_dataset
from studio.services.evaluations import EvaluatorConfig, evaluate_sync
from studio.services.runs import run_sync
from studio.services.variants import VariantConfig, create_variant
from studio.store.tables import RunResult

ROWS = 30
CSV = "city,answer\n" + "".join(f"City {i},echo: City {i}\n" for i in range(ROWS))


def _app(session: Session) -> tuple[int, int]:
    app = create_app(session=session, name="Capitals")
    version = upload_dataset(
        session=session, app_id=app.id or 0, name="c", data=CSV.encode(), filename="c.csv"
    )
    version = set_expected_column(
        session=session, version_id=version.id or 0, expected_column="answer"
    )
    for name, template in (("plain", "{{city}}"), ("fancy", "The city {{city}}")):
        create_variant(
            session=session, app_id=app.id or 0, name=name,
            config=VariantConfig(model="mock/echo", prompt=PromptTemplate.completion(template)),
        )  # fmt: skip
    session.commit()
    return app.id or 0, version.id or 0


def _run_all(run_ids: list[int]) -> None:
    for run_id in run_ids:
        run_sync(run_id=run_id)


def test_compare_two_variants_and_a_model_configuration(
    session: Session, mock_provider: Any
) -> None:
    app_id, version_id = _app(session)
    comparison, missing = create_comparison(
        session=session, app_id=app_id, dataset_version_id=version_id,
        contenders=[parse_contender("variant:plain"), parse_contender("variant:fancy@1"),
                    parse_contender("model:mock/echo,temperature=0.7")],
        evaluators=[EvaluatorConfig(id="exact_match")],
    )  # fmt: skip
    assert [c["key"] for c in comparison.contenders] == ["A", "B", "C"]
    assert comparison.contenders[2]["label"] == "mock/echo (temperature=0.7)"
    assert len(missing) == 3
    # B never answered row 3 (left out of what is shared) and its call failed on row 5 (a
    # failed row for B, still shared); C's call failed on row 7, where A passes.
    _run_all(missing)
    b_run, c_run = comparison.contenders[1]["run_id"], comparison.contenders[2]["run_id"]
    gone = session.exec(
        select(RunResult).where(RunResult.run_id == b_run, RunResult.row_index == 3)
    ).one()
    session.delete(gone)
    for run_id, row in ((b_run, 5), (c_run, 7)):
        failed = session.exec(
            select(RunResult).where(RunResult.run_id == run_id, RunResult.row_index == row)
        ).one()
        failed.output, failed.error = None, "mock: provider down"
        session.add(failed)
    session.commit()
    assert comparison.evaluation_id is not None
    evaluate_sync(evaluation_id=comparison.evaluation_id)

    summary = comparison_summary(session=session, comparison_id=comparison.id or 0)
    figures = {f["key"]: f for f in summary.contenders}
    assert figures["A"]["passed"] == ROWS and figures["B"]["passed"] == 0
    assert figures["B"]["rows"] == ROWS - 1
    assert figures["A"]["latency_p50_ms"] is not None
    tests = {t["key"]: t for t in summary.tests}
    b = tests["B"]
    assert b["shared_rows"] == ROWS - 1
    assert b["verdicts"]["only_a"] == ROWS - 1 and b["verdicts"]["only_b"] == 0
    assert b["verdicts"]["p_value"] < 0.001 and b["verdicts"]["p_holm"] >= b["verdicts"]["p_value"]
    assert b["sentence"].startswith(
        f"fancy@1 passes {ROWS - 1} fewer of {ROWS - 1} rows than plain"
    )
    assert "Holm-adjusted" in b["sentence"] and "unlikely to be chance" in b["sentence"]
    c = tests["C"]  # the same prompt on the same model: identical verdicts but row 7
    assert (c["verdicts"]["only_a"], c["verdicts"]["only_b"]) == (1, 0)
    assert c["verdicts"]["p_value"] == 1.0 and c["verdicts"]["needed_rows"] is not None
    assert "not significant (at this difference about" in c["sentence"]
    assert figures["C"]["failed_calls"] == 1 and figures["C"]["passed"] == ROWS - 1
    assert any("Holm" in note for note in summary.notes)

    grid = grid_page(session=session, comparison_id=comparison.id or 0, limit=5)
    assert grid.total == ROWS and len(grid.rows) == 5
    first = grid.rows[0]
    assert first["inputs"]["city"] == "City 0"
    assert first["cells"]["A"]["output"] == "echo: City 0" and first["cells"]["A"]["passed"]
    assert first["cells"]["B"]["passed"] is False
    disagree = grid_page(session=session, comparison_id=comparison.id or 0, disagree=True)
    assert disagree.total == ROWS - 1  # row 3 has no verdict for B
    found = grid_page(session=session, comparison_id=comparison.id or 0, search="city 17")
    assert [r["row"] for r in found.rows] == [17]


def test_finished_runs_are_reused_and_a_comparison_can_be_extended(
    session: Session, mock_provider: Any
) -> None:
    app_id, version_id = _app(session)
    first, missing = create_comparison(
        session=session, app_id=app_id, dataset_version_id=version_id,
        contenders=[ContenderSpec(variant="plain"), ContenderSpec(variant="fancy")],
        evaluators=[EvaluatorConfig(id="exact_match")],
    )  # fmt: skip
    _run_all(missing)
    again, missing_again = create_comparison(
        session=session, app_id=app_id, dataset_version_id=version_id,
        contenders=[ContenderSpec(variant="plain"), ContenderSpec(variant="fancy")],
    )  # fmt: skip
    assert missing_again == []
    assert [c["run_id"] for c in again.contenders] == [c["run_id"] for c in first.contenders]
    extended, more = add_contender(
        session=session, comparison_id=first.id or 0,
        contender=parse_contender("model:mock/echo,max_tokens=16"),
    )  # fmt: skip
    assert [c["key"] for c in extended.contenders] == ["A", "B", "C"] and len(more) == 1
    _run_all(more)
    assert first.evaluation_id is not None
    card = evaluate_sync(evaluation_id=first.evaluation_id)
    assert card.line("C", "exact_match").passed == ROWS


def test_bad_contenders_are_refused_with_a_sentence(session: Session, mock_provider: Any) -> None:
    app_id, version_id = _app(session)
    with pytest.raises(StudioError, match="2 to 8 contenders"):
        create_comparison(session=session, app_id=app_id, dataset_version_id=version_id,
                          contenders=[ContenderSpec(variant="plain")])  # fmt: skip
    with pytest.raises(StudioError, match="share one run"):
        same = [ContenderSpec(variant="plain"), ContenderSpec(variant="plain")]
        create_comparison(
            session=session, app_id=app_id, dataset_version_id=version_id, contenders=same
        )
    with pytest.raises(StudioError, match="has no prompt"):
        models = [
            ContenderSpec(model="mock/echo"),
            ContenderSpec(model="mock/echo", parameters={"top_p": 0.5}),
        ]
        create_comparison(
            session=session, app_id=app_id, dataset_version_id=version_id, contenders=models
        )
    with pytest.raises(StudioError, match="not a contender"):
        parse_contender("plain")
