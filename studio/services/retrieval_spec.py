"""A variant's retrieval step, as stored: which knowledge base, the query, how many chunks.

A :class:`RetrievalSpec` is what ``VariantVersion.retrieval`` holds (an empty dict means
no retrieval step) and what a run's configuration snapshot records::

    {"kb_id": 3,                      the knowledge base searched (of the variant's app)
     "query_template": "{{question}}",  the search query, rendered from the row like a prompt
     "top_k": 4,                      chunks given to the prompt, 1 to 20
     "reranker": null,                a RERANKING model's name or id, or null for none
     "candidates": null,              chunks searched for the reranker to reorder
                                      (default 4 x top_k, at most 50; unused without one)
     "hybrid": false,                 BM25 fused with the vector ranking
     "join": "\\n\\n---\\n\\n"}           what separates the chunks' text in {{context}}

The step gives the prompt two variables, :data:`RETRIEVAL_VARIABLES`: ``context`` (the
chunks' text joined by ``join``) and ``chunks`` (a list of ``{text, document, score, id,
document_id, position}`` for templates that loop with ``{% for c in chunks %}``). They
win over dataset columns of the same name. This module is light on purpose (pydantic and
the template engine only): listing variants does not load the search machinery, which
lives in :mod:`studio.services.retrieval`.

Rules: none here (pure validation); :mod:`studio.services.retrieval` checks the knowledge
base and the reranker against the caller.
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from studio.core.errors import (
    FieldProblem,
    MissingColumnsError,
    PromptTemplateError,
    RequestValidationError,
    StudioError,
)
from studio.core.sandbox import compiled
from studio.core.schemas import problems_from_pydantic
from studio.core.templates import (
    ColumnCheck,
    PromptTemplate,
    check_columns,
    prompt_variables,
    render,
    require_columns,
    template_variables,
)

__all__ = [
    "DEFAULT_JOIN",
    "MAX_TOP_K",
    "RETRIEVAL_VARIABLES",
    "RetrievalSpec",
    "caller_variables",
    "check_prompt_columns",
    "parse_retrieval",
    "query_variables",
    "render_query",
    "require_prompt_columns",
    "retrieval_dict",
]

DEFAULT_JOIN = "\n\n---\n\n"
MAX_TOP_K = 20
RETRIEVAL_VARIABLES = ("context", "chunks")
QUERY_LABEL = "the retrieval query template"


class RetrievalSpec(BaseModel):
    """A retrieval step: search a knowledge base with a query made from the row."""

    model_config = ConfigDict(extra="forbid")

    kb_id: int = Field(ge=1, le=2**31 - 1, description="The knowledge base to search.")
    query_template: str = Field(
        default="{{question}}",
        min_length=1,
        max_length=10_000,
        description="The search query, a template over the row's columns.",
    )
    top_k: int = Field(default=4, ge=1, le=MAX_TOP_K, description="Chunks given to the prompt.")
    reranker: str | None = Field(
        default=None, description="A RERANKING model (name or id) that reorders the candidates."
    )
    candidates: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="Chunks searched for the reranker (default 4 x top_k, at most 50).",
    )
    hybrid: bool = Field(default=False, description="Fuse BM25 with the vector ranking.")
    join: str = Field(
        default=DEFAULT_JOIN, max_length=200, description="Separator of the chunks in {{context}}."
    )

    @field_validator("reranker", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def fetch(self) -> int:
        """How many chunks the search asks for (more than ``top_k`` with a reranker)."""
        if not self.reranker:
            return self.top_k
        return max(self.top_k, self.candidates or min(4 * self.top_k, 50))


def parse_retrieval(data: Any) -> RetrievalSpec | None:
    """A spec from a stored or sent document; None for no retrieval step (None, ``{}``)."""
    if data is None or isinstance(data, RetrievalSpec):
        return data
    if not isinstance(data, dict):
        problem = FieldProblem("retrieval", "must be an object, or empty for no retrieval")
        raise RequestValidationError([problem], what="retrieval step")
    if not data:
        return None
    try:
        return RetrievalSpec.model_validate(data)
    except PydanticValidationError as exc:
        problems = problems_from_pydantic(exc, RetrievalSpec)
        raise RequestValidationError(problems, what="retrieval step") from exc


def retrieval_dict(spec: RetrievalSpec | None) -> dict[str, Any]:
    """What ``VariantVersion.retrieval`` stores for ``spec`` (``{}`` for none)."""
    return spec.model_dump(mode="json") if spec is not None else {}


def query_variables(spec: RetrievalSpec) -> list[str]:
    """The columns the query template reads (its syntax checked first, with a sentence)."""
    compiled(spec.query_template, QUERY_LABEL)
    return template_variables(spec.query_template)


def caller_variables(prompt: PromptTemplate, spec: RetrievalSpec | None) -> list[str]:
    """The variables a caller of a deployed endpoint sends: the prompt's, without the ones
    a retrieval step fills in, and the query template's."""
    used = prompt_variables(prompt)
    if spec is None:
        return used
    used = [v for v in used if v not in RETRIEVAL_VARIABLES]
    return used + [v for v in query_variables(spec) if v not in used]


def _missing_sentence(name: str, columns: list[str], where: str) -> str:
    sentence = (
        f"The retrieval query template uses {{{{{name}}}}}, but {where} has no column '{name}'"
    )
    close = difflib.get_close_matches(name, columns, n=1, cutoff=0.6)
    sentence += f" — did you mean '{close[0]}'?" if close else "."
    return sentence + f" Columns: {', '.join(columns) if columns else '(none)'}."


def render_query(spec: RetrievalSpec, row: dict[str, Any]) -> str:
    """The search query for one row; a missing column or an empty query is a sentence."""
    try:
        query = render(PromptTemplate.completion(spec.query_template), row)
    except MissingColumnsError as exc:
        columns = [str(c) for c in row]
        message = _missing_sentence(exc.missing[0], columns, "this row")
        raise MissingColumnsError(message, missing=exc.missing, columns=columns) from None
    except PromptTemplateError as exc:
        raise StudioError(
            f"The retrieval query could not be made: {exc}",
            hint="Check the query template on the Retrieval settings.",
        ) from None
    assert isinstance(query, str)
    if not query.strip():
        raise StudioError(
            "The retrieval query is empty for this row.",
            hint="Check that the columns the query template uses have values in this row.",
        )
    return query


def _needs_retrieval(missing: list[str]) -> MissingColumnsError:
    names = [m for m in missing if m in RETRIEVAL_VARIABLES]
    used = " and ".join("{{" + n + "}}" for n in names)
    return MissingColumnsError(
        f"The template uses {used}, which a retrieval step fills in, but this configuration "
        "has no retrieval step (and the dataset has no such column).",
        missing=missing,
        columns=[],
    )


def check_prompt_columns(
    prompt: PromptTemplate, spec: RetrievalSpec | None, columns: list[str]
) -> ColumnCheck:
    """:func:`~studio.core.templates.check_columns`, where a retrieval step provides
    ``context`` and ``chunks`` (they are not dataset columns then)."""
    if spec is None:
        return check_columns(prompt, columns)
    provided = [*columns, *(v for v in RETRIEVAL_VARIABLES if v not in columns)]
    check = check_columns(prompt, provided)
    return ColumnCheck(
        used=check.used,
        missing=check.missing,
        unused=[c for c in check.unused if c not in RETRIEVAL_VARIABLES or c in columns],
    )


def require_prompt_columns(
    prompt: PromptTemplate, spec: RetrievalSpec | None, columns: list[str]
) -> ColumnCheck:
    """Refuse, with a sentence, a prompt or a query template that names a column the
    dataset lacks, and ``{{context}}``/``{{chunks}}`` without a retrieval step."""
    if spec is None:
        check = check_columns(prompt, columns)
        if any(m in RETRIEVAL_VARIABLES for m in check.missing):
            error = _needs_retrieval(check.missing)
            error.hint = (
                "Switch on retrieval (pick a knowledge base) for this variant, or remove "
                "those variables from the template."
            )
            raise error
        return require_columns(prompt, columns)
    for name in query_variables(spec):
        if name not in columns:
            message = _missing_sentence(name, columns, "the dataset")
            raise MissingColumnsError(message, missing=[name], columns=list(columns))
    provided = [*columns, *(v for v in RETRIEVAL_VARIABLES if v not in columns)]
    require_columns(prompt, provided)
    return check_prompt_columns(prompt, spec, columns)
