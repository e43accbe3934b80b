"""The HTTP face of the studio: deployed endpoints, OpenAI-compatible API, Models API."""

from __future__ import annotations

from studio.gateway.app import create_app

__all__ = ["create_app"]
