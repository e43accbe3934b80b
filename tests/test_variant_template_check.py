"""A variant cannot be saved with a template the sandbox refuses (service, CLI, both pages).

Before, ``{{ ''.__class__ }}`` was stored and failed only when a run rendered it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from studio.core.errors import PromptSyntaxError, UnsafeTemplateError
from studio.core.templates import PromptTemplate
from studio.services.apps import create_app
from studio.services.datasets import upload_dataset
from studio.services.variants import (
    VariantConfig,
    create_variant,
    history,
    list_variants,
    save_version,
)
from studio.store import session_scope

ROOT = Path(__file__).resolve().parent.parent
UNSAFE = "{{ ''.__class__ }}"
SENTENCE = "tries to access '__class__'"


def _config(template: str) -> VariantConfig:
    return VariantConfig(model="mock/echo", prompt=PromptTemplate.completion(template))


def _app(session: Session) -> int:
    app = create_app(session=session, name="Marketing copy")
    assert app.id is not None
    return app.id


# -- service ---------------------------------------------------------------------------


def test_creating_a_variant_with_an_unsafe_template_is_refused(session: Session) -> None:
    app_id = _app(session)
    with pytest.raises(UnsafeTemplateError, match="__class__"):
        create_variant(session=session, app_id=app_id, name="sneaky", config=_config(UNSAFE))
    assert list_variants(session=session, app_id=app_id) == []


def test_saving_a_version_with_an_unsafe_or_broken_template_is_refused(session: Session) -> None:
    app_id = _app(session)
    v1 = create_variant(session=session, app_id=app_id, name="ok", config=_config("Hi {{x}}"))
    with pytest.raises(UnsafeTemplateError):
        save_version(session=session, variant_id=v1.variant_id, config=_config(UNSAFE))
    with pytest.raises(PromptSyntaxError, match="line 1"):
        save_version(session=session, variant_id=v1.variant_id, config=_config("{{ oops"))
    chat = PromptTemplate.chat([{"role": "user", "content": "Hi"}], system=UNSAFE)
    with pytest.raises(UnsafeTemplateError, match="system prompt"):
        save_version(
            session=session,
            variant_id=v1.variant_id,
            config=VariantConfig(model="mock/echo", prompt=chat),
        )
    assert [v.version for v in history(session=session, variant_id=v1.variant_id)] == [1]


# -- CLI -------------------------------------------------------------------------------


def test_cli_variant_create_with_an_unsafe_template_exits_1_with_a_sentence(cli: Any) -> None:
    assert cli("app", "create", "Marketing").code == 0
    result = cli(
        "variant", "create", "--app", "Marketing", "--name", "sneaky", "--model", "mock/echo",
        "--prompt", UNSAFE,
    )  # fmt: skip
    assert result.code == 1
    assert result.err.startswith("error: This template tries to access '__class__'")
    assert "Traceback" not in result.err
    assert "sneaky" not in cli("variant", "list", "--app", "Marketing").out


# -- pages -----------------------------------------------------------------------------


def test_playground_save_shows_the_sentence_and_saves_nothing(mock_provider: Any) -> None:
    with session_scope() as session:
        app_id = _app(session)
        upload_dataset(
            session=session, app_id=app_id, name="events", data=b"x\n1\n", filename="e.csv"
        )
    at = AppTest.from_file(str(ROOT / "pages" / "playground.py"), default_timeout=60).run()
    at.text_area(key="pg_template").set_value(UNSAFE)
    at.selectbox(key="pg_model").set_value("mock/echo")
    at.run()
    at.text_input(key="pg_save_name").set_value("sneaky")
    at.button(key="pg_save").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not any("Saved variant" in s.value for s in at.success)
    assert any(SENTENCE in e.value for e in at.error), [e.value for e in at.error]
    with session_scope() as session:
        assert list_variants(session=session, app_id=app_id) == []


def test_variants_page_save_shows_the_sentence_and_adds_no_version() -> None:
    with session_scope() as session:
        app_id = _app(session)
        v1 = create_variant(
            session=session, app_id=app_id, name="email", config=_config("Hi {{x}}")
        )
        variant_id, base = v1.variant_id, v1.id
    at = AppTest.from_file(str(ROOT / "pages" / "variants.py"), default_timeout=60)
    at.session_state["variants_selected"] = variant_id
    at.run()
    at.text_area(key=f"variants_edit_{base}_template").set_value(UNSAFE)
    at.button(key=f"variants_save_{base}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(SENTENCE in e.value for e in at.error), [e.value for e in at.error]
    with session_scope() as session:
        assert [v.version for v in history(session=session, variant_id=variant_id)] == [1]
