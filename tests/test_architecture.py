"""The package's imports point down the layers of DESIGN.md, never back up.

faces (pages, ``studio.ui``, ``studio.gateway``, ``studio.cli``) → services → evaluators →
models → providers and store → core. Every ``import`` in every module counts,
including the ones inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

STUDIO = Path(__file__).resolve().parent.parent / "studio"

# Higher imports lower; equal ranks in different packages may not import each other.
RANK = {
    "core": 0,
    "store": 1,
    "providers": 1,
    "models": 2,
    "evaluators": 3,
    "services": 4,
    "ui": 5,
    "gateway": 5,
    "cli": 5,
}
# Faces may start or locate the HTTP gateway (``studio serve``, the embedded gateway).
FACE_TO_FACE = {("cli", "studio.gateway.server"), ("ui", "studio.gateway.server")}
# What each layer may not import from outside the studio.
FORBIDDEN_THIRD_PARTY = {
    layer: {"streamlit"} for layer in ("core", "store", "providers", "models", "services", "cli")
} | {"gateway": {"streamlit"}}


def _package(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "studio" or len(parts) < 2:
        return None
    return parts[1]


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            # ``from studio import registry`` names a module too
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return found


def _modules() -> list[Path]:
    return sorted(p for p in STUDIO.rglob("*.py") if "migrations" not in p.parts)


def _violations() -> list[str]:
    problems = []
    for path in _modules():
        rel = path.relative_to(STUDIO)
        if len(rel.parts) == 1:  # studio/__init__.py
            continue
        layer = rel.parts[0]
        if layer not in RANK:
            problems.append(f"{rel}: package '{layer}' has no place in the layers")
            continue
        for line, module in _imports(path):
            top = module.split(".")[0]
            if top in FORBIDDEN_THIRD_PARTY.get(layer, set()):
                problems.append(f"{rel}:{line} imports {module} ({layer} may not)")
            target = _package(module)
            if target is None or target == layer or target not in RANK:
                continue
            if (layer, ".".join(module.split(".")[:3])) in FACE_TO_FACE:
                continue
            if RANK[target] >= RANK[layer]:
                problems.append(f"{rel}:{line} imports {module}: {layer} may not import {target}")
    return problems


def test_imports_point_down_the_layers() -> None:
    problems = _violations()
    assert not problems, "imports pointing up or sideways:\n" + "\n".join(problems)


def test_every_package_is_a_known_layer() -> None:
    packages = {p.name for p in STUDIO.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= set(RANK), f"unplaced packages: {packages - set(RANK)}"
    top_level = sorted(p.name for p in STUDIO.glob("*.py") if p.name != "__init__.py")
    assert not top_level, f"modules at studio/'s top level belong in a layer: {top_level}"


@pytest.mark.parametrize(
    ("layer", "source", "expected"),
    [
        ("store", "from studio.models.seed import seed_defaults", True),
        ("services", "from studio.gateway.app import create_app", True),
        ("core", "import streamlit as st", True),
        ("gateway", "from studio.services.apps import get_app", False),
        ("cli", "from studio.gateway.server import serve", False),
    ],
)
def test_the_checker_catches_upward_imports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layer: str, source: str, expected: bool
) -> None:
    fake = tmp_path / "studio"
    (fake / layer).mkdir(parents=True)
    (fake / layer / "__init__.py").write_text("")
    (fake / layer / "probe.py").write_text(f"def f():\n    {source}\n")
    monkeypatch.setitem(globals(), "STUDIO", fake)
    assert bool(_violations()) is expected


def test_modules_stay_small_or_say_why() -> None:
    long = []
    for path in _modules():
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) > 520 and "Longer than" not in "\n".join(lines[:40]):
            long.append(f"{path.relative_to(STUDIO)} ({len(lines)} lines)")
    assert not long, "split these along their seams, or say at the top why not: " + ", ".join(long)
