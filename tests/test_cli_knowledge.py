"""``studio kb`` and ``studio chunks rank``: create a knowledge base from the sample
handbook, upload (a bad file is refused, the rest stored), query, delete; rank chunks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlmodel import Session

from tests.services.knowledge_files import add_words_connection

HANDBOOK = Path(__file__).resolve().parents[1] / "data" / "handbook"


def test_kb_create_upload_query_and_delete(cli: Any, session: Session, tmp_path: Path) -> None:
    model = add_words_connection(session)
    assert cli("app", "create", "Help").code == 0
    made = cli(
        "kb", "create", "--app", "Help", "--name", "handbook", "--model", model,
        "--chunking", "paragraphs", "--chunk-size", "400", "--overlap", "0",
    )  # fmt: skip
    assert made.code == 0, made.err
    assert "Knowledge base 1 'handbook' created" in made.out

    bad = tmp_path / "notes.txt"
    bad.write_bytes(b"\x00\x01\x02binary")
    files = [str(p) for p in sorted(HANDBOOK.iterdir())]
    upload = cli("kb", "upload", "handbook", *files, str(bad))
    assert upload.code == 1  # one file was refused
    assert "billing.md: added" in upload.out and "mobile-and-phone.pdf: added" in upload.out
    assert "refused: 'notes.txt' looks like a binary file" in upload.out
    assert "6 of 7 files are in knowledge base 1" in upload.out

    again = cli("kb", "upload", "1", str(HANDBOOK / "billing.md"))
    assert again.code == 0 and "billing.md: unchanged" in again.out

    listed = cli("kb", "list", "--app", "Help", "--json").json()
    assert [(k["name"], k["documents"]) for k in listed] == [("handbook", 6)]
    docs = cli("kb", "docs", "handbook", "--json").json()
    assert {d["name"] for d in docs} >= {"billing.md", "security.html", "mobile-and-phone.pdf"}

    hits = cli("kb", "query", "handbook", "How long are call recordings kept", "--json").json()
    assert hits[0]["document"] == "mobile-and-phone.pdf" and "90 days" in hits[0]["text"]
    shown = cli("kb", "query", "handbook", "Growth plan cost", "--top-k", "2")
    assert shown.code == 0 and "billing.md" in shown.out

    gone = cli("kb", "delete", "handbook", "--document", "billing.md")
    assert gone.code == 0 and "Deleted document 'billing.md'" in gone.out
    hits = cli("kb", "query", "handbook", "Growth plan cost", "--top-k", "10", "--json").json()
    assert "billing.md" not in {h["document"] for h in hits}
    assert cli("kb", "delete", "handbook").code == 0
    missing = cli("kb", "query", "handbook", "anything")
    assert missing.code != 0 and "No knowledge base 'handbook'" in missing.err


def test_chunks_rank_a_file_of_lines_and_a_json_list(cli: Any, tmp_path: Path) -> None:
    chunks = [
        "I like to have milk with cereals for breakfast.",
        "The largest continent is called Asia.",
        "The largest country is called Ibiza.",
        "Asia has the highest population.",
    ]
    lines = tmp_path / "chunks.txt"
    lines.write_text("\n".join(chunks) + "\n", encoding="utf-8")
    query = "What's the name of the largest continent?"
    ranked = cli(
        "chunks", "rank", str(lines), "--query", query, "--strategy", "bm25", "--top-k", "2",
        "--json",
    ).json()  # fmt: skip
    assert len(ranked) == 2 and ranked[0]["chunk"] == "The largest continent is called Asia."
    listed = tmp_path / "chunks.json"
    listed.write_text(json.dumps(chunks), encoding="utf-8")
    shown = cli("chunks", "rank", str(listed), "--query", query, "--strategy", "bm25")
    assert shown.code == 0 and "4 of 4 chunks" in shown.out
    broken = tmp_path / "broken.json"
    broken.write_text("[1, 2]", encoding="utf-8")
    refused = cli("chunks", "rank", str(broken), "--query", query)
    assert refused.code != 0 and "must be a JSON list of strings" in refused.err
