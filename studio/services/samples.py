"""Example apps built from the sample datasets in ``data/``, for a first run.

Each example is an app with one dataset and a starting variant on a built-in
model, so a new user can press Generate at once, offline.

Rules: the admin or member role (the example app is made through the apps service).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session

from studio.core.errors import ConfigError
from studio.core.templates import PromptTemplate
from studio.services.apps import create_app, list_apps
from studio.services.datasets import list_datasets, upload_dataset
from studio.services.members import require_member_role
from studio.services.variants import VariantConfig, create_variant, list_variants

__all__ = ["DATA_DIR", "EXAMPLES", "Example", "create_example"]

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
BUILTIN_CHAT = "builtin/smollm2-135m-instruct"


@dataclass(frozen=True)
class Example:
    key: str
    app_name: str
    description: str
    filename: str
    variant: str
    template: str
    expected_column: str | None = None


EXAMPLES = {
    e.key: e
    for e in (
        Example(
            key="marketing",
            app_name="Marketing copy",
            description="Invitation emails for events, tailored to each audience.",
            filename="marketing_events.csv",
            variant="friendly email",
            template=(
                "Write a short, friendly email inviting {{demographic}} to our {{event}}. "
                "Mention that it suits a group of about {{size}} people."
            ),
        ),
        Example(
            key="support",
            app_name="Support answers",
            description="Answers to customer questions, with the answers we expect.",
            filename="support_questions.csv",
            variant="helpful agent",
            template=(
                "You are a helpful support agent. Answer the customer's question in two "
                "sentences.\n\nQuestion: {{question}}\nAnswer:"
            ),
            expected_column="expected_answer",
        ),
        Example(
            key="sentiment",
            app_name="Review sentiment",
            description="Label short product reviews as positive, negative or neutral.",
            filename="sentiment_texts.csv",
            variant="one-word label",
            template=(
                "Is this review positive, negative or neutral? Answer with one word.\n\n"
                "Review: {{text}}\nSentiment:"
            ),
            expected_column="label",
        ),
    )
}


def create_example(*, session: Session, key: str) -> int:
    """Create (or find) the example app with its dataset and starting variant; its app id."""
    require_member_role("create example apps")
    example = EXAMPLES.get(key)
    if example is None:
        raise ConfigError(f"No example named '{key}'. Examples: {', '.join(EXAMPLES)}.")
    existing = next((a for a in list_apps(session=session) if a.name == example.app_name), None)
    app_id = (
        existing.id
        if existing
        else create_app(session=session, name=example.app_name, description=example.description).id
    )
    assert app_id is not None
    if not list_datasets(session=session, app_id=app_id):
        path = DATA_DIR / example.filename
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"The sample file {path} cannot be read: {exc}") from exc
        upload_dataset(
            session=session,
            app_id=app_id,
            name=path.stem.replace("_", " "),
            data=data,
            filename=path.name,
            expected_column=example.expected_column,
        )
    if not list_variants(session=session, app_id=app_id, include_archived=True):
        create_variant(
            session=session,
            app_id=app_id,
            name=example.variant,
            config=VariantConfig(
                model=BUILTIN_CHAT,
                prompt=PromptTemplate.completion(example.template),
                parameters={"temperature": 0.2, "max_tokens": 96},
            ),
            note="Example starting point",
        )
    return app_id
