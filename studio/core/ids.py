"""Row ids typed by people or sent by clients.

``str.isdigit()`` is true for characters ``int()`` refuses (superscripts such as "¹")
and for numbers no table can hold; :func:`row_id` accepts only ASCII digits naming an
id between 1 and PostgreSQL's INTEGER maximum, so a lookup by id never raises.
"""

from __future__ import annotations

__all__ = ["MAX_ROW_ID", "row_id"]

MAX_ROW_ID = 2**31 - 1  # PostgreSQL's INTEGER; SQLite holds more, no table needs it


def row_id(text: str | int | None) -> int | None:
    """``"42"`` → 42; anything that is not an id a table can hold → ``None``."""
    if isinstance(text, bool) or text is None:
        return None
    if isinstance(text, int):
        return text if 1 <= text <= MAX_ROW_ID else None
    cleaned = text.strip()
    if not cleaned or not cleaned.isascii() or not cleaned.isdigit() or len(cleaned) > 10:
        return None
    number = int(cleaned)
    return number if 1 <= number <= MAX_ROW_ID else None
