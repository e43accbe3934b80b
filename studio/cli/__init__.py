"""The command-line face: ``studio`` and its command groups (see :mod:`studio.cli.main`)."""

from __future__ import annotations

from studio.cli.main import app, main

__all__ = ["app", "main"]
