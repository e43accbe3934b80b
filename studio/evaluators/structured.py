"""JSON checks: the output is JSON, matches a JSON Schema, or has a field with a value.

Models often wrap JSON in a Markdown code fence (```json ... ```); by default
the fence is removed before parsing. Schemas are checked with the
``jsonschema`` library (the draft the schema declares, 2020-12 by default);
an invalid schema is refused when the evaluator is configured, not per row.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError
from pydantic import Field, field_validator

from studio.evaluators.base import (
    EvalItem,
    Evaluator,
    EvaluatorOptions,
    Verdict,
    fill_columns,
)

__all__ = ["EVALUATORS", "IsJson", "JsonField", "JsonSchema", "parse_output_json"]

_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(.*?)\n?\s*```\s*$", re.DOTALL)
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class _JsonOptions(EvaluatorOptions):
    strip_code_fence: bool = Field(
        default=True, description="Remove a Markdown code fence (```json … ```) before parsing."
    )


def parse_output_json(output: str, strip_code_fence: bool = True) -> tuple[Any, str | None]:
    """(value, None) or (None, a sentence saying why the output is not JSON)."""
    text = output
    if strip_code_fence:
        fenced = _FENCE.match(text)
        if fenced:
            text = fenced.group(1)
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"The output is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."


class IsJson(Evaluator):
    id = "is_json"
    name = "Is JSON"
    family = "json"
    description = "The output parses as JSON."
    Options = _JsonOptions

    def evaluate(self, item: EvalItem) -> Verdict:
        _, problem = parse_output_json(item.output, self.options.strip_code_fence)
        if problem:
            return Verdict.check(False, problem)
        return Verdict.check(True, "The output is valid JSON.")


class JsonSchema(Evaluator):
    id = "json_schema"
    name = "JSON Schema"
    family = "json"
    description = "The output is JSON that matches a JSON Schema."

    class Options(_JsonOptions):
        json_schema: dict[str, Any] = Field(
            description='A JSON Schema, e.g. {"type": "object", "required": ["answer"]}.'
        )

        @field_validator("json_schema", mode="before")
        @classmethod
        def _parse(cls, value: Any) -> Any:
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"is not JSON ({exc.msg})") from exc
            if not isinstance(value, dict):
                raise ValueError("must be a JSON object")
            try:
                jsonschema.validators.validator_for(value).check_schema(value)
            except SchemaError as exc:
                raise ValueError(f"is not a valid JSON Schema ({exc.message})") from exc
            return value

    def __init__(self, options: object = None) -> None:
        super().__init__(options)  # type: ignore[arg-type]
        schema = self.options.json_schema
        self._validator = jsonschema.validators.validator_for(schema)(schema)

    def evaluate(self, item: EvalItem) -> Verdict:
        value, problem = parse_output_json(item.output, self.options.strip_code_fence)
        if problem:
            return Verdict.check(False, problem)
        error = jsonschema.exceptions.best_match(self._validator.iter_errors(value))
        if error is None:
            return Verdict.check(True, "The output matches the schema.")
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        return Verdict.check(False, f"At {where}: {error.message}.")


def _walk(value: Any, path: str) -> tuple[bool, Any]:
    current = value
    for name, index in _PATH_PART.findall(path):
        if index:
            if not isinstance(current, list) or int(index) >= len(current):
                return False, None
            current = current[int(index)]
        else:
            if not isinstance(current, dict) or name not in current:
                return False, None
            current = current[name]
    return True, current


class JsonField(Evaluator):
    id = "json_field"
    name = "JSON field"
    family = "json"
    description = "A field of the JSON output (a path such as answer.items[0].id) has a value."

    class Options(_JsonOptions):
        path: str = Field(min_length=1, max_length=500, description="Where the field is: a.b[0].c.")
        equals: str = Field(
            default="",
            max_length=10_000,
            description="The value it must have; may name columns ({{label}}). JSON values "
            "(3, true, null) compare as JSON. Empty: the dataset's expected output.",
        )
        case_sensitive: bool = Field(default=True, description="Tell upper and lower case apart.")

        @field_validator("path")
        @classmethod
        def _path(cls, path: str) -> str:
            if "".join(m.group(0) for m in _PATH_PART.finditer(path)).replace(".", "") != (
                path.replace(".", "")
            ):
                raise ValueError("must be names and [index] parts separated by dots, e.g. a.b[0]")
            return path

    def evaluate(self, item: EvalItem) -> Verdict:
        o = self.options
        value, problem = parse_output_json(item.output, o.strip_code_fence)
        if problem:
            return Verdict.check(False, problem)
        found, actual = _walk(value, o.path)
        if not found:
            return Verdict.check(False, f"The output has no field {o.path}.")
        expected_text = fill_columns(o.equals, item.row) if o.equals else item.reference
        if expected_text is None:
            return Verdict.check(True, f"The output has the field {o.path}.")
        try:
            expected: Any = json.loads(expected_text)
        except json.JSONDecodeError:
            expected = expected_text
        if isinstance(expected, str) and not isinstance(actual, str):
            actual = json.dumps(actual) if not isinstance(actual, int | float) else str(actual)
        if isinstance(expected, str) and isinstance(actual, str) and not o.case_sensitive:
            same = expected.casefold() == actual.casefold()
        else:
            same = expected == actual
        shown = json.dumps(actual, ensure_ascii=False)[:60]
        if same:
            return Verdict.check(True, f"{o.path} is {shown}, as expected.")
        wanted = json.dumps(expected, ensure_ascii=False)[:60]
        return Verdict.check(False, f"{o.path} is {shown}, expected {wanted}.")


EVALUATORS: list[type[Evaluator]] = [IsJson, JsonSchema, JsonField]
