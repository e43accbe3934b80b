"""The gateway's routes: deployed endpoints, the OpenAI-compatible surface, the Models API
and monitoring under ``/api/v1``."""

from __future__ import annotations

__all__: list[str] = []
