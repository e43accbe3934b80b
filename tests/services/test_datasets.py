"""Datasets: parsing uploads, rejecting bad files clearly, and immutable versions."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from studio.core.errors import DatasetError, NotFoundError, StudioError
from studio.services import datasets as ds
from studio.services.apps import create_app
from studio.services.datasets import parse_table
from studio.store.tables import DatasetRow

DATA = Path(__file__).resolve().parents[2] / "data"


def _parse(text: str | bytes, filename: str = "upload.csv") -> ds.ParsedTable:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return parse_table(data, filename=filename)


def _error(text: str | bytes, filename: str = "upload.csv", **kw: int) -> str:
    data = text.encode("utf-8") if isinstance(text, str) else text
    with pytest.raises(DatasetError) as info:
        parse_table(data, filename=filename, **kw)
    return str(info.value)


@pytest.fixture
def app_id(session: Session) -> int:
    app = create_app(session=session, name="Support bot")
    assert app.id is not None
    return app.id


# -- parsing ------------------------------------------------------------------------


def test_plain_csv_keeps_values_as_strings() -> None:
    table = _parse('event,size\r\n"Cooking class, spring", 25\r\n\r\n,\r\nBook club,007\r\n')
    assert table.columns == ["event", "size"]
    assert table.rows == [
        {"event": "Cooking class, spring", "size": " 25"},
        {"event": "Book club", "size": "007"},
    ]
    assert (table.encoding, table.delimiter) == ("utf-8", ",")


def test_encodings_bom_and_latin1() -> None:
    bom = _parse(b"\xef\xbb\xbfname,city\nAnna,Z\xc3\xbcrich\n")
    assert bom.columns == ["name", "city"] and bom.encoding == "utf-8-sig"
    assert bom.rows[0]["city"] == "Zürich"
    latin = _parse("drink,price\ncafé,2\n“smart” quotes,3\n".encode("cp1252"))
    assert latin.encoding == "cp1252"
    assert [r["drink"] for r in latin.rows] == ["café", "“smart” quotes"]
    assert _parse("drink,price\ncafé,2\n".encode("latin-1")).rows[0]["drink"] == "café"


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("event;size\nCooking class, spring;25\nBook club;12\n", ";"),
        ("event\tsize\nCooking class, spring\t25\nBook club\t12\n", "\t"),
        ("event|size\nCooking class; spring|25\nBook club|12\n", "|"),
        ('event,size\n"Cooking class; spring",25\n"Book; club",12\n', ","),
    ],
)
def test_delimiter_detection(text: str, delimiter: str) -> None:
    table = _parse(text)
    assert table.delimiter == delimiter
    assert table.columns == ["event", "size"]
    assert table.rows[1] == {
        "event": text.splitlines()[2].split(delimiter)[0].strip('"'),
        "size": "12",
    }


def test_single_column_file() -> None:
    table = _parse("text\nI love it; really\nMeh\n")
    assert table.columns == ["text"]
    assert [r["text"] for r in table.rows] == ["I love it; really", "Meh"]


def test_empty_and_blank_files_are_refused() -> None:
    assert "'upload.csv' is empty" in _error(b"")
    assert "is empty" in _error(b"  \n\r\n ")
    assert "but no rows" in _error("question,answer\n")


def test_binary_files_are_refused() -> None:
    assert "is not a text file" in _error(b"a,b\n\x00\x01\x02\x03", filename="x.csv")
    msg = _error(b"PK\x03\x04" + bytes(range(256)) * 4, filename="book.xlsx")
    assert "Excel workbook" in msg and "CSV UTF-8" in msg
    assert "not a text file" in _error(bytes(range(1, 32)) * 50)


def test_header_problems_are_named() -> None:
    assert "look like data" in _error("1,2,3\n4,5,6\n")
    assert "add a first line" in _error("1.5,2\n3,4\n").lower()
    msg = _error("question,,answer\nq,x,a\n")
    assert "Column 2 in the header row has no name" in msg
    assert "Columns 2, 4" in _error("a,,b, \n1,2,3,4\n")
    msg = _error("question,answer,question,answer,notes\n1,2,3,4,5\n")
    assert "appear more than once" in msg and "'question', 'answer'" in msg
    assert "column names are missing" in _error(",,\nq,a,b\n")


def test_ragged_rows_name_the_file_line() -> None:
    msg = _error("question,answer\nq1,a1\nq2\n")
    assert "Line 3 has 1 cell but the header has 2 columns" in msg
    assert "Fix that line so it has 2 cells" in msg
    # quoted multi-line cells count as the lines they span in the file
    text = 'question,answer\n"two\nline question",a1\n"three\nline\nquestion",a2\nq3,a3,extra\n'
    assert "Line 7 has 3 cells but the header has 2 columns" in _error(text)
    assert "put the whole cell in double quotes" in _error(text)
    # extra empty cells at the end of a row are a spreadsheet leftover, not an error
    assert _parse("a,b\n1,2,,\n").rows == [{"a": "1", "b": "2"}]


def test_quote_problems_name_the_line() -> None:
    msg = _error('question,answer\nq1,a1\nq2,"never closed\nq3,a3\n')
    assert "starts on line 3 is never closed" in msg
    assert "right after a closing quote" in _error('a,b\n"x"y,1\n')


def test_size_limit_in_megabytes() -> None:
    data = b"a,b\n" + b"1,2\n" * 300_000
    msg = _error(data, max_bytes=1024 * 1024)
    assert "the limit is 1 MB" in msg and "Split the file" in msg
    assert len(parse_table(data, filename="big.csv").rows) == 300_000


def test_json_lines() -> None:
    text = (
        '{"question": "Reset password?", "tags": ["auth"], "score": 1.5}\n'
        "\n"
        '{"question": "Export?", "answer": null, "extra": {"a": 1}, "ok": true}\n'
    )
    table = _parse(text, filename="qa.jsonl")
    assert table.columns == ["question", "tags", "score", "answer", "extra", "ok"]
    assert table.rows[0] == {
        "question": "Reset password?",
        "tags": '["auth"]',
        "score": "1.5",
        "answer": "",
        "extra": "",
        "ok": "",
    }
    assert table.rows[1]["extra"] == '{"a": 1}' and table.rows[1]["ok"] == "true"
    assert "Line 2 is not valid JSON" in _error('{"a": 1}\n{"a": \n', filename="x.ndjson")
    assert "Line 1 is a JSON array, not an object" in _error("[1, 2]\n", filename="x.jsonl")
    assert "Line 2 has a key that is empty" in _error('{"a": 1}\n{"": 1}\n', filename="x.jsonl")
    assert "repeated" in _error('{"a": 1, " a": 2}\n', filename="x.jsonl")


def test_sample_files_load() -> None:
    expected = {
        "marketing_events.csv": ["event", "demographic", "size"],
        "support_questions.csv": ["question", "expected_answer"],
        "sentiment_texts.csv": ["text", "label"],
    }
    for name, columns in expected.items():
        table = parse_table((DATA / name).read_bytes(), filename=name)
        assert table.columns == columns, name
        assert 12 <= len(table.rows) <= 25, name
        assert all(all(v.strip() for v in row.values()) for row in table.rows), name
    labels = parse_table((DATA / "sentiment_texts.csv").read_bytes(), filename="s.csv")
    assert {r["label"] for r in labels.rows} == {"positive", "negative", "neutral"}


_cell_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\n\r\t"))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400), st.sampled_from(["x.csv", "x.jsonl", "x.txt"]))
def test_arbitrary_bytes_parse_or_raise_studio_error(data: bytes, filename: str) -> None:
    try:
        table = parse_table(data, filename=filename)
    except StudioError:
        return
    assert table.columns and table.rows


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.lists(_cell_text, min_size=1, max_size=4), min_size=1, max_size=6),
    st.sampled_from([",", ";", "\t", "|"]),
)
def test_arbitrary_text_rows_parse_or_raise_studio_error(
    rows: list[list[str]], delimiter: str
) -> None:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter).writerows(rows)
    with contextlib.suppress(StudioError):
        parse_table(out.getvalue().encode("utf-8"), filename="rows.csv")


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.text(st.characters(blacklist_categories=("Cs", "Cc", "Z")), min_size=1, max_size=8)
        .map(lambda s: "c" + s)
        .filter(lambda s: s == s.strip()),
        min_size=1,
        max_size=4,
        unique=True,
    ),
    st.lists(st.lists(_cell_text, min_size=4, max_size=4), min_size=1, max_size=6),
)
def test_quoted_download_format_reads_back_exactly(
    columns: list[str], cells: list[list[str]]
) -> None:
    rows = [dict(zip(columns, r, strict=False)) for r in cells]
    rows = [r for r in rows if any(v.strip() for v in r.values())]
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows([[r[c] for c in columns] for r in rows])
    if not rows:
        return
    table = parse_table(out.getvalue().encode("utf-8"), filename="download.csv")
    assert table.columns == columns and table.rows == rows


# -- versions --------------------------------------------------------------------------


def test_upload_creates_versions_and_summaries(session: Session, app_id: int) -> None:
    data = (DATA / "support_questions.csv").read_bytes()
    v1 = ds.upload_dataset(
        session=session,
        app_id=app_id,
        name="FAQ",
        data=data,
        filename="support_questions.csv",
        expected_column="expected_answer",
    )
    assert (v1.version, v1.row_count, v1.expected_column) == (1, 20, "expected_answer")
    assert v1.columns == ["question", "expected_answer"]
    assert v1.source_filename == "support_questions.csv"
    v2 = ds.upload_dataset(
        session=session, app_id=app_id, name="FAQ", data=b"question\nq1\nq2\n", filename="b.csv"
    )
    assert (v2.dataset_id, v2.version, v2.row_count) == (v1.dataset_id, 2, 2)
    other = ds.upload_dataset(
        session=session,
        app_id=app_id,
        name="events",
        data=(DATA / "marketing_events.csv").read_bytes(),
        filename="marketing_events.csv",
    )
    summaries = {s.name: s for s in ds.list_datasets(session=session, app_id=app_id)}
    assert summaries["FAQ"].latest_version == 2 and summaries["FAQ"].row_count == 2
    assert summaries["FAQ"].latest_version_id == v2.id
    assert summaries["events"].columns == ["event", "demographic", "size"]
    assert [v.version for v in ds.list_versions(session=session, dataset_id=v1.dataset_id)] == [
        1,
        2,
    ]
    assert ds.latest_version(session=session, dataset_id=other.dataset_id).id == other.id
    assert len(ds.load_rows(session=session, version_id=v1.id or 0)) == 20
    frame = ds.rows_frame(session=session, version_id=other.id or 0)
    assert list(frame.columns) == ["event", "demographic", "size"]
    assert frame.iloc[0]["size"] == "25"


def test_expected_column_must_exist(session: Session, app_id: int) -> None:
    with pytest.raises(DatasetError) as info:
        ds.upload_dataset(
            session=session,
            app_id=app_id,
            name="FAQ",
            data=b"question,answer\nq,a\n",
            filename="faq.csv",
            expected_column="expected",
        )
    assert "'expected' is not in this dataset" in str(info.value)
    assert "Pick one of its columns: question, answer" in str(info.value)
    assert ds.list_datasets(session=session, app_id=app_id) == []


def test_edits_make_a_new_version_and_leave_the_old_one(session: Session, app_id: int) -> None:
    v1 = ds.upload_dataset(
        session=session,
        app_id=app_id,
        name="FAQ",
        data=b"question,answer\nq1,a1\nq2,a2\nq3,a3\n",
        filename="faq.csv",
        expected_column="answer",
    )
    assert v1.id is not None
    original = ds.load_rows(session=session, version_id=v1.id)
    edited = [
        {"question": "q1 (edited)", "answer": "a1"},
        {"question": "q3", "answer": None},
        {"question": "q4"},
        {"question": "", "answer": "   "},  # an empty row the editor added: dropped
    ]
    v2 = ds.save_edited_version(session=session, version_id=v1.id, rows=edited, note="fix q1")
    assert (v2.version, v2.row_count, v2.note, v2.expected_column) == (2, 3, "fix q1", "answer")
    assert ds.load_rows(session=session, version_id=v2.id or 0) == [
        {"question": "q1 (edited)", "answer": "a1"},
        {"question": "q3", "answer": ""},
        {"question": "q4", "answer": ""},
    ]
    assert ds.load_rows(session=session, version_id=v1.id) == original
    assert ds.get_version(session=session, version_id=v1.id).row_count == 3

    # adding a column, and editing an old version, both make the next number
    v3 = ds.save_edited_version(
        session=session,
        version_id=v1.id,
        rows=[{"question": "q1", "answer": "a1", "topic": "auth"}],
        columns=["question", "answer", "topic"],
        expected_column="topic",
    )
    assert (v3.version, v3.columns, v3.expected_column) == (
        3,
        ["question", "answer", "topic"],
        "topic",
    )
    # deleting the expected column clears it
    v4 = ds.save_edited_version(
        session=session, version_id=v3.id or 0, rows=[{"question": "q1"}], columns=["question"]
    )
    assert (v4.version, v4.expected_column) == (4, None)
    # saving without a change makes no version
    same = ds.save_edited_version(session=session, version_id=v4.id or 0, rows=[{"question": "q1"}])
    assert same.id == v4.id


def test_edit_validation(session: Session, app_id: int) -> None:
    v1 = ds.upload_dataset(
        session=session, app_id=app_id, name="FAQ", data=b"q,a\n1,2\n", filename="f.csv"
    )
    vid = v1.id or 0
    with pytest.raises(DatasetError, match=r"appear more than once.*'q'"):
        ds.save_edited_version(
            session=session, version_id=vid, rows=[{"q": "x"}], columns=["q", "q "]
        )
    with pytest.raises(DatasetError, match="Column 2 in the edited table has no name"):
        ds.save_edited_version(
            session=session, version_id=vid, rows=[{"q": "x"}], columns=["q", ""]
        )
    with pytest.raises(DatasetError, match=r"Row 2 has values for columns .* 'zz'"):
        ds.save_edited_version(session=session, version_id=vid, rows=[{"q": "1"}, {"zz": "2"}])
    with pytest.raises(DatasetError, match="at least one row"):
        ds.save_edited_version(session=session, version_id=vid, rows=[])
    with pytest.raises(DatasetError, match="Pick one of its columns: q, a"):
        ds.save_edited_version(
            session=session, version_id=vid, rows=[{"q": "1"}], expected_column="x"
        )
    with pytest.raises(NotFoundError):
        ds.save_edited_version(session=session, version_id=9999, rows=[{"q": "1"}])
    assert [v.version for v in ds.list_versions(session=session, dataset_id=v1.dataset_id)] == [1]


def test_set_expected_column_copies_rows_into_a_new_version(session: Session, app_id: int) -> None:
    v1 = ds.upload_dataset(
        session=session,
        app_id=app_id,
        name="sentiment",
        data=(DATA / "sentiment_texts.csv").read_bytes(),
        filename="sentiment_texts.csv",
    )
    assert v1.expected_column is None and v1.id is not None
    v2 = ds.set_expected_column(session=session, version_id=v1.id, expected_column="label")
    assert (v2.version, v2.expected_column, v2.row_count) == (2, "label", v1.row_count)
    assert ds.load_rows(session=session, version_id=v2.id or 0) == ds.load_rows(
        session=session, version_id=v1.id
    )
    assert ds.get_version(session=session, version_id=v1.id).expected_column is None
    assert (
        ds.set_expected_column(session=session, version_id=v2.id or 0, expected_column="label").id
        == v2.id
    )
    with pytest.raises(DatasetError, match="Pick one of its columns: text, label"):
        ds.set_expected_column(session=session, version_id=v1.id, expected_column="sentiment")


def test_csv_download_round_trips(session: Session, app_id: int) -> None:
    rows = [
        {"text": 'He said "hi", then left', "note": " leading space"},
        {"text": "two\nlines; and | pipes\ttabs", "note": ""},
        {"text": "café ☕ 🙄", "note": "=SUM(A1)"},
        {"text": "", "note": "only note"},
        {"text": "1,5", "note": "\r\n"},
    ]
    lines = io.StringIO()
    csv.writer(lines).writerows([["text", "note"]] + [[r["text"], r["note"]] for r in rows])
    v1 = ds.upload_dataset(
        session=session,
        app_id=app_id,
        name="tricky",
        data=lines.getvalue().encode(),
        filename="tricky.csv",
    )
    assert ds.load_rows(session=session, version_id=v1.id or 0) == rows
    for bom in (False, True):
        download = ds.version_csv(session=session, version_id=v1.id or 0, bom=bom)
        table = parse_table(download, filename="download.csv")
        assert table.columns == ["text", "note"] and table.rows == rows


def test_jsonl_upload_and_twenty_thousand_rows(session: Session, app_id: int) -> None:
    jsonl = "\n".join(json.dumps({"question": f"q{i}", "n": i}) for i in range(3)).encode()
    v = ds.upload_dataset(
        session=session, app_id=app_id, name="json", data=jsonl, filename="q.jsonl"
    )
    assert ds.load_rows(session=session, version_id=v.id or 0)[2] == {"question": "q2", "n": "2"}

    big = "question,expected_answer\n" + "".join(
        f'"Question {i}, please",answer {i}\n' for i in range(20_000)
    )
    version = ds.upload_dataset(
        session=session, app_id=app_id, name="big", data=big.encode(), filename="big.csv"
    )
    assert version.row_count == 20_000
    rows = ds.load_rows(session=session, version_id=version.id or 0)
    assert len(rows) == 20_000
    assert rows[12_345] == {"question": "Question 12345, please", "expected_answer": "answer 12345"}
    indexes = session.exec(
        select(DatasetRow.row_index).where(DatasetRow.dataset_version_id == version.id)
    ).all()
    assert sorted(indexes) == list(range(20_000))


def test_upload_to_missing_app_or_without_name(session: Session, app_id: int) -> None:
    with pytest.raises(NotFoundError):
        ds.upload_dataset(session=session, app_id=999, name="x", data=b"a\n1\n", filename="a.csv")
    with pytest.raises(DatasetError, match="needs a name"):
        ds.upload_dataset(
            session=session, app_id=app_id, name=" ", data=b"a\n1\n", filename="a.csv"
        )
