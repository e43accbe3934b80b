"""The examples a fine-tuning job learns from, checked before anything starts.

A dataset version gives either a prompt column and a completion column (each row one
example: the model learns to answer the prompt with the completion) or one column of
chat conversations in the JSON Lines chat format (``[{"role": "user", "content": ...},
{"role": "assistant", "content": ...}]``; the last message is the assistant's answer).

:func:`check_examples` refuses, with a sentence naming the rows, a dataset the job
could not learn from: a missing column, empty targets, too few or too many rows, or rows
longer than the base model's context window. The split into training and validation rows
is deterministic (a seeded shuffle), so a resumed job trains on the same rows.

Rules: no check here; :mod:`studio.services.finetune` checks the caller first.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel

from studio.core.errors import DatasetError
from studio.core.schemas import Message

__all__ = [
    "MAX_ROWS",
    "MIN_ROWS",
    "Example",
    "Split",
    "check_examples",
    "examples_from_rows",
    "split_examples",
]

MIN_ROWS = 4  # at least one validation row and a few to train on
MAX_ROWS = 20_000
MAX_NAMED = 10  # rows named in one error message


class Example(BaseModel):
    """One training example: the conversation up to the answer, and the answer."""

    row: int  # the dataset row (1-based, as the dataset page shows it)
    messages: list[Message]  # the prompt side (the user's turn, or a conversation)
    completion: str

    @property
    def prompt(self) -> str:
        return "\n".join(m.content for m in self.messages if m.role != "system")


class Split(BaseModel):
    train: list[Example]
    validation: list[Example]


def _rows(numbers: Sequence[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:MAX_NAMED])
    more = f" and {len(numbers) - MAX_NAMED} more" if len(numbers) > MAX_NAMED else ""
    word = "row" if len(numbers) == 1 else "rows"
    return f"{word} {shown}{more}"


def _missing_column(column: str, columns: list[str], role: str) -> DatasetError:
    return DatasetError(
        f"The dataset version has no column '{column}' for the {role}. "
        f"Its columns are: {', '.join(columns)}.",
        hint=f"Pick the {role} column from the dataset's columns.",
    )


def _chat_example(row: int, text: str) -> Example | str:
    """An example from one chat-format cell, or the reason it is not one."""
    try:
        value: Any = json.loads(text)
    except ValueError:
        return "is not JSON"
    if isinstance(value, dict) and "messages" in value:
        value = value["messages"]
    if not isinstance(value, list) or not value:
        return "is not a list of messages"
    try:
        messages = [Message.model_validate(m) for m in value]
    except ValueError:
        return "has a message without a role and content"
    if messages[-1].role != "assistant":
        return "does not end with an assistant message (the answer to learn)"
    if not messages[-1].content.strip():
        return "ends with an empty assistant message"
    return Example(row=row, messages=messages[:-1], completion=messages[-1].content)


def examples_from_rows(
    rows: Sequence[dict[str, str]],
    columns: list[str],
    *,
    prompt_column: str | None,
    completion_column: str | None,
    messages_column: str | None,
) -> list[Example]:
    """The dataset's rows as examples; a :class:`DatasetError` names the rows that are not."""
    if messages_column:
        if prompt_column or completion_column:
            raise DatasetError(
                "Give either a chat column or a prompt and a completion column, not both.",
                hint="Drop the prompt and completion columns, or the chat column.",
            )
        if messages_column not in columns:
            raise _missing_column(messages_column, columns, "chat conversations")
        examples: list[Example] = []
        bad: dict[str, list[int]] = {}
        for index, data in enumerate(rows, start=1):
            made = _chat_example(index, data.get(messages_column, ""))
            if isinstance(made, str):
                bad.setdefault(made, []).append(index)
            else:
                examples.append(made)
        if bad:
            reason, numbers = next(iter(bad.items()))
            raise DatasetError(
                f"Column '{messages_column}' {reason} in {_rows(numbers)}.",
                hint='Each cell must be a JSON list such as [{"role": "user", "content": '
                '"..."}, {"role": "assistant", "content": "..."}].',
            )
        return examples
    if not prompt_column or not completion_column:
        raise DatasetError(
            "Say which column holds the prompts and which holds the completions to learn.",
            hint="Pick a prompt column and a completion column (or a chat column).",
        )
    if prompt_column == completion_column:
        raise DatasetError(
            f"The prompt and the completion are both column '{prompt_column}'.",
            hint="Pick the column with the answers to learn as the completion column.",
        )
    for column, role in ((prompt_column, "prompts"), (completion_column, "completions")):
        if column not in columns:
            raise _missing_column(column, columns, role)
    empty_targets = [i for i, r in enumerate(rows, 1) if not r.get(completion_column, "").strip()]
    if empty_targets:
        raise DatasetError(
            f"Column '{completion_column}' is empty in {_rows(empty_targets)}: the job would "
            "learn to answer nothing.",
            hint="Fill those cells or remove the rows, and upload a new version.",
        )
    empty_prompts = [i for i, r in enumerate(rows, 1) if not r.get(prompt_column, "").strip()]
    if empty_prompts:
        raise DatasetError(
            f"Column '{prompt_column}' is empty in {_rows(empty_prompts)}.",
            hint="Fill those cells or remove the rows, and upload a new version.",
        )
    return [
        Example(
            row=i,
            messages=[Message(role="user", content=r[prompt_column])],
            completion=r[completion_column],
        )
        for i, r in enumerate(rows, 1)
    ]


def check_examples(
    examples: Sequence[Example],
    *,
    context_window: int | None,
    count_tokens: Callable[[Example], int],
    max_rows: int = MAX_ROWS,
) -> list[int]:
    """Refuse too few or too many rows and rows longer than the context; return each
    example's token count (prompt and completion)."""
    if len(examples) < MIN_ROWS:
        raise DatasetError(
            f"The dataset version has {len(examples)} rows; fine-tuning needs at least "
            f"{MIN_ROWS} (some to train on, one to validate).",
            hint="Add examples (tens to hundreds work best) and upload a new version.",
        )
    if len(examples) > max_rows:
        raise DatasetError(
            f"The dataset version has {len(examples):,} rows; a fine-tuning job takes at most "
            f"{max_rows:,}.",
            hint="Upload a version with fewer rows (a sample of the best examples).",
        )
    counts = [count_tokens(e) for e in examples]
    if context_window:
        long = [e.row for e, n in zip(examples, counts, strict=True) if n > context_window]
        if long:
            longest = max(counts)
            raise DatasetError(
                f"{_rows(long).capitalize()} {'is' if len(long) == 1 else 'are'} longer than "
                f"the base model's context window of {context_window:,} tokens (the longest "
                f"has {longest:,}).",
                hint="Shorten those rows or remove them, and upload a new version.",
            )
    return counts


def split_examples(examples: Sequence[Example], *, validation_share: float, seed: int) -> Split:
    """A seeded shuffle, then the first share (at least one row) for validation."""
    order = list(examples)
    random.Random(seed).shuffle(order)
    n_val = 0 if validation_share <= 0 else max(1, round(len(order) * validation_share))
    n_val = min(n_val, len(order) - 1)
    return Split(train=order[n_val:], validation=order[:n_val])
