"""Server-sent events as they arrive: the lines of a UTF-8 body, and the events they make.

Used by :class:`~studio.providers.http.HTTPProvider` for streamed answers from
OpenAI-compatible and Anthropic servers, over the keep-alive pool or httpx.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

__all__ = ["WHOLE_ANSWER", "SSEvent", "lines_of", "parse_sse"]

_LINE_END = re.compile(r"\r\n|\r|\n")


async def lines_of(chunks: AsyncIterator[bytes]) -> AsyncGenerator[str, None]:
    """The lines of a UTF-8 body as it arrives; only CRLF, LF and CR end a line, as the
    event-stream format says (JSON text may hold U+2028, which ``splitlines`` splits)."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    pending = ""
    async for piece in chunks:
        pending += decoder.decode(piece)
        held = pending.endswith("\r")  # maybe the first half of a CRLF: wait for more
        parts = _LINE_END.split(pending[:-1] if held else pending)
        pending = parts.pop() + ("\r" if held else "")
        for line in parts:
            yield line
    pending += decoder.decode(b"", final=True)
    if pending:
        for line in _LINE_END.split(pending.removesuffix("\r")):
            yield line


WHOLE_ANSWER = "studio.whole-answer"  # the event name of a non-streamed answer


@dataclass(frozen=True, slots=True)
class SSEvent:
    """One server-sent event: its ``event`` name (None when unnamed) and ``data``."""

    event: str | None
    data: str


async def parse_sse(lines: AsyncIterator[str]) -> AsyncGenerator[SSEvent, None]:
    """Server-sent events from the lines of a ``text/event-stream`` body."""
    event: str | None = None
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield SSEvent(event, "\n".join(data))
            event, data = None, []
            continue
        if line.startswith(":"):  # a comment (keep-alive)
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
    if data:
        yield SSEvent(event, "\n".join(data))
