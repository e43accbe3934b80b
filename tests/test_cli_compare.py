"""`studio compare`: two variants and a model configuration, the tests as sentences, CSVs."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

CSV = "city,answer\n" + "".join(f"City {i},echo: City {i}\n" for i in range(12))


def _csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8-sig"))))


def test_compare_prints_the_tests_and_writes_both_files(
    cli: Any, tmp_path: Path, mock_provider: Any
) -> None:
    assert cli("app", "create", "Capitals").code == 0
    data = tmp_path / "c.csv"
    data.write_text(CSV)
    info = cli("dataset", "upload", "--app", "Capitals", str(data), "--json").json()
    for name, prompt in (("plain", "{{city}}"), ("fancy", "The city {{city}}")):
        made = cli("variant", "create", "--app", "Capitals", "--name", name,
                   "--model", "mock/echo", "--prompt", prompt)  # fmt: skip
        assert made.code == 0, made.err
    out = tmp_path / "compare.csv"
    result = cli(
        "compare", "--app", "Capitals", "--dataset", str(info["version_id"]),
        "--contender", "variant:plain", "--contender", "variant:fancy",
        "--contender", "model:mock/echo,temperature=0.7",
        "--evaluator", "contains:value=echo: {{city}}", "--out", str(out),
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "B: fancy passes 12 fewer of 12 rows than plain" in result.out
    assert "C: mock/echo (temperature=0.7) passes as many of 12 rows as plain" in result.out
    assert "Holm" in result.err
    rows = _csv(out)
    assert len(rows) == 12 and rows[0]["city"] == "City 0"
    assert rows[0]["A (plain) verdict"] == "pass" and rows[0]["B (fancy) verdict"] == "fail"
    summary = _csv(tmp_path / "compare.summary.csv")
    assert [s["contender"] for s in summary] == ["A", "B", "C"]
    assert summary[0]["baseline"] == "yes" and float(summary[1]["mcnemar p"]) < 0.01

    as_json = cli(
        "compare", "--app", "Capitals", "--dataset", str(info["version_id"]),
        "--contender", "variant:plain", "--contender", "variant:fancy", "--json",
    ).json()  # fmt: skip
    assert [c["key"] for c in as_json["contenders"]] == ["A", "B"]
    assert "No evaluators were chosen" in as_json["notes"][0]


def test_compare_refuses_a_single_contender(cli: Any, tmp_path: Path, mock_provider: Any) -> None:
    assert cli("app", "create", "Capitals").code == 0
    data = tmp_path / "c.csv"
    data.write_text(CSV)
    info = cli("dataset", "upload", "--app", "Capitals", str(data), "--json").json()
    result = cli("compare", "--app", "Capitals", "--dataset", str(info["version_id"]),
                 "--contender", "model:mock/echo")  # fmt: skip
    assert result.code != 0 and "2 to 8 contenders" in result.err
