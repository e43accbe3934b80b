"""Results export: CSV safe for spreadsheets, JSON Lines, streaming."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from studio.core.export import CSV_BOM, iter_csv, iter_jsonl, to_csv, to_jsonl

COLUMNS = ["event", "output", "tokens", "cost"]


def _parse_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(CSV_BOM)
    return list(csv.reader(io.StringIO(data[len(CSV_BOM) :].decode("utf-8"), newline="")))


@pytest.mark.parametrize("lead", ["=", "+", "-", "@", "\t", "\r"])
def test_formula_looking_text_is_prefixed_with_a_quote(lead: str) -> None:
    text = f'{lead}HYPERLINK("http://evil","x")'
    rows = _parse_csv(to_csv([{"event": "e", "output": text}], COLUMNS))
    assert rows[1][1] == "'" + text


def test_numbers_are_not_escaped_even_when_negative() -> None:
    data = to_csv([{"event": "e", "output": "ok", "tokens": -3, "cost": -0.25}], COLUMNS)
    assert _parse_csv(data)[1] == ["e", "ok", "-3", "-0.25"]


def test_none_and_missing_keys_become_empty_cells() -> None:
    data = to_csv([{"event": None, "output": "x"}], COLUMNS)
    assert _parse_csv(data)[1] == ["", "x", "", ""]


def test_header_comes_first_with_bom_and_crlf() -> None:
    data = to_csv([], COLUMNS)
    assert data == CSV_BOM + b"event,output,tokens,cost\r\n"


def test_unicode_commas_quotes_and_newlines_round_trip() -> None:
    rows: list[dict[str, Any]] = [
        {"event": "Fête ✓ 🎉", "output": 'He said "hi",\nthen left', "tokens": 7, "cost": 0.5},
        {"event": "日本語", "output": "a, b; c", "tokens": 0, "cost": 1.25},
    ]
    parsed = _parse_csv(to_csv(rows, COLUMNS))
    assert parsed[0] == COLUMNS
    assert parsed[1:] == [[str(r[c]) for c in COLUMNS] for r in rows]


def test_csv_parses_back_to_the_same_values_modulo_the_escape_quote() -> None:
    rows: list[dict[str, Any]] = [
        {"event": "=1+2", "output": "-minus", "tokens": -1, "cost": 2.5},
        {"event": "@SUM(A1)", "output": "+plus", "tokens": 3, "cost": None},
        {"event": "plain", "output": "ok = fine", "tokens": 10, "cost": -0.1},
    ]
    parsed = _parse_csv(to_csv(rows, COLUMNS))[1:]
    for original, back in zip(rows, parsed, strict=True):
        for column, cell in zip(COLUMNS, back, strict=True):
            value = original[column]
            expected = "" if value is None else str(value)
            if isinstance(value, str) and value[:1] in "=+-@":
                assert cell == "'" + expected
            else:
                assert cell == expected


def test_iter_csv_streams_in_chunks_that_join_to_to_csv() -> None:
    rows = [{"event": f"e{i}", "output": "-x", "tokens": i, "cost": 0.1} for i in range(1200)]
    chunks = list(iter_csv(iter(rows), COLUMNS))
    assert len(chunks) > 2
    assert b"".join(chunks) == to_csv(rows, COLUMNS)
    assert len(_parse_csv(b"".join(chunks))) == 1201


def test_jsonl_is_one_valid_object_per_line_without_escaping() -> None:
    rows: list[dict[str, Any]] = [
        {"event": "=1+2", "output": "Fête 🎉\nline two", "tokens": -3, "cost": None},
        {"event": "b", "output": "", "tokens": 0, "cost": 0.5, "ignored": "x"},
    ]
    data = to_jsonl(rows, COLUMNS)
    assert "🎉".encode() in data  # ensure_ascii is off
    lines = data.decode("utf-8").splitlines()
    assert len(lines) == 2
    assert [json.loads(line) for line in lines] == [
        {"event": "=1+2", "output": "Fête 🎉\nline two", "tokens": -3, "cost": None},
        {"event": "b", "output": "", "tokens": 0, "cost": 0.5},
    ]
    assert b"".join(iter_jsonl(rows, COLUMNS)) == data


def test_jsonl_writes_nan_as_null() -> None:
    line = to_jsonl([{"event": "e", "cost": float("nan")}], ["event", "cost"])
    assert json.loads(line) == {"event": "e", "cost": None}
