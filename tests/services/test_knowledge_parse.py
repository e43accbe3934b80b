"""Reading each kind of document, refusing bad files with a sentence naming them, and
cutting text into chunks."""

from __future__ import annotations

import itertools

import pytest

from studio.services.knowledge_parse import (
    ChunkingOptions,
    DocumentError,
    chunk_sections,
    parse_document,
)
from tests.services.knowledge_files import encrypted_pdf, make_pdf


def test_text_and_markdown_are_read_whole() -> None:
    assert parse_document("a.txt", b"Hello there.\n") == ["Hello there."]
    assert parse_document("b.md", "# Title\n\nCaf\u00e9 text".encode()) == [
        "# Title\n\nCaf\u00e9 text"
    ]


def test_html_keeps_the_visible_text_only() -> None:
    page = (
        b"<html><head><title>T</title><style>p{}</style></head><body><h1>Plans</h1>"
        b"<p>Growth costs 29 &euro;.</p><script>alert(1)</script></body></html>"
    )
    (text,) = parse_document("page.html", page)
    assert "Plans" in text and "Growth costs 29 \u20ac." in text
    assert "alert" not in text and "p{}" not in text


def test_pdf_gives_one_section_per_page() -> None:
    data = make_pdf([["First page text."], ["Second page text."]])
    assert parse_document("doc.pdf", data) == ["First page text.", "Second page text."]


def test_csv_reads_the_chosen_column_one_section_per_row() -> None:
    data = b"id,answer\n1,Refunds take 5 days.\n2,Invoices are PDFs.\n"
    assert parse_document("faq.csv", data, text_column="answer") == [
        "Refunds take 5 days.",
        "Invoices are PDFs.",
    ]
    with pytest.raises(DocumentError, match=r"'faq.csv' has no column 'body'; it has: id, answer"):
        parse_document("faq.csv", data, text_column="body")


def test_jsonl_reads_the_chosen_field() -> None:
    data = b'{"body": "One."}\n\n{"body": "Two."}\n'
    assert parse_document("notes.jsonl", data, text_column="body") == ["One.", "Two."]
    with pytest.raises(DocumentError, match=r"'notes.jsonl' line 1 is not JSON"):
        parse_document("notes.jsonl", b"not json\n")


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.txt", b"  \n", "'empty.txt' is empty"),
        ("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00", "'image.txt' looks like a binary file"),
        ("latin.txt", "caf\u00e9".encode("latin-1"), "'latin.txt' is not UTF-8 text"),
        ("broken.pdf", b"%PDF-1.4 this is no pdf", "'broken.pdf' is not a PDF the studio"),
        ("sheet.xlsx", b"PK\x03\x04", "'sheet.xlsx' is not a kind of document"),
    ],
)
def test_bad_files_are_refused_naming_the_file(name: str, data: bytes, message: str) -> None:
    with pytest.raises(DocumentError, match=message):
        parse_document(name, data)


def test_an_encrypted_pdf_is_refused() -> None:
    data = encrypted_pdf(make_pdf([["Secret plans."]]))
    with pytest.raises(DocumentError, match=r"'locked\.pdf' is an encrypted PDF"):
        parse_document("locked.pdf", data)


def test_chunks_respect_the_size_and_overlap() -> None:
    text = " ".join(f"Sentence number {i} talks about topic {i}." for i in range(60))
    chunks = chunk_sections([text], ChunkingOptions(size=200, overlap=40))
    assert len(chunks) > 10
    assert all(len(c) <= 200 for c in chunks)
    # neighbours share text (the overlap): the end of one chunk starts the next
    assert sum(1 for a, b in itertools.pairwise(chunks) if a[-15:] in b) >= 5


def test_chunks_by_headings_keep_each_section_apart() -> None:
    text = "# Plans\nStarter and Growth.\n\n## Refunds\nYearly plans only.\n"
    chunks = chunk_sections([text], ChunkingOptions(method="headings", size=500, overlap=0))
    assert chunks == ["# Plans\nStarter and Growth.", "## Refunds\nYearly plans only."]


def test_chunks_by_paragraphs_and_never_across_rows() -> None:
    chunks = chunk_sections(
        ["One.\n\nTwo.", "Three."], ChunkingOptions(method="paragraphs", size=500, overlap=0)
    )
    assert chunks == ["One.", "Two.", "Three."]


def test_overlap_must_be_below_half_the_size() -> None:
    with pytest.raises(ValueError, match="overlap must be less than half"):
        ChunkingOptions(size=100, overlap=60)
