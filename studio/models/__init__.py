"""The model layer above the providers: connections, model specs, the registry (templates,
models, deployments, execute), chat semantics, usage and prices, the zoo, seeding.

Importing this package registers the seeder that gives a fresh database its built-in
models, system templates and prices (see :func:`studio.store.db.register_seeder`).
"""

from __future__ import annotations

from studio.models.seed import seed_defaults
from studio.store.db import register_seeder

__all__: list[str] = []

register_seeder(seed_defaults)
