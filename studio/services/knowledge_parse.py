"""Reading documents for knowledge bases, and cutting their text into chunks.

:func:`parse_document` turns a file's bytes into *sections* of text: the whole text of a
plain, Markdown or HTML file, the pages of a PDF (``pypdf``), one section per row of a
CSV (a chosen text column) or of a JSON Lines file (a chosen field). :func:`chunk_sections`
cuts sections into chunks with ``semchunk`` (it splits at the largest semantic boundary
that fits: paragraphs, then lines, sentences, words), by size and overlap in characters,
or first by paragraphs or by Markdown headings, a section that is still too long being
cut by size. A chunk never spans two sections (two rows, two pages).

A file that cannot be read (binary, empty, encrypted PDF, not UTF-8, a missing column)
is refused with a :class:`DocumentError` whose sentence names the file.

Rules: none here (pure functions); :mod:`studio.services.knowledge` checks the caller.
"""

from __future__ import annotations

import csv
import io
import json
import re
from html.parser import HTMLParser
from pathlib import PurePath
from typing import Literal

import semchunk
from pydantic import BaseModel, Field, model_validator

from studio.core.errors import DatasetError

__all__ = [
    "KINDS",
    "ChunkingOptions",
    "DocumentError",
    "chunk_sections",
    "document_kind",
    "parse_document",
    "text_fields",
]

KINDS = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


class DocumentError(DatasetError):
    """A document that cannot be added to a knowledge base; the message names the file."""


class ChunkingOptions(BaseModel):
    """How documents are cut into chunks (sizes in characters)."""

    model_config = {"extra": "forbid"}

    method: Literal["characters", "paragraphs", "headings"] = Field(
        default="characters",
        description="characters: by size; paragraphs or headings: at blank lines or "
        "Markdown headings first, then by size",
    )
    size: int = Field(default=800, ge=50, le=20_000, description="Largest chunk, characters")
    overlap: int = Field(default=100, ge=0, description="Characters shared by neighbours")

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkingOptions:
        if self.overlap >= self.size // 2:
            raise ValueError("overlap must be less than half the chunk size")
        return self


def document_kind(filename: str) -> str:
    """The document kind its file name says (``pdf``, ``markdown``, ...), or refuse."""
    suffix = PurePath(filename).suffix.lower()
    kind = KINDS.get(suffix)
    if kind is None:
        known = ", ".join(sorted(KINDS))
        raise DocumentError(
            f"'{filename}' is not a kind of document the studio reads ({suffix or 'no suffix'}).",
            hint=f"Upload one of: {known}.",
        )
    return kind


class _HtmlText(HTMLParser):
    """Visible text of an HTML page: block elements become paragraph breaks."""

    _SKIP = {"script", "style", "head", "noscript", "template"}
    _BLOCK = {"p", "div", "br", "li", "tr", "section", "article", "h1", "h2", "h3", "h4", "h5"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)

    def text(self) -> str:
        joined = "".join(self.parts)
        lines = [" ".join(line.split()) for line in joined.splitlines()]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _decode(filename: str, data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise DocumentError(
            f"'{filename}' looks like a binary file, not text.",
            hint="Upload text, Markdown, HTML, PDF, CSV or JSON Lines.",
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(
            f"'{filename}' is not UTF-8 text (byte {exc.start} cannot be read).",
            hint="Save the file as UTF-8 and upload it again.",
        ) from exc


def _pdf_pages(filename: str, data: bytes) -> list[str]:
    import pypdf
    from pypdf.errors import PdfReadError

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise DocumentError(
                f"'{filename}' is an encrypted PDF; the studio cannot read its text.",
                hint="Save an unprotected copy of the PDF and upload that.",
            )
        return [page.extract_text() or "" for page in reader.pages]
    except DocumentError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise DocumentError(
            f"'{filename}' is not a PDF the studio can read ({exc}).",
            hint="Check the file opens in a PDF viewer, or upload its text instead.",
        ) from exc


def _column_hint(filename: str, what: str, available: list[str]) -> DocumentError:
    names = ", ".join(available[:20]) or "none"
    return DocumentError(
        f"'{filename}' has no {what}; it has: {names}.",
        hint="Choose the column (field) that holds the text: --text-column NAME.",
    )


def _csv_rows(filename: str, text: str, column: str | None) -> list[str]:
    reader = csv.DictReader(io.StringIO(text))
    fields = list(reader.fieldnames or [])
    if not fields:
        raise DocumentError(f"'{filename}' has no header row.", hint="Add a header row.")
    chosen = column or ("text" if "text" in fields else None)
    if chosen is None or chosen not in fields:
        what = f"column '{chosen}'" if chosen else "column named 'text'"
        raise _column_hint(filename, what, fields)
    return [str(row.get(chosen) or "") for row in reader]


def _jsonl_rows(filename: str, text: str, field: str | None) -> list[str]:
    chosen = field or "text"
    rows: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DocumentError(
                f"'{filename}' line {number} is not JSON ({exc.msg}).",
                hint="Each line of a JSON Lines file must be one JSON object.",
            ) from exc
        if not isinstance(record, dict) or chosen not in record:
            keys = list(record) if isinstance(record, dict) else []
            raise _column_hint(filename, f"field '{chosen}' on line {number}", keys)
        rows.append(str(record[chosen]))
    return rows


def parse_document(filename: str, data: bytes, *, text_column: str | None = None) -> list[str]:
    """The sections of text in ``data`` (see the module docstring); refuse a bad file."""
    kind = document_kind(filename)
    if not data.strip():
        raise DocumentError(f"'{filename}' is empty.", hint="Upload a file with some text.")
    if kind == "pdf":
        sections = _pdf_pages(filename, data)
    else:
        text = _decode(filename, data)
        if kind == "html":
            parser = _HtmlText()
            parser.feed(text)
            sections = [parser.text()]
        elif kind == "csv":
            sections = _csv_rows(filename, text, text_column)
        elif kind == "jsonl":
            sections = _jsonl_rows(filename, text, text_column)
        else:
            sections = [text]
    sections = [s.strip() for s in sections if s and s.strip()]
    if not sections:
        raise DocumentError(
            f"'{filename}' holds no text the studio can read.",
            hint="A scanned PDF has images, not text: upload a text version.",
        )
    return sections


_HEADING = re.compile(r"^(?=#{1,6}\s)", re.MULTILINE)


def _pieces(section: str, method: str) -> list[str]:
    if method == "paragraphs":
        return [p for p in re.split(r"\n\s*\n", section) if p.strip()]
    if method == "headings":
        return [p for p in _HEADING.split(section) if p.strip()]
    return [section]


def _split(text: str, size: int, overlap: int) -> list[str]:
    parts = semchunk.chunk(text, size, len, overlap=overlap or None)
    return [str(p) for p in parts]


def chunk_sections(sections: list[str], options: ChunkingOptions) -> list[str]:
    """Chunks of ``sections`` in order, none longer than ``options.size`` characters."""
    chunks: list[str] = []
    for section in sections:
        for piece in _pieces(section, options.method):
            piece = piece.strip()
            if len(piece) <= options.size:
                chunks.append(piece)
                continue
            parts = _split(piece, options.size, options.overlap)
            for part in parts:  # semchunk's overlap can add a few characters: cut those again
                cut = [part] if len(part) <= options.size else _split(part, options.size, 0)
                chunks.extend(c.strip() for c in cut if c.strip())
    return chunks


def text_fields(filename: str, data: bytes) -> list[str]:
    """The columns of a CSV file (the keys of a JSON Lines file's first object), to choose
    the one that holds the text; empty for other kinds or a file that cannot be read."""
    suffix = PurePath(filename).suffix.lower()
    if KINDS.get(suffix) not in ("csv", "jsonl"):
        return []
    try:
        text = data[:65536].decode("utf-8-sig", errors="ignore")
        if KINDS[suffix] == "csv":
            return [f for f in next(csv.reader(io.StringIO(text)), []) if f]
        first = next((line for line in text.splitlines() if line.strip()), "")
        record = json.loads(first)
    except (csv.Error, json.JSONDecodeError, ValueError):
        return []
    return [str(k) for k in record] if isinstance(record, dict) else []
