"""The evaluator catalogue: evaluator classes by id.

``register(cls)`` adds an evaluator class, exactly like providers; the built-in
evaluators register the same way. A third-party package adds its own through
the ``prompt_studio.evaluators`` entry point group (each entry point names an
evaluator class, or a module whose import calls ``register``).

``parse_spec("contains:value=refund,case_sensitive=true")`` builds an evaluator
from the CLI's ``id:key=value,...`` form; its values are parsed by the
evaluator's own ``Options`` model, so the CLI, a YAML file and the UI form share
one set of rules.
"""

from __future__ import annotations

import logging
import re
from importlib.metadata import entry_points
from typing import Any, get_args, get_origin

from studio.core.errors import ConfigError, FieldProblem, RequestValidationError
from studio.evaluators.base import EvalItem, Evaluator, EvaluatorOptions, ModelCaller, Verdict

__all__ = [
    "ENTRY_POINT_GROUP",
    "EvalItem",
    "Evaluator",
    "EvaluatorOptions",
    "ModelCaller",
    "Verdict",
    "build",
    "catalogue",
    "evaluator_class",
    "parse_spec",
    "register",
]

ENTRY_POINT_GROUP = "prompt_studio.evaluators"
log = logging.getLogger(__name__)

_CATALOGUE: dict[str, type[Evaluator]] = {}
_loaded = False


def register(cls: type[Evaluator]) -> type[Evaluator]:
    """Register an evaluator class under its ``id`` (usable as a decorator)."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", cls.id):
        raise ConfigError(f"Evaluator id '{cls.id}' must be lowercase letters, digits and _.")
    _CATALOGUE[cls.id] = cls
    return cls


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    from studio.evaluators.metrics import EVALUATORS as METRICS
    from studio.evaluators.model_backed import EVALUATORS as MODEL_BACKED
    from studio.evaluators.rag import EVALUATORS as RAG
    from studio.evaluators.structured import EVALUATORS as STRUCTURED
    from studio.evaluators.text import EVALUATORS as TEXT

    for cls in TEXT + STRUCTURED + METRICS + MODEL_BACKED + RAG:
        register(cls)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = ep.load()
        except Exception:  # a broken plug-in must not take the catalogue down
            log.exception("could not load the evaluator plug-in %s", ep.name)
            continue
        if isinstance(loaded, type) and issubclass(loaded, Evaluator):
            register(loaded)


def catalogue() -> dict[str, type[Evaluator]]:
    """Every registered evaluator class, by id, in registration order."""
    _load()
    return dict(_CATALOGUE)


def evaluator_class(evaluator_id: str) -> type[Evaluator]:
    _load()
    try:
        return _CATALOGUE[evaluator_id]
    except KeyError:
        known = ", ".join(sorted(_CATALOGUE))
        raise ConfigError(
            f"Unknown evaluator '{evaluator_id}'.",
            hint=f"Known evaluators: {known}. `studio eval evaluators` describes each.",
        ) from None


def build(evaluator_id: str, options: dict[str, Any] | None = None) -> Evaluator:
    """An evaluator from its id and options (options are validated by its ``Options``)."""
    return evaluator_class(evaluator_id)(options or {})


def _is_list(annotation: Any) -> bool:
    if get_origin(annotation) is list:
        return True
    return any(get_origin(a) is list for a in get_args(annotation))


def parse_spec(spec: str) -> Evaluator:
    """``id`` or ``id:key=value,key=value``; list options separate items with ``|``.

    A value may contain commas as long as no ``key=`` follows them; JSON values
    (a schema, say) are accepted as written.
    """
    evaluator_id, _, rest = spec.strip().partition(":")
    cls = evaluator_class(evaluator_id.strip())
    options: dict[str, Any] = {}
    if rest.strip():
        for part in re.split(r",(?=\s*[A-Za-z_][A-Za-z0-9_]*\s*=)", rest):
            key, eq, value = part.partition("=")
            key = key.strip()
            if not eq or not key:
                raise RequestValidationError(
                    [FieldProblem(part.strip() or "(empty)", "must be written key=value")],
                    what=f"options for {cls.id}",
                )
            field = cls.Options.model_fields.get(key)
            if field is not None and _is_list(field.annotation):
                options[key] = [v for v in value.split("|") if v != ""]
            else:
                options[key] = value
    return cls(options)
