"""The app, dataset, variant and run commands, end to end with the mock provider."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

CSV = "event,demographic\nLaunch,students\n=SUM(A1:A2),retirees\nSale,parents\n"


def _csv_rows(path: Path) -> list[dict[str, str]]:
    text = path.read_bytes().decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def journey(cli: Any, tmp_path: Path, mock_provider: Any) -> dict[str, Any]:
    """An app with a dataset and a variant whose template names two columns."""
    assert cli("app", "create", "Marketing", "--description", "emails").code == 0
    data = tmp_path / "events.csv"
    data.write_text(CSV)
    uploaded = cli("dataset", "upload", "--app", "Marketing", str(data), "--json")
    assert uploaded.code == 0, uploaded.err
    info = uploaded.json()
    assert info["rows"] == 3 and info["columns"] == ["event", "demographic"]
    made = cli(
        "variant", "create", "--app", "Marketing", "--name", "plain", "--model", "mock/echo",
        "--prompt", "{{event}} for {{demographic}}", "--max-tokens", "20",
    )  # fmt: skip
    assert made.code == 0, made.err
    return {"version_id": info["version_id"], "csv": data}


def test_app_list_shows_counts(cli: Any, journey: dict[str, Any]) -> None:
    apps = cli("app", "list", "--json").json()
    assert [(a["name"], a["variants"], a["datasets"]) for a in apps] == [("Marketing", 1, 1)]
    assert "events" in cli("dataset", "list", "--app", "Marketing").out
    assert "plain" in cli("variant", "list", "--app", "Marketing").out
    versions = cli("variant", "history", "--app", "Marketing", "plain", "--json").json()
    assert [v["version"] for v in versions] == [1]
    assert versions[0]["parameters"] == {"max_tokens": 20}


def test_run_writes_one_row_per_dataset_row(
    cli: Any, journey: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "results.csv"
    result = cli(
        "run", "--app", "Marketing", "--variant", "plain",
        "--dataset", str(journey["version_id"]), "--out", str(out), "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    summary = result.json()
    assert summary["rows"] == 3 and summary["errors"] == 0
    rows = _csv_rows(out)
    assert list(rows[0]) == [
        "row", "event", "demographic", "output", "error", "latency_ms", "prompt_tokens",
        "response_tokens", "cost",
    ]  # fmt: skip
    assert [r["output"] for r in rows] == [
        "echo: Launch for students",
        "echo: =SUM(A1:A2) for retirees",
        "echo: Sale for parents",
    ]
    assert rows[1]["event"] == "'=SUM(A1:A2)"  # a formula cell is escaped

    again = cli("run", "resume", str(summary["run_id"]), "--out", str(out), "--json")
    assert again.code == 0, again.err
    assert again.json()["rows"] == 3
    assert len(_csv_rows(out)) == 3


def test_run_uploads_a_csv_file_and_writes_jsonl(
    cli: Any, journey: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "results.jsonl"
    result = cli(
        "run", "--app", "Marketing", "--variant", "plain", "--dataset", str(journey["csv"]),
        "--out", str(out),
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "run_id" in result.out
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 3
    assert lines[0]["output"] == "echo: Launch for students"


def test_template_naming_a_missing_column_exits_1(cli: Any, journey: dict[str, Any]) -> None:
    made = cli(
        "variant", "create", "--app", "Marketing", "--name", "broken", "--model", "mock/echo",
        "--system", "Be brief.", "--prompt", "{{event}} in {{city}}",
    )  # fmt: skip
    assert made.code == 0, made.err
    result = cli(
        "run", "--app", "Marketing", "--variant", "broken",
        "--dataset", str(journey["version_id"]),
    )  # fmt: skip
    assert result.code == 1
    assert "city" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_ragged_csv_exits_1_naming_the_line(cli: Any, tmp_path: Path) -> None:
    assert cli("app", "create", "Marketing").code == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("event,demographic\nLaunch,students\nSale,parents,extra\n")
    result = cli("dataset", "upload", "--app", "Marketing", str(bad))
    assert result.code == 1
    assert result.err.startswith("error: Line 3 has 3 cells")
    assert len(result.err.strip().splitlines()) == 1


def test_bad_parameter_names_the_field(cli: Any) -> None:
    assert cli("app", "create", "Marketing").code == 0
    result = cli(
        "variant", "create", "--app", "Marketing", "--name", "hot", "--model", "mock/echo",
        "--prompt", "hi", "--temperature", "1.5",
    )  # fmt: skip
    assert result.code == 1
    assert "parameters.temperature" in result.err and "<= 1" in result.err


def test_run_without_options_says_what_is_missing(cli: Any) -> None:
    result = cli("run", "--app", "Marketing")
    assert result.code == 1
    assert "--variant" in result.err and "--dataset" in result.err


def test_ctrl_c_cancels_and_prints_how_to_resume(
    cli: Any, journey: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import studio.cli.jobs
    import studio.services.jobs
    from studio.services.job_parts import run_part
    from studio.services.jobs import get_job

    def ctrl_c() -> None:
        monkeypatch.setattr(studio.cli.jobs, "_pause", lambda: asyncio.run(asyncio.sleep(0.01)))
        raise KeyboardInterrupt

    async def after_cancel(**kw: Any) -> str:
        while not get_job(job_id=kw["job_id"]).cancel_requested:  # the CLI cancels on Ctrl-C
            await asyncio.sleep(0.01)
        return await run_part(**kw)

    monkeypatch.setattr(studio.cli.jobs, "_pause", ctrl_c)
    monkeypatch.setattr(studio.services.jobs, "run_part", after_cancel)
    result = cli(
        "run", "--app", "Marketing", "--variant", "plain",
        "--dataset", str(journey["version_id"]),
    )  # fmt: skip
    assert result.code == 130
    assert "studio run resume 1" in result.err
    monkeypatch.undo()
    resumed = cli("run", "resume", "1", "--json")
    assert resumed.code == 0, resumed.err
    assert resumed.json()["rows"] == 3
