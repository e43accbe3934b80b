"""Prompt templates: ``Write an email about {{event}} for {{demographic}}``.

A :class:`PromptTemplate` is a completion prompt or chat messages; each part is
Jinja2 rendered in the stricter sandbox of :mod:`studio.core.sandbox`. This
module finds the variables a prompt uses, checks them against a dataset's
columns (with a did-you-mean sentence) and renders rows. Every failure is a
:class:`~studio.core.errors.PromptTemplateError`::

    PromptTemplateError (StudioError)
    ├── PromptSyntaxError      the template does not parse (names the line)
    ├── UnsafeTemplateError    reaches for Python internals or unsupported tags
    ├── TemplateLimitError     output, range, loop, number or time budget exceeded
    ├── MissingColumnsError    the template uses a variable the dataset lacks
    └── PromptRenderError      anything else that fails while rendering a row
"""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import jinja2
from jinja2 import meta
from pydantic import BaseModel, ConfigDict, Field, model_validator

from studio.core.errors import (
    MissingColumnsError,
    PromptRenderError,
    PromptSyntaxError,
    PromptTemplateError,
    StudioError,
    TemplateLimitError,
    UnsafeTemplateError,
)
from studio.core.sandbox import (
    BUDGET,
    ENV,
    MAX_LOOP_ITERATIONS,
    MAX_OUTPUT_CHARS,
    MAX_RANGE,
    RENDER_TIMEOUT_S,
    Budget,
    Problem,
    compiled,
    syntax_problem,
    too_big,
    user_error,
)
from studio.core.schemas import Message

__all__ = [
    "MAX_LOOP_ITERATIONS",
    "MAX_OUTPUT_CHARS",
    "MAX_RANGE",
    "RENDER_TIMEOUT_S",
    "ColumnCheck",
    "MessageTemplate",
    "MissingColumnsError",
    "PromptRenderError",
    "PromptSyntaxError",
    "PromptTemplate",
    "PromptTemplateError",
    "TemplateLimitError",
    "UnsafeTemplateError",
    "check_columns",
    "prompt_variables",
    "render",
    "render_preview",
    "require_columns",
    "template_variables",
    "validate_prompt",
]

# -- the prompt model ---------------------------------------------------------


class MessageTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"] = Field(description="Who speaks.")
    content: str = Field(description="The message text; a template over the row's columns.")


class PromptTemplate(BaseModel):
    """A completion template, or a chat (optional system prompt + messages)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["completion", "chat"] = "completion"
    template: str = Field(default="", description="Completion prompt template.")
    system: str = Field(default="", description="Chat system prompt template.")
    messages: list[MessageTemplate] = Field(default_factory=list)

    @model_validator(mode="after")
    def _parts_match_kind(self) -> PromptTemplate:
        if self.kind == "completion" and (self.messages or self.system):
            raise ValueError("a completion prompt has only 'template'; use kind 'chat'")
        if self.kind == "chat" and self.template:
            raise ValueError("a chat prompt uses 'system' and 'messages', not 'template'")
        if self.kind == "chat" and not self.messages:
            raise ValueError("a chat prompt needs at least one message")
        return self

    @classmethod
    def completion(cls, template: str) -> PromptTemplate:
        return cls(kind="completion", template=template)

    @classmethod
    def chat(cls, messages: Iterable[Mapping[str, str]], *, system: str = "") -> PromptTemplate:
        items = [MessageTemplate.model_validate(dict(m)) for m in messages]
        return cls(kind="chat", system=system, messages=items)

    def parts(self) -> list[tuple[str, str]]:
        """(label, source) of every template in the prompt, in order."""
        if self.kind == "completion":
            return [("the template", self.template)]
        out = [("the system prompt", self.system)] if self.system else []
        for i, m in enumerate(self.messages, start=1):
            out.append((f"message {i} ({m.role})", m.content))
        return out


# -- variables and columns ----------------------------------------------------


def template_variables(source: str) -> list[str]:
    """Top-level variables the template reads, in order of first appearance."""
    return list(_variables(source, "the template"))


@lru_cache(maxsize=1024)
def _variables(source: str, label: str) -> tuple[str, ...]:
    try:
        names = meta.find_undeclared_variables(ENV.parse(source))
        tokens = list(ENV.lex(source))
    except jinja2.TemplateSyntaxError as exc:
        raise user_error(syntax_problem(exc), label) from None
    except Exception as exc:
        problem = Problem(PromptSyntaxError, f"cannot be parsed ({exc})", None)
        raise user_error(problem, label) from None
    ordered: list[str] = []
    previous = ""
    for _, kind, value in tokens:
        if kind == "name" and value in names and value not in ordered and previous != "dot":
            ordered.append(value)
        previous = kind
    return (*ordered, *sorted(names - set(ordered)))


def prompt_variables(prompt: PromptTemplate) -> list[str]:
    """Variables across every part of the prompt, in order of first appearance."""
    seen: list[str] = []
    for label, source in prompt.parts():
        names = _variables(source, label)
        seen += [n for n in names if n not in seen]
    return seen


@dataclass(frozen=True)
class ColumnCheck:
    used: list[str]
    missing: list[str]
    unused: list[str]

    @property
    def ok(self) -> bool:
        return not self.missing


def check_columns(prompt: PromptTemplate, columns: list[str]) -> ColumnCheck:
    used = prompt_variables(prompt)
    return ColumnCheck(
        used=used,
        missing=[v for v in used if v not in columns],
        unused=[c for c in columns if c not in used],
    )


def _missing_message(missing: list[str], columns: list[str], where: str) -> str:
    sentences = []
    for name in missing:
        sentence = f"The template uses {{{{{name}}}}}, but {where} has no column '{name}'"
        close = difflib.get_close_matches(name, columns, n=1, cutoff=0.6)
        sentence += f" — did you mean '{close[0]}'?" if close else "."
        sentences.append(sentence)
    listed = ", ".join(columns) if columns else "(none)"
    return " ".join(sentences) + f" Columns: {listed}."


def require_columns(prompt: PromptTemplate, columns: list[str]) -> ColumnCheck:
    """Like :func:`check_columns`, but raise :class:`MissingColumnsError` if any are missing."""
    check = check_columns(prompt, columns)
    if check.missing:
        message = _missing_message(check.missing, columns, "the dataset")
        raise MissingColumnsError(message, missing=check.missing, columns=list(columns))
    return check


def validate_prompt(prompt: PromptTemplate) -> None:
    """Compile every part; raise the first syntax or safety problem."""
    for label, source in prompt.parts():
        compiled(source, label)


# -- rendering ----------------------------------------------------------------


def _render_part(source: str, row: Mapping[str, Any], label: str) -> str:
    template = compiled(source, label)
    token = BUDGET.set(Budget(deadline=time.monotonic() + RENDER_TIMEOUT_S))
    try:
        chunks, size = [], 0
        for chunk in template.generate(dict(row)):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise too_big("a prompt")
            chunks.append(chunk)
        return "".join(chunks)
    except PromptTemplateError:
        raise
    except jinja2.exceptions.SecurityError as exc:
        what = re.sub(r"^access to (.*?) is unsafe\.?$", r"\1", str(exc))
        raise UnsafeTemplateError(
            f"This template tries to access {what} in {label}, which is not allowed.",
            hint="Templates may use dataset columns, filters, if and for.",
        ) from None
    except jinja2.UndefinedError as exc:
        match = re.fullmatch(r"'(.+)' is undefined", str(exc))
        if match:
            columns = [str(c) for c in row]
            message = _missing_message([match.group(1)], columns, "this row")
            raise MissingColumnsError(message, missing=[match.group(1)], columns=columns) from None
        raise PromptRenderError(
            f"Rendering {label} failed: {exc}.",
            hint="Check the variable and attribute names, or guard them with 'is defined'.",
        ) from None
    except Exception as exc:
        raise PromptRenderError(
            f"Rendering {label} failed: {type(exc).__name__}: {exc}",
            hint="Check the filters and expressions against this row's values.",
        ) from None
    finally:
        BUDGET.reset(token)


def render(prompt: PromptTemplate, row: Mapping[str, Any]) -> str | list[Message]:
    """Render a prompt for one dataset row: a string, or chat messages (system first)."""
    if prompt.kind == "completion":
        return _render_part(prompt.template, row, "the template")
    messages: list[Message] = []
    if prompt.system:
        text = _render_part(prompt.system, row, "the system prompt")
        if text.strip():
            messages.append(Message(role="system", content=text))
    for i, m in enumerate(prompt.messages, start=1):
        content = _render_part(m.content, row, f"message {i} ({m.role})")
        messages.append(Message(role=m.role, content=content))
    return messages


def render_preview(
    prompt: PromptTemplate, row: Mapping[str, Any]
) -> tuple[str | list[Message] | None, str | None]:
    """Like :func:`render` for UI previews: ``(result, None)`` or ``(None, error message)``."""
    try:
        return render(prompt, row), None
    except StudioError as exc:
        return None, str(exc)
    except Exception as exc:  # a preview must never break the page
        return None, f"The template could not be rendered: {type(exc).__name__}: {exc}"
