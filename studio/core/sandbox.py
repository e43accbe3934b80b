"""The sandbox prompt templates render in: Jinja2's immutable sandbox, made stricter.

Before a template is compiled its syntax tree is checked: names starting with
an underscore, ``self``, macros, includes and recursive loops are refused. The
compiled code is also rewritten so that every loop, list, dict and string
concatenation passes through a budget: at most :data:`MAX_OUTPUT_CHARS`
characters (or items), :data:`MAX_LOOP_ITERATIONS` loop steps and
:data:`RENDER_TIMEOUT_S` seconds per render. :mod:`studio.core.templates`
builds prompts on top of it.
"""

from __future__ import annotations

import re
import string
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache, wraps
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.filters import FILTERS
from jinja2.runtime import Namespace
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import pass_context
from jinja2.visitor import NodeTransformer

from studio.core.errors import (
    PromptSyntaxError,
    PromptTemplateError,
    TemplateLimitError,
    UnsafeTemplateError,
)

__all__ = [
    "BUDGET",
    "ENV",
    "MAX_LOOP_ITERATIONS",
    "MAX_OUTPUT_CHARS",
    "MAX_RANGE",
    "RENDER_TIMEOUT_S",
    "Budget",
    "Problem",
    "compiled",
    "syntax_problem",
    "too_big",
    "user_error",
]

MAX_OUTPUT_CHARS = 1_000_000
MAX_RANGE = 10_000
MAX_LOOP_ITERATIONS = 100_000
MAX_INT_BITS = 100_000
RENDER_TIMEOUT_S = 2.0

_FILTER_NAMES = (
    "abs attr capitalize center count d default dictsort e escape filesizeformat first float "
    "forceescape format groupby indent int items join last length list lower map max min "
    "reject rejectattr replace reverse round safe select selectattr sort string striptags sum "
    "title tojson trim truncate unique upper urlencode wordcount wordwrap"
)
_ALLOWED_FILTERS = _FILTER_NAMES.split()
_REFUSED_TAGS: dict[type[nodes.Node], str] = {
    nodes.Macro: "{% macro %}",
    nodes.CallBlock: "{% call %}",
    nodes.Extends: "{% extends %}",
    nodes.Include: "{% include %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from ... import %}",
    nodes.AssignBlock: "{% set %}...{% endset %}",
    nodes.FilterBlock: "{% filter %}",
}
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")


# -- budget -------------------------------------------------------------------


@dataclass
class Budget:
    deadline: float
    steps: int = 0

    def tick(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > MAX_LOOP_ITERATIONS:
            raise TemplateLimitError(
                f"The template loops more than {MAX_LOOP_ITERATIONS:,} times for one row.",
                hint="Loop over fewer items.",
            )
        if time.monotonic() > self.deadline:
            raise TemplateLimitError(
                f"The template took longer than {RENDER_TIMEOUT_S:g} s to render one row.",
                hint="Simplify its loops and filters.",
            )


BUDGET: ContextVar[Budget | None] = ContextVar("studio_template_budget", default=None)


def _tick(n: int = 1) -> None:
    budget = BUDGET.get()
    if budget is not None:
        budget.tick(n)


def too_big(what: str) -> TemplateLimitError:
    return TemplateLimitError(
        f"The template builds {what} larger than {MAX_OUTPUT_CHARS:,} characters.",
        hint="Shorten the text or loop over fewer items.",
    )


def _size(value: Any, limit: int = MAX_OUTPUT_CHARS) -> int:
    """Expanded size (characters + items) of a value; stops counting past ``limit``."""
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 1 + (len(item) if len(item) > limit else 0)
            stack.extend(item if len(item) <= limit else ())
        elif isinstance(item, dict):
            total += 1
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, int) and item.bit_length() > MAX_INT_BITS:
            raise TemplateLimitError(
                "The template computes a number with too many digits.",
                hint="Use smaller numbers.",
            )
        else:
            total += 1
    return total


def _cap(value: Any) -> Any:
    _tick(0)
    if _size(value) > MAX_OUTPUT_CHARS:
        raise too_big("text or a list")
    return value


def _check_format(fmt: str, percent: bool) -> None:
    widths: list[str] = []
    if percent:
        for match in _PERCENT_SPEC.finditer(fmt.replace("%%", "")):
            widths += [g for g in match.groups() if g]
    else:
        for _, field, spec, _ in string.Formatter().parse(fmt):
            if field is not None and spec:
                if "{" in spec:
                    raise UnsafeTemplateError(
                        "This template tries to use a nested format width, which is not allowed.",
                        hint="Write the width as a plain number.",
                    )
                widths += re.findall(r"\d+", spec)
    if any(w == "*" or int(w) > MAX_OUTPUT_CHARS for w in widths):
        raise too_big("a formatted value")


def _predicted_replace(text: str, old: str, new: str, count: int = -1) -> int:
    hits = text.count(old) if old else len(text) + 1
    if count >= 0:
        hits = min(hits, count)
    return len(text) + hits * max(len(new) - len(old), 0)


def _precheck(name: str, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Refuse calls whose result would blow the budget before computing it."""
    params = [*args, *kwargs.values()]
    if name in ("center", "ljust", "rjust", "zfill", "indent", "batch", "slice", "wordwrap"):
        widths = [len(p) if isinstance(p, str) else p for p in params if isinstance(p, int | str)]
        lines = value.count("\n") + 1 if isinstance(value, str) else 1
        if any(isinstance(w, int) and w * lines > MAX_OUTPUT_CHARS for w in widths):
            raise too_big("padded or indented text")
    elif name == "expandtabs" and isinstance(value, str):
        tab = params[0] if params and isinstance(params[0], int) else 8
        if len(value) + value.count("\t") * tab > MAX_OUTPUT_CHARS:
            raise too_big("text")
    elif name == "replace" and isinstance(value, str):
        old, new = (str(p) for p in params[:2]) if len(params) >= 2 else ("", "")
        count = params[2] if len(params) > 2 and isinstance(params[2], int) else -1
        if _predicted_replace(value, old, new, count) > MAX_OUTPUT_CHARS:
            raise too_big("text")
    elif name == "join":
        items = list(value if isinstance(value, Iterable) else ())
        sep = args[0] if args and isinstance(args[0], str) else kwargs.get("d", "")
        if len(str(sep)) * len(items) + _size(items) > MAX_OUTPUT_CHARS:
            raise too_big("joined text")
        return items
    elif name == "format" and isinstance(value, str):
        _check_format(value, percent=True)
    return value


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    passes_arg = getattr(func, "jinja_pass_arg", None) is not None

    @wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _tick(0)
        lead, (value, *rest) = (args[:1], args[1:]) if passes_arg else ((), args)
        value = _precheck(name, value, tuple(rest), kwargs)
        return _cap(func(*lead, value, *rest, **kwargs))

    return guarded


@pass_context
def _loop_budget(_context: Any, iterable: Any) -> Iterable[Any]:
    for item in iterable:
        _tick()
        yield item


@pass_context
def _budgeted(_context: Any, value: Any) -> Any:
    return _cap(value)


def _safe_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise TemplateLimitError(
            f"The template asks for range() of {len(numbers):,} numbers; "
            f"the limit is {MAX_RANGE:,}.",
            hint="Use a smaller range.",
        )
    return numbers


class _Namespace(Namespace):
    def __repr__(self) -> str:
        return "<namespace>"


def _namespace(*args: Any, **kwargs: Any) -> _Namespace:
    return _Namespace(*args, **kwargs)


def _finalize(value: Any) -> Any:
    """Refuse printing functions and classes (their repr shows Python internals)."""
    if not isinstance(value, jinja2.Undefined) and (callable(value) or isinstance(value, type)):
        raise UnsafeTemplateError(
            "This template tries to print a function or class instead of a value, "
            "which is not allowed.",
            hint="Call methods with (), e.g. {{ name.upper() }}, or use a filter.",
        )
    return value


# -- environment --------------------------------------------------------------


class _PromptEnvironment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _tick(0)
        if operator == "**" and isinstance(left, int) and isinstance(right, int):
            if right > 0 and max(left.bit_length(), 1) * right > MAX_INT_BITS:
                raise TemplateLimitError(
                    f"The template computes {left} ** {right}, a number too large to use.",
                    hint="Use smaller numbers.",
                )
        elif operator == "*":
            for seq, times in ((left, right), (right, left)):
                repeats = isinstance(seq, str | list | tuple) and isinstance(times, int)
                if repeats and _size(seq) * max(times, 0) > MAX_OUTPUT_CHARS:
                    raise too_big("repeated text")
        elif operator == "%" and isinstance(left, str):
            _check_format(left, percent=True)
        return _cap(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _tick(0)
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            name = getattr(__obj, "__name__", "")
            if name == "join":
                args = (_precheck("join", args[0] if args else (), (owner,), {}), *args[1:])
            else:
                _precheck(name, owner, args, kwargs)
        return _cap(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        fmt: str = value.__self__

        def guarded(*args: Any, **kwargs: Any) -> str:
            _check_format(fmt, percent=False)
            return str(_cap(wrapped(*args, **kwargs)))

        return guarded


def _make_environment() -> _PromptEnvironment:
    env = _PromptEnvironment(
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        finalize=_finalize,
    )
    env.globals = {"range": _safe_range, "namespace": _namespace}
    env.filters = {name: _guard_filter(name, FILTERS[name]) for name in _ALLOWED_FILTERS}
    env.filters["studio_loop_budget"] = _loop_budget
    env.filters["studio_budget"] = _budgeted
    return env


ENV = _make_environment()


class _Budgeter(NodeTransformer):
    """Route loops, literals and concatenation through the render budget."""

    def _wrap(self, node: nodes.Expr, name: str) -> nodes.Expr:
        wrapped = nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)
        wrapped.set_environment(ENV)
        return wrapped

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = self._wrap(node.iter, "studio_loop_budget")  # type: ignore[arg-type]
        return node

    def _visit_built(self, node: nodes.Expr) -> nodes.Node:
        self.generic_visit(node)
        return self._wrap(node, "studio_budget")

    visit_Concat = visit_List = visit_Dict = _visit_built

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        return self._visit_built(node) if node.ctx == "load" else self.generic_visit(node)


class Problem(Exception):
    """Internal: a compile-time problem, turned into a user error with the part's label."""

    def __init__(self, kind: type[PromptTemplateError], detail: str, lineno: int | None) -> None:
        super().__init__(detail)
        self.kind, self.detail, self.lineno = kind, detail, lineno


def _refuse_unsafe(tree: nodes.Template) -> None:
    for node in tree.find_all(nodes.Node):
        line = getattr(node, "lineno", None)
        if isinstance(node, tuple(_REFUSED_TAGS)):
            tag = _REFUSED_TAGS[type(node)]
            raise Problem(UnsafeTemplateError, f"uses {tag}", line)
        if isinstance(node, nodes.For) and node.recursive:
            raise Problem(UnsafeTemplateError, "uses a recursive loop", line)
        if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
            raise Problem(UnsafeTemplateError, f"tries to access '{node.attr}'", line)
        if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            key = node.arg.value
            if isinstance(key, str) and key.startswith("_"):
                raise Problem(UnsafeTemplateError, f"tries to access '{key}'", line)
        if isinstance(node, nodes.Filter) and node.name == "attr":
            for arg in node.args:
                if isinstance(arg, nodes.Const) and str(arg.value).startswith("_"):
                    raise Problem(UnsafeTemplateError, f"tries to access '{arg.value}'", line)
        if isinstance(node, nodes.Name) and node.name == "self":
            raise Problem(UnsafeTemplateError, "tries to access 'self'", line)


def syntax_problem(exc: jinja2.TemplateSyntaxError) -> Problem:
    detail = (exc.message or "invalid syntax").rstrip(".")
    if detail.startswith("No filter named"):
        detail += f" (available filters: {', '.join(_ALLOWED_FILTERS)})"
    return Problem(PromptSyntaxError, detail, exc.lineno)


def _parse(source: str) -> nodes.Template:
    """Parse and refuse unsafe constructs; a fresh tree each call (compiling mutates it)."""
    try:
        tree = ENV.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise syntax_problem(exc) from exc
    except Exception as exc:
        raise Problem(PromptSyntaxError, f"cannot be parsed ({exc})", None) from exc
    _refuse_unsafe(tree)
    return tree


@lru_cache(maxsize=1024)
def _compile(source: str) -> jinja2.Template:
    tree = _Budgeter().visit(_parse(source))
    try:
        return ENV.from_string(tree)
    except jinja2.TemplateSyntaxError as exc:
        raise syntax_problem(exc) from exc
    except Exception as exc:
        raise Problem(PromptSyntaxError, f"cannot be compiled ({exc})", None) from exc


def user_error(problem: Problem, label: str) -> PromptTemplateError:
    line = f" (line {problem.lineno})" if problem.lineno else ""
    if problem.kind is UnsafeTemplateError:
        return UnsafeTemplateError(
            f"This template {problem.detail} in {label}{line}, which is not allowed.",
            hint="Templates may use dataset columns, filters, if and for; "
            "names starting with '_', 'self', macros and includes are refused.",
        )
    return PromptSyntaxError(
        f"Syntax error in {label}{line}: {problem.detail}.",
        lineno=problem.lineno,
        hint="Check that every {{ has a matching }} and every {% if %} or {% for %} is closed.",
    )


def compiled(source: str, label: str) -> jinja2.Template:
    try:
        return _compile(source)
    except Problem as problem:
        raise user_error(problem, label) from None
