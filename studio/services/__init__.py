"""Services: what the studio does, one module per concept.

Each service function is keyword-only, takes the SQLModel ``session`` and
flushes (never commits): the caller owns the transaction. The faces (pages, the
CLI, the gateway) call these functions and nothing below them.
"""

from __future__ import annotations

__all__: list[str] = []
