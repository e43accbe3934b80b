"""`studio eval`: the catalogue, a CI gate that exits 1 below --fail-under, exports, YAML sets."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

CSV = "event,demographic\nLaunch,students\nTasting,retirees\nHackathon,developers\n"


@pytest.fixture
def variant(cli: Any, tmp_path: Path, mock_provider: Any) -> dict[str, Any]:
    assert cli("app", "create", "Marketing").code == 0
    data = tmp_path / "events.csv"
    data.write_text(CSV)
    info = cli("dataset", "upload", "--app", "Marketing", str(data), "--json").json()
    made = cli(
        "variant", "create", "--app", "Marketing", "--name", "plain", "--model", "mock/echo",
        "--prompt", "{{event}} for {{demographic}}",
    )  # fmt: skip
    assert made.code == 0, made.err
    return {"version_id": str(info["version_id"])}


def _eval(cli: Any, version_id: str, *extra: str) -> Any:
    return cli(
        "eval", "run", "--app", "Marketing", "--variant", "plain@1", "--dataset", version_id,
        *extra,
    )  # fmt: skip


def test_fail_under_exits_1_below_the_threshold_and_0_at_it(
    cli: Any, variant: dict[str, Any], tmp_path: Path
) -> None:
    # The mock echoes the prompt, so every output names its event.
    spec = "contains:value={{event}}"
    passing = _eval(cli, variant["version_id"], "--evaluator", spec, "--fail-under", "1.0")
    assert passing.code == 0, passing.err
    assert "overall pass rate 100.0%" in passing.out
    assert "95% CI" in passing.out

    two_of_three = "regex:pattern=(Launch|Tasting)"
    below = _eval(cli, variant["version_id"], "--evaluator", two_of_three, "--fail-under", "0.7",
                  "--json")  # fmt: skip
    assert below.code == 1
    assert "below --fail-under 70.0%" in below.err
    assert below.json()["overall_pass_rate"] == pytest.approx(2 / 3)
    at = _eval(cli, variant["version_id"], "--evaluator", two_of_three, "--fail-under", "0.66")
    assert at.code == 0, at.err


def test_the_run_is_generated_once_then_reused(cli: Any, variant: dict[str, Any]) -> None:
    first = _eval(cli, variant["version_id"], "--evaluator", "is_json", "--json").json()
    second = _eval(cli, variant["version_id"], "--evaluator", "is_json", "--json").json()
    assert first["contenders"] == second["contenders"]  # same run, not a second generation
    assert first["overall_pass_rate"] == 0.0


def test_yaml_config_out_csv_list_show_export(
    cli: Any, variant: dict[str, Any], tmp_path: Path
) -> None:
    config = tmp_path / "evals.yaml"
    config.write_text(
        "evaluators:\n"
        "  - contains:value={{demographic}}\n"
        "  - id: length\n"
        "    options: {unit: words, max: 3}\n"
        "fail_under: 0.5\n"
    )
    out = tmp_path / "results.csv"
    result = _eval(cli, variant["version_id"], "--config", str(config), "--out", str(out))
    assert result.code == 1  # "echo: Launch for students" is 4 words: fails length everywhere
    rows = list(csv.DictReader(io.StringIO(out.read_bytes().decode("utf-8-sig"))))
    assert [r["event"] for r in rows] == ["Launch", "Tasting", "Hackathon"]
    assert rows[0]["A contains pass"] == "pass" and rows[0]["A length pass"] == "fail"
    assert rows[0]["A length reason"] == "4 words: more than 3."

    listed = cli("eval", "list", "--app", "Marketing", "--json").json()
    assert len(listed) == 1 and listed[0]["summary"]["overall_pass_rate"] == 0.0
    evaluation_id = str(listed[0]["id"])
    shown = cli("eval", "show", evaluation_id)
    assert shown.code == 0 and "contains" in shown.out and "length" in shown.out
    long = tmp_path / "long.csv"
    assert cli("eval", "export", evaluation_id, "--format", "long", "--out", str(long)).code == 0
    assert len(list(csv.DictReader(io.StringIO(long.read_bytes().decode("utf-8-sig"))))) == 6


def test_catalogue_and_bad_input_errors(cli: Any, variant: dict[str, Any]) -> None:
    listed = cli("eval", "evaluators", "--json").json()
    judge = next(e for e in listed if e["id"] == "llm_judge")
    assert {o["name"] for o in judge["options"]} >= {"rubric", "model", "threshold"}
    bad = _eval(cli, variant["version_id"], "--evaluator", "regex:pattern=(")
    assert bad.code != 0 and "not a valid regular expression" in bad.err
    unknown = _eval(cli, variant["version_id"], "--evaluator", "nope")
    assert unknown.code != 0 and "Unknown evaluator 'nope'" in unknown.err
    nothing = cli("eval", "run", "--app", "Marketing", "--dataset", variant["version_id"],
                  "--evaluator", "is_json")  # fmt: skip
    assert nothing.code != 0 and "--variant" in nothing.err
