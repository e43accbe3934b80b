"""The core: what every layer may import and that imports no other studio package.

errors (every exception the studio raises), settings, secrets, schemas (wire types of the
five model types), templates and their sandbox (prompts), prompting (payloads and
outputs), export (CSV safety).
"""

from __future__ import annotations

__all__: list[str] = []
