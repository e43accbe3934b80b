"""Prompt Studio's engine: a plain Python library under the UI, the CLI and the gateway."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
